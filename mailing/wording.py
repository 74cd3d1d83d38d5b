"""What happened to a message, in words a customer understands. The codes (Mandrill's reject reasons,
SMTP replies) stay on the message for programs and for the curious; pages show these sentences."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from .models import Message

STATUS_LABELS = {
    Message.Status.SCHEDULED: "Scheduled",
    Message.Status.QUEUED: "Queued",
    Message.Status.HELD: "Held",
    Message.Status.SENDING: "Sending",
    Message.Status.SENT: "Sent",
    Message.Status.REJECTED: "Rejected",
    Message.Status.BOUNCED: "Bounced",
    Message.Status.FAILED: "Failed",
}

# Mandrill's reject reasons and our hold reasons, as the end of a sentence.
REASONS = {
    "sending-paused": "sending is paused",
    "hold-expired": "held too long while sending was paused",
    "monthly-limit-reached": "the monthly limit was reached",
    "hourly-quota-exhausted": "the hourly limit was reached",
    "unsigned": "the sender's domain is not verified",
    "hard-bounce": "the address bounced before",
    "soft-bounce": "the address bounced several times lately",
    "spam": "the recipient reported spam before",
    "unsub": "the recipient unsubscribed",
    "custom": "the address is on your suppression list",
    "invalid-sender": "the sender's address is invalid",
    "invalid": "the address is invalid",
    "test-mode-limit": "the test mode limit was reached",
    "rule": "a sending rule refused it",
}

# Enhanced status codes (RFC 3463) that say most of what a sender can do about a failure.
ENHANCED_CODES = {
    "5.1.1": "Bounced: mailbox does not exist",
    "5.1.2": "Bounced: the recipient's domain does not exist",
    "5.1.3": "Bounced: the address is not valid",
    "5.1.6": "Bounced: the mailbox has moved",
    "5.1.10": "Bounced: the recipient's domain accepts no mail",
    "5.2.1": "Bounced: the mailbox is disabled",
    "5.2.2": "Bounced: the mailbox is full",
    "5.2.3": "Bounced: the message is too large for the recipient",
    "5.3.4": "Bounced: the message is too large",
    "5.4.4": "Bounced: the recipient's domain cannot be reached",
    "5.7.1": "Refused by the recipient's server (policy or spam filter)",
    "5.7.26": "Refused: the recipient's server could not authenticate the sender",
}
BASIC_CODES = {
    "550": "Bounced: the recipient's server refused the address",
    "551": "Bounced: the recipient is not local to that server",
    "552": "Bounced: the mailbox is full or the message too large",
    "553": "Bounced: the address is not allowed",
    "554": "Refused by the recipient's server",
}
ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
BASIC = re.compile(r"\b([245]\d\d)\b")


@dataclass(frozen=True)
class Outcome:
    label: str  # the state, one or two words
    reason: str = ""  # why, as the end of a sentence or a short sentence
    diagnostic: str = ""  # the raw text behind it, for the details


def describe_failure(error: str) -> str:
    """A delivery error (an exception's text, usually carrying the relay's SMTP reply) in words."""
    enhanced = ENHANCED.search(error or "")
    if enhanced:
        code = ".".join(enhanced.groups())
        if code in ENHANCED_CODES:
            return ENHANCED_CODES[code]
        if enhanced.group(1) == "4":
            return "Delayed: the recipient's server asked us to try again later"
    basic = BASIC.search(error or "")
    if basic and basic.group(1) in BASIC_CODES:
        return BASIC_CODES[basic.group(1)]
    if basic and basic.group(1).startswith("4"):
        return "Delayed: the recipient's server asked us to try again later"
    if "timed out" in (error or "").lower() or "timeout" in (error or "").lower():
        return "The recipient's server did not answer in time"
    if "refused" in (error or "").lower():
        return "The recipient's server refused the connection"
    return "Delivery failed"


def describe(message: Message) -> Outcome:
    label = STATUS_LABELS.get(message.status, message.status.capitalize())
    if message.status == Message.Status.REJECTED:
        code = message.reject_reason
        return Outcome(label, REASONS.get(code, "refused") if code else "", code)
    if message.status == Message.Status.HELD:
        return Outcome(label, REASONS.get(message.queued_reason, "sending is paused"), message.queued_reason)
    if message.status in (Message.Status.FAILED, Message.Status.BOUNCED):
        return Outcome(label, describe_failure(message.last_error), message.last_error)
    if message.status == Message.Status.QUEUED and message.last_error:
        return Outcome(label, "retrying. " + describe_failure(message.last_error), message.last_error)
    return Outcome(label)


# --- the message's timeline: each event, and a bounce's diagnostic in words --------------------------

# RFC 3463's statuses in words, for the timeline; the class digit (4 or 5) is read from the code itself.
STATUS_WORDS = {
    "1.1": "Mailbox does not exist",
    "1.2": "The recipient's domain does not exist",
    "1.3": "The address is not valid",
    "1.6": "The mailbox has moved",
    "1.10": "The recipient's domain accepts no mail",
    "2.1": "The mailbox is disabled",
    "2.2": "The mailbox is full",
    "2.3": "The message is too large for the recipient",
    "3.4": "The message is too large",
    "4.1": "The recipient's server did not answer",
    "4.4": "The recipient's domain cannot be reached",
    "4.7": "Delivery took too long",
    "7.1": "Refused by the recipient's server (policy or spam filter)",
    "7.26": "The recipient's server could not authenticate the sender",
}
SUBJECT_WORDS = {
    "1": "A problem with the address",
    "2": "A problem with the mailbox",
    "3": "A problem with the recipient's mail system",
    "4": "A network or routing problem",
    "5": "A mail protocol problem",
    "6": "A problem with the message's content",
    "7": "Refused for security or policy reasons",
}
CLASS_WORDS = {
    "4": "A temporary failure at the recipient's server",
    "5": "The recipient's server refused the message",
}
BASIC_WORDS = {
    "421": "The recipient's server is busy",
    "450": "The mailbox is unavailable for now",
    "451": "The recipient's server had a local error",
    "452": "The recipient's server is out of space",
    "550": "The recipient's server refused the address",
    "551": "The recipient is not local to that server",
    "552": "The mailbox is full or the message too large",
    "553": "The address is not allowed",
    "554": "Refused by the recipient's server",
}
REPLY_AT_START = re.compile(r"^\s*#?([245]\d\d)\b")


def describe_diagnostic(diagnostic: str, *, status: str | None = None, smtp_code: int | None = None) -> str:
    """A bounce in plain words with its codes, "Mailbox does not exist (550 5.1.1)". The codes come from
    the report (`status`, `smtp_code`) or, failing that, from the server's words."""
    text = diagnostic or ""
    enhanced = ENHANCED.search(status or "") or ENHANCED.search(text)
    code = str(smtp_code) if smtp_code else None
    if code is None:
        reply = REPLY_AT_START.search(text)
        code = reply.group(1) if reply else None
    words = None
    if enhanced:
        klass, subject, detail = enhanced.groups()
        words = (
            STATUS_WORDS.get(f"{subject}.{detail}") or SUBJECT_WORDS.get(subject) or CLASS_WORDS.get(klass)
        )
    words = words or (BASIC_WORDS.get(code) if code else None) or "The recipient's server gave no reason"
    codes = " ".join(part for part in (code, ".".join(enhanced.groups()) if enhanced else None) if part)
    return f"{words} ({codes})" if codes else words


BOUNCE_KINDS = {"hard_bounce", "soft_bounce", "deferral"}


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str
    label: str  # "Hard bounce", "Opened"…
    words: str  # what happened, a sentence; "" when the label says it all
    diagnostic: str  # the raw text behind it


def timeline_entry(event) -> TimelineEntry:
    """One MessageEvent for the message's page, whatever its kind: the kind's label, and for a bounce
    its diagnostic in words. Kinds added later (opens, clicks) show their label and their own detail."""
    label = event.get_kind_display() if hasattr(event, "get_kind_display") else str(event.kind)
    data = event.data or {}
    if event.kind in BOUNCE_KINDS:
        words = describe_diagnostic(
            event.diagnostic, status=data.get("status"), smtp_code=data.get("smtp_code")
        )
    elif event.kind == "spam":
        words = "The recipient reported this message as spam; the address is now suppressed."
    elif event.kind == "reject":
        words = f"Not sent: {REASONS.get(data.get('reason') or event.diagnostic, 'refused')}."
    elif event.kind == "unsub":
        words = "The recipient unsubscribed; the address is now suppressed."
    elif event.kind in ("open", "click"):
        # Prefetching proxies and link scanners are shown, and said not to count (mailing/tracking/bots.py).
        followed = f"Followed {data['url']}" if data.get("url") else ""
        by_bot = "By a mail proxy or link scanner, not counted" if data.get("bot") else ""
        words = f"{followed} ({by_bot[0].lower()}{by_bot[1:]})" if followed and by_bot else followed or by_bot
    else:
        words = str(data.get("url") or "")
    return TimelineEntry(
        at=event.created_at, kind=event.kind, label=label, words=words, diagnostic=event.diagnostic
    )
