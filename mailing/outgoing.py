"""A message as a program submitted it, and the answer per recipient: the plain shapes the edges hand to
the accept path and get back (no database, no rules)."""

from __future__ import annotations

from dataclasses import dataclass, field


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
    attachments: list[dict] = field(default_factory=list)  # [{name, type, content (base64)}]
    tags: list[str] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    recipient_metadata: dict[str, dict] = field(default_factory=dict)


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
