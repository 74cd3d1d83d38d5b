"""What happened to a message, in words a customer understands. The codes (Mandrill's reject reasons,
SMTP replies) stay on the message for programs and for the curious; pages show these sentences."""

from __future__ import annotations

import re
from dataclasses import dataclass

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
