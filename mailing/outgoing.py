"""A message as a program submitted it, and the answer per recipient: the plain shapes the edges hand to
the accept path and get back (no database, no rules)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

PAUSED_REASON = "sending-paused"  # Mandrill's queued_reason for mail held while its account is paused


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str = ""
    type: str = "to"


@dataclass
class OutgoingMessage:
    """A message as a program submitted it, before it is split per recipient."""

    from_email: str
    recipients: list[Recipient]
    subject: str = ""
    from_name: str = ""
    text: str = ""
    html: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    # [{name, type, content (base64), inline}]: inline parts are images the HTML shows by cid:name
    attachments: list[dict] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    recipient_metadata: dict[str, dict] = field(default_factory=dict)
    preserve_recipients: bool = False  # every copy shows the whole To and Cc list (never the Bcc)
    bcc_address: str = ""  # gets a copy of every recipient's message
    important: bool = False
    auto_text: bool = False  # make the text part from the HTML when there is none
    inline_css: bool = False  # move the HTML's <style> rules into style attributes
    template: str = ""  # the slug of the template the message was made from
    send_at: datetime | None = None  # scheduled: leaves then (UTC), the quota counted now
    # Mandrill's merge: None means "decide" (on when variables are given or a template is sent)
    merge: bool | None = None
    merge_language: str = "mailchimp"
    global_merge_vars: list | None = None
    merge_vars: list | None = None
    # Open and click tracking: None means the account's default (Account.track_opens / track_clicks)
    track_opens: bool | None = None
    track_clicks: bool | None = None
    url_strip_qs: bool = False  # clicks are reported without the link's query string


@dataclass(frozen=True)
class RecipientResult:
    email: str
    status: str  # sent, queued, rejected, invalid (Mandrill's words)
    reject_reason: str | None = None
    queued_reason: str | None = None
    id: str | None = None

    def as_mandrill(self) -> dict:
        return {
            "email": self.email,
            "status": self.status,
            "_id": self.id,
            "reject_reason": self.reject_reason,
            "queued_reason": self.queued_reason,
        }
