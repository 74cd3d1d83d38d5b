"""What a message must be before it is accepted, for the API, send-raw and SMTP alike: who it says it
is from (one address, one display name, no identity or routing header from the sender) and text that
can be stored and sent. Each check raises accounts.errors.ValidationError naming the field."""

from __future__ import annotations

import json
import re

import email_validator
from django.conf import settings

from accounts.errors import ValidationError
from accounts.validation import UNSTORABLE_HELP, is_storable

from .outgoing import OutgoingMessage


def is_valid_address(address: str) -> bool:
    """Mandrill's rule: one routable address; internationalised ones (SMTPUTF8) are fine, `@localhost`
    and other special-use domains are not (`.test`, RFC 2606's domain for testing, only where
    ALLOW_TEST_EMAIL_DOMAINS is on: not in production)."""
    try:
        email_validator.validate_email(
            address, check_deliverability=False, test_environment=settings.ALLOW_TEST_EMAIL_DOMAINS
        )
    except email_validator.EmailNotValidError:
        return False
    return True


# Headers that say who a message is from, where it goes, how it was routed or signed, or how its body is
# built: the accept path and the worker set them, never a sender through `headers`.
PROTECTED_HEADERS = frozenset(
    name.lower()
    for name in (
        "From", "Sender", "Return-Path", "To", "Cc", "Bcc", "Delivered-To", "Envelope-To",
        "X-Original-To", "DKIM-Signature", "DomainKey-Signature", "ARC-Seal", "ARC-Message-Signature",
        "ARC-Authentication-Results", "Authentication-Results", "Received", "Received-SPF", "Message-ID",
        "Date", "Subject", "MIME-Version", "Content-Type", "Content-Transfer-Encoding", "Content-Disposition",
        "X-Message-Id",
    )
)  # fmt: skip
PROTECTED_PREFIXES = ("resent-", "x-mc-")
HEADER_NAME = re.compile(r"[!-9;-~]{1,76}")  # printable ASCII but the colon (RFC 5322 field-name)
MAX_HEADER_VALUE = 998
DISPLAY_NAME_FORBIDDEN = re.compile(r"[<>\x00-\x1f\x7f]")


def check_identity(message: OutgoingMessage) -> None:
    """The one rule for who a message says it is from, for the API, send-raw and SMTP alike: one From
    address and one display name, and no header that would name another sender or recipient, route or
    sign it, or break its structure (Reply-To and X-* are fine). Raises ValidationError naming the field."""
    if not is_valid_address(message.from_email) or "<" in message.from_email:
        raise ValidationError(
            f"from_email must be one email address, such as news@example.com (got {message.from_email[:100]!r}).",
            field="from_email",
        )
    if message.bcc_address and not is_valid_address(message.bcc_address):
        raise ValidationError("bcc_address must be one email address.", field="bcc_address")
    if DISPLAY_NAME_FORBIDDEN.search(message.from_name):
        raise ValidationError(
            "from_name must be one display name, without angle brackets or line breaks.", field="from_name"
        )
    for recipient in message.recipients:
        if DISPLAY_NAME_FORBIDDEN.search(recipient.name):
            raise ValidationError(
                f"The name of {recipient.email[:100]} must be one display name, without angle brackets or "
                "line breaks.",
                field="to",
            )
    for name, value in message.headers.items():
        if not HEADER_NAME.fullmatch(name):
            raise ValidationError(f"{name[:80]!r} is not a header name.", field="headers")
        lowered = name.lower()
        if lowered in PROTECTED_HEADERS or lowered.startswith(PROTECTED_PREFIXES):
            raise ValidationError(
                f"The {name} header cannot be set through headers: the sender is from_email and from_name, "
                "the recipients are `to`.",
                field="headers",
            )
        if any(character in value for character in "\r\n\x00") or len(value) > MAX_HEADER_VALUE:
            raise ValidationError(
                f"The {name} header's value must be one line of at most {MAX_HEADER_VALUE} characters.",
                field="headers",
            )


def check_storable(message: OutgoingMessage) -> None:
    """Every text of the message can be stored and sent: no NUL, no undecodable bytes (SMTP brings
    both; the API refuses them at its edge). Raises ValidationError: the message can never be accepted."""
    texts = [
        message.from_email,
        message.from_name,
        message.subject,
        message.text,
        message.html,
        *message.tags,
    ]
    texts += [part for header in message.headers.items() for part in header]
    texts += [part for recipient in message.recipients for part in (recipient.email, recipient.name)]
    texts += [attachment["name"] for attachment in message.attachments]
    if not all(is_storable(text) for text in texts):
        raise ValidationError(f"The message {UNSTORABLE_HELP}.", field="message")
    for metadata in (message.metadata, *message.recipient_metadata.values()):
        serialized = json.dumps(metadata, ensure_ascii=False)
        if "\\u0000" in serialized or not is_storable(serialized):
            raise ValidationError(f"The metadata {UNSTORABLE_HELP}.", field="metadata")
