"""A raw MIME submission, as SMTP and `messages/send-raw` bring it: Mandrill's X-MC-* headers read and
removed, the parts the recipient will see turned into an OutgoingMessage, and the accept path called,
so both ways in answer alike ("exactly as if it were sent through SMTP", Mandrill says of send-raw)."""

from __future__ import annotations

import base64
import functools
import json
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr

from accounts.errors import ValidationError

from .outgoing import OutgoingMessage, Recipient

MAX_TAGS = 50
SMTP_PASSTHROUGH = frozenset(
    ("reply-to", "in-reply-to", "references", "list-unsubscribe", "list-unsubscribe-post")
)


@dataclass(frozen=True)
class McOptions:
    """What Mandrill's X-MC-* headers ask for."""

    subaccount: str | None = None
    tags: list[str] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    # X-MC-Track ("opens", "clicks_all"…); None: the header is absent, the account's default applies
    track_opens: bool | None = None
    track_clicks: bool | None = None
    url_strip_qs: bool = False  # X-MC-URLStripQS: true


# Headers longer than this are parsed every time rather than kept (a hostile client's could be megabytes).
CACHED_HEADER_CHARS = 998


@functools.lru_cache(maxsize=1024)
def _parsed_header(name: str, value: str):
    return policy.default.header_fetch_parse(name, value)


class _KeepingPolicy(policy.EmailPolicy):
    """`policy.default`, but a header already parsed (by name and value) is not parsed again: reading a
    submission asks for its Content-Type and the like a dozen times, and most messages carry the same
    ones. A parsed header is an immutable string, so one may be handed to every message."""

    def header_fetch_parse(self, name, value):
        if hasattr(value, "name") or len(value) > CACHED_HEADER_CHARS:
            return super().header_fetch_parse(name, value)
        return _parsed_header(name, value)


POLICY = _KeepingPolicy()


def parse(data: bytes) -> EmailMessage:
    return BytesParser(policy=POLICY).parsebytes(data)


def mc_options(message: EmailMessage) -> McOptions:
    """Read X-MC-Subaccount, X-MC-Tags and X-MC-Metadata as Mandrill documents them, then remove every
    X-MC-* header: they are instructions to us, not to the recipient. Raises ValidationError."""
    tags = [tag.strip() for tag in str(message.get("X-MC-Tags", "")).split(",") if tag.strip()]
    metadata = {}
    if message.get("X-MC-Metadata"):
        try:
            metadata = json.loads(str(message["X-MC-Metadata"]))
        except ValueError:
            raise ValidationError("X-MC-Metadata is not valid JSON", field="metadata") from None
        if not isinstance(metadata, dict):
            raise ValidationError("X-MC-Metadata must be a JSON object", field="metadata")
    track = None
    if message.get("X-MC-Track") is not None:
        track = {word.strip().lower() for word in str(message["X-MC-Track"]).split(",")}
    options = McOptions(
        subaccount=str(message.get("X-MC-Subaccount", "")).strip() or None,
        tags=tags[:MAX_TAGS],
        metadata=metadata,
        track_opens=None if track is None else "opens" in track,
        track_clicks=None if track is None else any(word.startswith("clicks") for word in track),
        url_strip_qs=str(message.get("X-MC-URLStripQS", "")).strip().lower() == "true",
    )
    for name in {key for key in message if key.lower().startswith("x-mc-")}:
        del message[name]
    return options


def header_recipients(message: EmailMessage) -> list[str]:
    """To, Cc and Bcc of the message itself: send-raw's recipients when `to` is not given."""
    fields = message.get_all("To", []) + message.get_all("Cc", []) + message.get_all("Bcc", [])
    return [address for _name, address in getaddresses([str(value) for value in fields]) if address]


def _content_of(part: EmailMessage | None) -> str:
    """A body part's text. An unknown charset or bytes that are not in it make a message that can never
    be read: a ValidationError (a permanent refusal), not a crash that invites the client to retry."""
    if part is None:
        return ""
    try:
        return part.get_content()
    except (LookupError, UnicodeError) as exc:
        raise ValidationError(
            f"The {part.get_content_type()} part cannot be read in its charset "
            f"{part.get_content_charset()!r}: {type(exc).__name__}.",
            field="message",
        ) from None


def _passes_through(name: str) -> bool:
    """The headers that reach the recipient: threading, unsubscribe and X-* (our X-MC-* are read and
    removed before). The rest (From, To, Sender, Received…) is rebuilt by delivery."""
    lowered = name.lower()
    return lowered in SMTP_PASSTHROUGH or (lowered.startswith("x-") and not lowered.startswith("x-mc-"))


def _passing_headers(message: EmailMessage) -> dict[str, str]:
    """The headers that pass through, each parsed as `message.items()` would: only those (parsing every
    header of the message through the policy was a fifth of an SMTP submission's time)."""
    fetch = message.policy.header_fetch_parse
    return {name: str(fetch(name, value)) for name, value in message.raw_items() if _passes_through(name)}


def _attachments(message: EmailMessage) -> list[dict]:
    """Attachments, and the images the HTML shows by Content-ID (kept inline, named by their cid)."""
    found = []
    for part in message.iter_attachments():
        payload = part.get_payload(decode=True) or b""
        content_id = str(part.get("Content-ID", "")).strip().strip("<>")
        found.append(
            {
                "name": content_id or part.get_filename() or "attachment",
                "type": part.get_content_type(),
                "content": base64.b64encode(payload).decode("ascii"),
            }
            | ({"inline": True} if content_id else {})
        )
    return found


def outgoing(
    message: EmailMessage, *, envelope_from: str, recipients: list[str], options: McOptions,
    from_email: str = "", from_name: str = "",
) -> OutgoingMessage:  # fmt: skip
    """The submission as the accept path takes it: the From (or the given override), the subject, the
    bodies, attachments and the headers the recipient will see; recipients from the envelope."""
    header_name, header_email = parseaddr(str(message.get("From", "")))
    return OutgoingMessage(
        from_email=from_email or header_email or envelope_from,
        from_name=from_name or header_name,
        subject=str(message.get("Subject", "")),
        text=_content_of(message.get_body(preferencelist=("plain",))),
        html=_content_of(message.get_body(preferencelist=("html",))),
        headers=_passing_headers(message),
        attachments=_attachments(message),
        tags=options.tags,
        metadata=options.metadata,
        recipients=[Recipient(email=address) for address in recipients],
        track_opens=options.track_opens,
        track_clicks=options.track_clicks,
        url_strip_qs=options.url_strip_qs,
    )
