"""Bounce and complaint reports that come back by mail: from the bytes the bounce listener received to an
outcome recorded on the message they name (mailing/deliverability/outcomes.py).

The VERP token
--------------
Each message leaves with the envelope sender ``bounces+<token>@BOUNCE_DOMAIN`` (mailing/mime.py). The
token is the message's public id followed by a 16-hex-digit HMAC of it (SECRET_KEY, its own salt). The
public id alone is no secret: programs get it back from every send, and each recipient reads it in the
X-Message-Id and Message-ID headers. Were it the token, anyone who saw one of those could bounce the
message by mail and have its address suppressed, or pile hard bounces on an account until it is paused.
With the MAC, only a report that quotes our own Return-Path names a message; a made-up token names none.

What is dropped
---------------
A report is recorded only when every check passes; anything else is dropped with one log line and no
change: over BOUNCE_MAX_REPORT_BYTES, not a bounce or complaint we understand (auto-replies, spam sent to
the bounce address), a deferral (the MTA is still trying), no token or a token whose MAC fails, no such
message, or a reported recipient that is not the message's (a recipient can only bounce their own copy;
a DSN naming someone else is not about this message). A complaint may omit the recipient: the big
feedback loops redact it, and the signed token then stands alone.
"""

from __future__ import annotations

import hmac
import logging
from enum import StrEnum

from django.conf import settings
from django.utils.crypto import salted_hmac

from .. import bounce_parsing
from ..bounce_parsing import BounceReport
from ..models import Message, MessageEvent
from . import outcomes

logger = logging.getLogger(__name__)

MAC_CHARS = 16  # 64 bits: a forger gets one guess per SMTP transaction
_SALT = "mailing.deliverability.bounces.verp"

EVENT_KIND = {
    bounce_parsing.Kind.HARD: MessageEvent.Kind.HARD_BOUNCE,
    bounce_parsing.Kind.SOFT: MessageEvent.Kind.SOFT_BOUNCE,
    bounce_parsing.Kind.COMPLAINT: MessageEvent.Kind.SPAM,
}


class Result(StrEnum):
    """What became of one report: recorded, or why it was dropped."""

    RECORDED = "recorded"
    REPEATED = "repeated"  # the same outcome was recorded for this message before (receivers resend)
    OVERSIZE = "oversize"
    NOT_A_REPORT = "not-a-report"
    NOT_A_FAILURE = "not-a-failure"  # a deferral, or a failure too vague to classify
    NO_TOKEN = "no-token"  # nosec B105 - a reason's name, not a password
    FORGED_TOKEN = "forged-token"  # nosec B105 - a reason's name, not a password
    UNKNOWN_MESSAGE = "unknown-message"
    RECIPIENT_MISMATCH = "recipient-mismatch"


def _mac(public_id: str) -> str:
    return salted_hmac(_SALT, public_id, algorithm="sha256").hexdigest()[:MAC_CHARS]


def verp_token(public_id: str) -> str:
    """The token of a message's VERP address: its public id and a MAC of it."""
    return f"{public_id}{_mac(public_id)}"


def public_id_from_token(token: str) -> str | None:
    """The public id a token names, or None when its MAC does not match (a forged or mangled token)."""
    if not isinstance(token, str) or len(token) <= MAC_CHARS:
        return None
    public_id, mac = token[:-MAC_CHARS], token[-MAC_CHARS:]
    return public_id if hmac.compare_digest(_mac(public_id), mac) else None


def process_report(raw: bytes, envelope_recipient: str | None = None) -> Result:
    """Read one report that arrived at `envelope_recipient` and record what it says on its message.
    Never raises for what the report holds (a database fault is raised: the listener answers 451 and
    the reporting MTA tries again); every drop is logged with its reason."""
    if len(raw) > settings.BOUNCE_MAX_REPORT_BYTES:
        return _dropped(Result.OVERSIZE, envelope_recipient, f"{len(raw)} bytes")
    report = bounce_parsing.parse_report(
        raw, envelope_recipient=envelope_recipient, bounce_domain=settings.BOUNCE_DOMAIN
    )
    if report is None:
        return _dropped(Result.NOT_A_REPORT, envelope_recipient)
    kind = EVENT_KIND.get(report.kind)
    if kind is None:
        return _dropped(Result.NOT_A_FAILURE, envelope_recipient, report.kind)
    if not report.token:
        return _dropped(Result.NO_TOKEN, envelope_recipient)
    public_id = public_id_from_token(report.token)
    if public_id is None:
        return _dropped(Result.FORGED_TOKEN, envelope_recipient, report.token)
    message = Message.objects.filter(public_id=public_id).first()
    if message is None:
        return _dropped(Result.UNKNOWN_MESSAGE, envelope_recipient, public_id)
    if not _about_its_recipient(report, message):
        return _dropped(Result.RECIPIENT_MISMATCH, envelope_recipient, public_id)
    event = outcomes.record_bounce(message, kind=kind, diagnostic=report.diagnostic, data=_details(report))
    if event is None:
        return Result.REPEATED
    logger.info("Bounce report recorded: %s for message %s", kind, public_id)
    return Result.RECORDED


def _about_its_recipient(report: BounceReport, message: Message) -> bool:
    if report.recipient is None:
        return report.kind is bounce_parsing.Kind.COMPLAINT
    return report.recipient.strip().lower() == message.to_email.strip().lower()


def _details(report: BounceReport) -> dict:
    """What the timeline and programs may want beyond the words: the codes and who reported it."""
    return {
        "source": "report",
        "status": report.status,
        "smtp_code": report.smtp_code,
        "reporter": (report.reporter or "")[:255] or None,
    }


def _dropped(result: Result, envelope_recipient: str | None, detail: str = "") -> Result:
    logger.info(
        "Bounce report dropped (%s) for %s%s",
        result,
        (envelope_recipient or "no envelope recipient")[:320],
        f": {detail[:100]}" if detail else "",
    )
    return result
