"""The message a recipient receives, built from a stored Message with Python's modern email API, and
handed to Django's mail backends through a small adapter.

We build the MIME ourselves (not with Django's EmailMessage) because a transactional message needs what
Django's does not give: inline images in a multipart/related part with their Content-ID, the whole
recipient list shown when `preserve_recipients` asks for it while each copy goes to one address, and
a Message-ID that stays the same on every attempt.
"""

from __future__ import annotations

import base64
import email
import re
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils import timezone

from .deliverability.bounces import verp_token
from .models import Message
from .tracking import decorate

if TYPE_CHECKING:
    from .deliverability.signing import Signer

# Mandrill's `important`: the headers mail clients read as "high priority".
IMPORTANT_HEADERS = {"Importance": "high", "X-Priority": "1"}


def message_id_header(message: Message) -> str:
    """The same Message-ID on every attempt: a copy delivered twice (a worker killed between the relay's
    250 and our record of it) is one message to the receiver's deduplication and to anyone reading."""
    domain = settings.MESSAGE_ID_DOMAIN or settings.SMTP_HOSTNAME or "localhost"
    return f"<{message.public_id}@{domain}>"


def return_path(message: Message) -> str:
    """The envelope sender: a VERP address naming the message with a signed token, so its bounce finds
    it and nobody else's report can (mailing/deliverability/bounces.py); without BOUNCE_DOMAIN, the From."""
    if settings.BOUNCE_DOMAIN:
        return f"bounces+{verp_token(message.public_id)}@{settings.BOUNCE_DOMAIN}"
    return message.from_email


def _address(name: str, email: str) -> Address | str:
    """An address header value with the display name quoted. Python (before 3.15) refuses a non-ASCII
    local part in an Address, so an internationalised address is written out by hand, quoted the same
    way (the name is quoted by formataddr around a stand-in address)."""
    if email.isascii():
        return Address(display_name=name or "", addr_spec=email)
    if not name:
        return email
    return formataddr((name, "stand-in@example.invalid")).replace("stand-in@example.invalid", email)


def _addresses(entries: list[dict]) -> str:
    return ", ".join(str(_address(entry.get("name") or "", entry["email"])) for entry in entries)


def _needs_smtputf8(message: Message) -> bool:
    addresses = [message.from_email, message.to_email, message.bcc_address]
    addresses += [entry["email"] for entry in (*message.shown_to, *message.shown_cc)]
    return not all(address.isascii() for address in addresses)


def _shared_mime(message: Message, html: str, text: str) -> EmailMessage:
    """Everything but the headers that name this recipient's copy (`_recipient_headers`)."""
    # An internationalised address can only travel as UTF-8 (SMTPUTF8, which mailing.relay asks for).
    mime = EmailMessage(policy=policy.SMTPUTF8 if _needs_smtputf8(message) else policy.SMTP)
    mime["From"] = _address(message.from_name, message.from_email)
    if message.shown_to or message.shown_cc:  # preserve_recipients: every copy shows the whole list
        if message.shown_to:
            mime["To"] = _addresses(message.shown_to)
        if message.shown_cc:
            mime["Cc"] = _addresses(message.shown_cc)
    mime["Subject"] = message.subject
    mime["Date"] = format_datetime(timezone.now())
    for name, value in (message.headers | (IMPORTANT_HEADERS if message.important else {})).items():
        mime[name] = value
    _add_body(mime, message, html, text)
    return mime


def _recipient_headers(message: Message) -> list[tuple[str, str]]:
    """The headers that differ from one recipient's copy to the next: its To (unless the whole list is
    shown), the Message-ID, and the List-Unsubscribe naming this message (a sender's own headers win)."""
    headers = [] if message.shown_to or message.shown_cc else [("To", str(_to_address(message)))]
    headers += [("Message-ID", message_id_header(message)), ("X-Message-Id", message.public_id)]
    overridden = set(message.headers) | (set(IMPORTANT_HEADERS) if message.important else set())
    headers += [(n, v) for n, v in decorate.unsubscribe_headers(message).items() if n not in overridden]
    return headers


_DOT_ATOM_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*"
)


def _to_address(message: Message) -> Address | str:
    if not message.to_name and _DOT_ATOM_ADDRESS.fullmatch(message.to_email):
        return message.to_email  # what Address() would give back, without parsing it again
    return _address(message.to_name, message.to_email)


# A value that the email package folds to itself: short, ASCII, no spaces, quotes, comments or groups.
_AS_IS = re.compile(r"[A-Za-z0-9!#$%&*+/=?^_`{|}~.@<>-]*")


# Headers whose value is a URL in angle brackets (RFC 2369): a URL cannot be folded, and the email
# package would turn one longer than a line into RFC 2047 encoded words, which List-Unsubscribe may not
# hold (receivers look for `<https://...>`, and one-click unsubscribe would be lost). Written as they are,
# within RFC 5322's 998 characters a line.
_URL_HEADERS = {"list-unsubscribe"}


def _header_line(mime_policy: policy.EmailPolicy, name: str, value: str) -> bytes:
    """One header as the email package's generator writes it (folded, encoded), for a header set on a
    message under `mime_policy`; a plain short value, or a URL header, is written directly."""
    if len(name) + len(value) <= 76 and _AS_IS.fullmatch(value) and "=?" not in value:  # not an encoded word
        return f"{name}: {value}\r\n".encode("ascii")
    if (
        name.lower() in _URL_HEADERS
        and value.isascii()
        and len(name) + len(value) <= 996
        and not any(c in value for c in "\r\n")
    ):
        return f"{name}: {value}\r\n".encode("ascii")
    return mime_policy.fold_binary(*mime_policy.header_store_parse(name, value))


def _frozen(value):
    """A JSON value (the stored headers, attachments, shown lists) as something hashable."""
    if isinstance(value, dict):
        return tuple((k, _frozen(v)) for k, v in value.items())
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


class MimeBuilder:
    """The messages of one delivery run, as bytes. A batch is mostly one call's recipients: the same
    sender, subject, bodies and attachments, only the recipient's headers differ. That shared part is
    built and serialised once (the email package's header parsing and folding and the body encoding are
    most of a message's cost), and each copy is its own headers in front of it. Tracked bodies differ per
    recipient, so such copies share nothing but cost no more than before."""

    KEPT = 4  # shared parts kept (a batch from one call needs one; each may hold large attachments)

    def __init__(self) -> None:
        # Found by comparing values, not by hashing them: each copy's bodies and attachments are strings
        # of its own (read from its row), and hashing a large attachment again for every copy costs
        # several times more than comparing it with the few parts kept.
        self.shared: list[tuple[tuple, tuple[policy.EmailPolicy, bytes]]] = []

    def build(self, message: Message) -> bytes:
        return b"".join(self.parts(message))

    def parts(self, message: Message) -> tuple[bytes, bytes]:
        """(this recipient's headers, the rest): the message is the two together; the rest is the same
        bytes object for every copy that shares it, which is what lets a signer hash it once."""
        html, text = decorate.delivered_bodies(message)
        recipient_headers = _recipient_headers(message)
        key = (
            message.from_name, message.from_email, message.subject, html, text, message.important,
            _needs_smtputf8(message), _frozen(message.headers), _frozen(message.attachments),
            _frozen(message.shown_to), _frozen(message.shown_cc), tuple(n for n, _ in recipient_headers),
        )  # fmt: skip
        found = next((built for known, built in self.shared if known == key), None)
        if found is None:
            mime = _shared_mime(message, html, text)
            found = (mime.policy, mime.as_bytes())
            if len(self.shared) >= self.KEPT:
                self.shared.pop(0)
            self.shared.append((key, found))
        mime_policy, shared = found
        return b"".join(_header_line(mime_policy, name, value) for name, value in recipient_headers), shared


def _add_body(mime: EmailMessage, message: Message, html: str, text: str) -> None:
    """The bodies as this recipient gets them (with tracking, where asked), and the attachments."""
    inline = [part for part in message.attachments if part.get("inline")]
    attached = [part for part in message.attachments if not part.get("inline")]
    if text or not html:
        mime.set_content(text)
        if html:
            mime.add_alternative(html, subtype="html")
    else:
        mime.set_content(html, subtype="html")
    if inline:
        html_part = mime.get_body(preferencelist=("html",))
        if html_part is not None:
            for image in inline:
                maintype, _, subtype = (image.get("type") or "application/octet-stream").partition("/")
                html_part.add_related(
                    base64.b64decode(image["content"]), maintype=maintype, subtype=subtype or "octet-stream",
                    cid=f"<{image['name']}>", filename=image["name"], disposition="inline",
                )  # fmt: skip
        else:
            attached += inline
    for part in attached:
        maintype, _, subtype = (part.get("type") or "application/octet-stream").partition("/")
        mime.add_attachment(
            base64.b64decode(part["content"]), maintype=maintype, subtype=subtype or "octet-stream",
            filename=part["name"],
        )  # fmt: skip


class SignedMime:
    """The bytes a relay receives: a copy's own headers and the part it shares with its batch, with the
    DKIM-Signature computed over exactly these bytes in front of them. Django's backends only call
    as_bytes() (and the file backend get_charset()); a header asked for (tests, the in-memory backend)
    is read from the bytes."""

    def __init__(self, head: bytes, shared: bytes, signer: Signer | None) -> None:
        self.data = b"".join(((signer.sign_copy(head, shared) if signer else b""), head, shared))

    def as_bytes(self, *args, **kwargs) -> bytes:
        return self.data

    def get_charset(self):
        return None

    def __getitem__(self, name: str):
        return email.message_from_bytes(self.data, policy=policy.SMTP)[name]


class RelayMessage:
    """What Django's mail backends read from a message (`from_email`, `recipients()`, `message()`),
    around the bytes of a message of ours (built by `builder`, a run's MimeBuilder, or alone), signed by
    `signer` (DKIM) when one is given. The envelope goes to one recipient (and the Bcc copy), whatever
    the headers show."""

    def __init__(
        self,
        message: Message,
        signer: Signer | None = None,
        builder: MimeBuilder | None = None,
    ) -> None:
        self.mime = SignedMime(*(builder or MimeBuilder()).parts(message), signer)
        self.from_email = return_path(message)
        self.to = [message.to_email] + ([message.bcc_address] if message.bcc_address else [])
        self.subject = message.subject

    def recipients(self) -> list[str]:
        return self.to

    def message(self, policy=None) -> SignedMime:
        return self.mime
