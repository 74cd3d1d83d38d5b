"""The message a recipient receives, built from a stored Message with Python's modern email API, and
handed to Django's mail backends through a small adapter.

We build the MIME ourselves (not with Django's EmailMessage) because a transactional message needs what
Django's does not give: inline images in a multipart/related part with their Content-ID, the whole
recipient list shown when `preserve_recipients` asks for it while each copy goes to one address, and
a Message-ID that stays the same on every attempt.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from django.conf import settings
from django.utils import timezone

from .deliverability.bounces import verp_token
from .models import Message
from .tracking import decorate

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


def build_mime(message: Message) -> EmailMessage:
    # An internationalised address can only travel as UTF-8 (SMTPUTF8, which mailing.relay asks for).
    mime = EmailMessage(policy=policy.SMTPUTF8 if _needs_smtputf8(message) else policy.SMTP)
    mime["From"] = _address(message.from_name, message.from_email)
    if message.shown_to or message.shown_cc:  # preserve_recipients: every copy shows the whole list
        if message.shown_to:
            mime["To"] = _addresses(message.shown_to)
        if message.shown_cc:
            mime["Cc"] = _addresses(message.shown_cc)
    else:
        mime["To"] = _address(message.to_name, message.to_email)
    mime["Subject"] = message.subject
    mime["Date"] = format_datetime(timezone.now())
    mime["Message-ID"] = message_id_header(message)
    mime["X-Message-Id"] = message.public_id
    headers = (
        decorate.unsubscribe_headers(message)
        | message.headers
        | (IMPORTANT_HEADERS if message.important else {})
    )
    for name, value in headers.items():
        mime[name] = value
    _add_body(mime, message, *decorate.delivered_bodies(message))
    return mime


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
    """The bytes a relay receives: the DKIM-Signature computed over exactly these bytes, in front of
    them. Django's backends only call as_bytes() (and the file backend get_charset())."""

    def __init__(self, mime: EmailMessage, signer: Callable[[bytes], bytes] | None) -> None:
        self.mime = mime
        body = mime.as_bytes()
        self.data = (signer(body) if signer else b"") + body

    def as_bytes(self, *args, **kwargs) -> bytes:
        return self.data

    def get_charset(self):
        return None

    def __getitem__(self, name: str):
        return self.mime[name]


class RelayMessage:
    """What Django's mail backends read from a message (`from_email`, `recipients()`, `message()`),
    around a MIME message of ours, signed by `signer` (DKIM) when one is given. The envelope goes to one
    recipient (and the Bcc copy), whatever the headers show."""

    def __init__(self, message: Message, signer: Callable[[bytes], bytes] | None = None) -> None:
        self.mime = SignedMime(build_mime(message), signer)
        self.from_email = return_path(message)
        self.to = [message.to_email] + ([message.bcc_address] if message.bcc_address else [])
        self.subject = message.subject

    def recipients(self) -> list[str]:
        return self.to

    def message(self, policy=None) -> EmailMessage:
        return self.mime
