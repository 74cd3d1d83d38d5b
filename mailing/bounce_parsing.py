"""Bounce and complaint reports, read into one small value: which message, which address, what happened.

A report arrives by SMTP at the message's VERP address, ``bounces+<token>@<bounce domain>``.
`parse_report` turns its bytes into a `BounceReport`, or None when it is not a bounce or complaint we
understand (an out-of-office reply, a vacation notice, spam sent to the bounce address): the caller logs
it and drops it. Pure: no models, no database, no network; the caller records what the report says.

Shapes read
-----------
- RFC 3464 delivery status notifications (``multipart/report; report-type=delivery-status``, RFC 6522),
  from the per-recipient fields of the ``message/delivery-status`` part (and of RFC 6533's
  ``message/global-delivery-status``). ``Action: failed`` is a bounce, classified below; ``delayed`` is a
  deferral; ``delivered``, ``relayed`` and ``expanded`` are not failures, so None. Postfix, Microsoft 365,
  Gmail and most modern MTAs send these. A DSN naming several recipients is reported by its first failed
  one (then its first delayed one): each of our messages has a single recipient.
- RFC 5965 feedback reports (``multipart/report; report-type=feedback-report``) are complaints when their
  Feedback-Type is abuse, fraud, virus or other (or missing); not-spam, auth-failure (RFC 6591 forensic
  reports) and unregistered types are None. Microsoft's legacy JMRP shape, a ``message/rfc822`` copy sent
  by staff@hotmail.com with the recipient in X-HmXmrOriginalRecipient, is read as a complaint too.
- Plain-text bounces that predate RFC 3464 or ignore it (Exim's classic bounce, qmail and Yahoo's
  "Failure Notice", Exchange NDRs that lost their report part): recognised by the sentences those MTAs
  write, with the failed address and the remote server's reply taken from after the phrases that
  introduce them. Text quoted from the returned message is searched for its Return-Path only.
- Auto-replies (RFC 3834 Auto-Submitted, X-Autoreply, Precedence: auto_reply, "Automatic reply:" and
  similar subjects) not sent by a mail system are None before any heuristic runs.

The token
---------
Only our VERP address identifies a message. It is taken from the envelope recipient the report was
delivered to, when that is ``bounces+<token>@<bounce_domain>``. Otherwise it is the original message's
envelope sender, which is that same VERP address, as the report quotes it: Postfix's X-Postfix-Sender
field, ARF's Original-Mail-From, or the Return-Path header of the returned message (or returned headers,
or the copy inlined in a plain-text bounce). Message-ID, X-Message-Id and every other header are never
read as a token: they are copied, rewritten and written by anyone. Complaints usually arrive at one fixed
address registered with the provider, so for them the returned message is the only source. A token is
only as trustworthy as the report: a recipient who saw our Return-Path can forge a bounce for their own
message, so a caller that knows the message's recipient should compare it with `BounceReport.recipient`.

Classification (`classify`)
---------------------------
The class is the first digit of the RFC 3463 enhanced status code ("5.1.1"), else of the RFC 5321 reply
code (550). A generic status (X.0.0) gives way to a more specific one in the server's words. In order:

1. A mailbox full or over quota (X.2.2, or the words "mailbox full", "quota exceeded", "over quota",
   "insufficient storage"...) is soft, even with 5.x.x: RFC 3463 calls X.2.2 usually transient.
2. 4.x.x and 4xx are soft: transient by definition.
3. For 5.x.x / 5xx:
   a. replies about our sender address ("sender address rejected", X.1.7, X.1.8) are soft;
   b. the other address statuses (X.1.x: bad mailbox, bad domain, bad syntax, moved, X.1.10) are hard;
   c. policy, spam and reputation blocks ("blocked", "spam", "reputation", "block list", "policy",
      "DMARC"...) are soft: they are about us or this message, not about the address;
   d. "user unknown", "no such user", "does not exist", "mailbox unavailable", "recipient not found",
      "account disabled", "relay access denied"... are hard;
   e. other security or policy statuses (X.7.x), and statuses about this message rather than the address
      (X.2.3 and X.3.4 too large, X.6.x content), are soft;
   f. anything else is hard.
4. With no status and no reply code, the words alone decide (unknown address hard, policy soft), else
   the kind is unknown.

`classify` never answers DELAY: a deferral is what a DSN's ``Action: delayed`` or a delay warning says,
not a property of a status code.

Bounds
------
`parse_report` never raises. Input over MAX_REPORT_BYTES is refused unread, and so is a MIME structure no
MTA writes (more than MAX_CONTENT_TYPE_FIELDS Content-Type fields, one longer than
MAX_CONTENT_TYPE_CHARS, more than MAX_BOUNDARY_LINES lines starting "--" or MAX_BLANK_LINES blank lines),
because the email package's cost grows with exactly those. At most MAX_PARTS parts, MAX_STATUS_BLOCKS
delivery-status blocks and MAX_TEXT_CHARS characters of explanation are examined; every pattern here runs
in time linear in what it is given.

Parsing uses the email package's ``compat32`` policy rather than ``policy.default``: the default policy's
header parser spends super-linear time on crafted structured fields (measured on Python 3.13: one 1 MB
Content-Type of parameters took over three minutes; 200 parts with 1,000-character Content-Type fields,
17 s), and a bounce address accepts input from anyone. Header values are read raw here, unfolded, and
decoded: RFC 2047 encoded words only in Subject, 8-bit bytes as UTF-8 with replacement characters.
"""

from __future__ import annotations

import codecs
import html
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email import policy
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser
from enum import StrEnum
from itertools import islice

logger = logging.getLogger(__name__)

MAX_REPORT_BYTES = 1_000_000
MAX_CONTENT_TYPE_FIELDS = 256
MAX_CONTENT_TYPE_CHARS = 1_000
MAX_BOUNDARY_LINES = 2_000
MAX_BLANK_LINES = 10_000
MAX_PARTS = 256
MAX_STATUS_BLOCKS = 100
MAX_TEXT_CHARS = 64 * 1024
MAX_DIAGNOSTIC_CHARS = 1_000
MAX_HEADER_CHARS = 8 * 1024
MAX_HEADER_FIELDS = 1_000
MAX_ANCHORS = 20
MAX_RETURNED_HEADER_BYTES = 64 * 1024
MAX_ADDRESS_CHARS = 320

BOUNCE_LOCAL_PREFIX = "bounces+"
TOKEN = re.compile(r"[A-Za-z0-9_-]{10,64}")


class Kind(StrEnum):
    """What a report says happened to a message."""

    HARD = "hard_bounce"  # the address will not accept mail: stop sending to it
    SOFT = "soft_bounce"  # this delivery failed for a reason that may pass, or that is about us
    COMPLAINT = "spam"  # the recipient reported the message as spam
    DELAY = "deferral"  # not delivered yet; the reporting MTA is still trying
    UNKNOWN = "unknown"  # a failure report that does not say enough to classify


@dataclass(frozen=True, kw_only=True)
class BounceReport:
    """One report about one message, as `parse_report` read it."""

    kind: Kind
    token: str | None  # from the envelope recipient (VERP) if it is ours, else from the report's quotes
    recipient: str | None  # the address that failed: Final-Recipient, Original-Recipient, or from the text
    status: str | None  # RFC 3463 enhanced status code, "5.1.1"
    diagnostic: str  # the remote server's words on one line, at most MAX_DIAGNOSTIC_CHARS; "" if none
    smtp_code: int | None  # the RFC 5321 reply code, 550
    reporter: str | None  # Reporting-MTA's name, else the domain of the report's From address


def token_from_address(address: str, *, bounce_domain: str) -> str | None:
    """The token of ``bounces+<token>@<bounce_domain>``; None for any other address.

    One pair of angle brackets and surrounding spaces or tabs are allowed (a Return-Path header's
    shape). The domain compares without regard to case, as DNS names do; the ``bounces+`` prefix and the
    token are ours and compare exactly. Anything else (another domain, a quoted local part, line breaks,
    more than MAX_ADDRESS_CHARS characters, a token outside [A-Za-z0-9_-]{10,64}) is None."""
    if not isinstance(address, str) or not isinstance(bounce_domain, str) or not bounce_domain:
        return None
    if len(address) > MAX_ADDRESS_CHARS:
        return None
    address = address.strip(" \t")
    if address.startswith("<") and address.endswith(">"):
        address = address[1:-1].strip(" \t")
    local, at, domain = address.rpartition("@")
    if not at or domain.lower() != bounce_domain.lower() or not local.startswith(BOUNCE_LOCAL_PREFIX):
        return None
    token = local[len(BOUNCE_LOCAL_PREFIX) :]
    return token if TOKEN.fullmatch(token) else None


def parse_report(
    data: bytes, *, envelope_recipient: str | None = None, bounce_domain: str
) -> BounceReport | None:
    """Read a bounce or complaint; None when it is neither, or cannot be understood.

    `envelope_recipient` is the RCPT TO the report arrived for; when it is our VERP address it gives the
    token, otherwise the token is looked for inside the report (see the module docstring). Never raises:
    malformed MIME, unknown charsets and binary garbage give None or a best-effort report. Input over
    MAX_REPORT_BYTES, or with a MIME structure beyond the module's bounds, is None without parsing."""
    if not isinstance(data, bytes | bytearray | memoryview):
        return None
    if (data.nbytes if isinstance(data, memoryview) else len(data)) > MAX_REPORT_BYTES:
        return None
    data = bytes(data)
    if not _within_parsing_bounds(data):
        return None
    try:
        return _read(data, envelope_recipient, bounce_domain)
    except RecursionError:
        # MIME nested hundreds deep (within the bounds) exhausts the email package's recursion; no MTA
        # writes that, so it is refused like the other shapes beyond the bounds.
        return None
    except Exception:
        # The contract is "never raises": a report the code did not foresee is dropped, loudly enough
        # to be found and fixed.
        logger.warning("A bounce report could not be read", exc_info=True)
        return None


def classify(status: str | None, smtp_code: int | None, diagnostic: str) -> Kind:
    """The kind of a failure, from its enhanced status code, reply code and the server's words.

    The rules, in order, are in the module docstring (RFC 3463 classes with the well-known exceptions).
    Never DELAY: a deferral is an Action or a warning, not a code. Never raises."""
    status = _status_in(status) if isinstance(status, str) else None
    code = smtp_code if isinstance(smtp_code, int) and 200 <= smtp_code <= 599 else None
    words = diagnostic[: MAX_DIAGNOSTIC_CHARS * 4] if isinstance(diagnostic, str) else ""
    if status and status.endswith(".0.0"):
        # "5.0.0" says only "permanent"; a specific status in the server's words says which.
        specific = _status_in(words, anywhere=True)
        if specific and specific[0] == status[0]:
            status = specific
    klass = status[0] if status else (str(code)[0] if code else None)
    if klass == "2":
        return Kind.UNKNOWN
    if status in ("4.2.2", "5.2.2") or _MAILBOX_FULL.search(words):
        return Kind.SOFT
    if klass == "4":
        return Kind.SOFT
    if klass == "5":
        subject = status.split(".")[1] if status else None
        if status in ("5.1.7", "5.1.8") or _ABOUT_OUR_SENDER.search(words):
            return Kind.SOFT
        if subject == "1":
            return Kind.HARD
        if _POLICY_BLOCK.search(words):
            return Kind.SOFT
        if _UNKNOWN_ADDRESS.search(words):
            return Kind.HARD
        if subject in ("7", "6") or status in ("5.2.3", "5.3.4"):
            return Kind.SOFT
        return Kind.HARD
    if _UNKNOWN_ADDRESS.search(words):
        return Kind.HARD
    if _POLICY_BLOCK.search(words):
        return Kind.SOFT
    return Kind.UNKNOWN


# --- the words servers use ---------------------------------------------------------------------------

_MAILBOX_FULL = re.compile(
    r"mailbox (?:is )?full|mail ?box full|quota exceeded|exceeded (?:the |their |its |his |her )?"
    r"(?:storage|quota|mailbox)|over ?quota|over (?:the |their |its )?(?:storage|quota)|"
    r"insufficient (?:user )?storage|mailbox size limit|exceeded storage allocation|out of storage",
    re.IGNORECASE,
)
_ABOUT_OUR_SENDER = re.compile(
    r"sender (?:address )?(?:rejected|unknown|denied|verify failed|domain)|bad (?:outbound )?sender|"
    r"sender verification",
    re.IGNORECASE,
)
_POLICY_BLOCK = re.compile(
    r"\b(?:spam\w*|blocked|block ?list(?:ed)?|black ?list(?:ed)?|deny ?list(?:ed)?|reputation|rbl|dnsbl|"
    r"unsolicited|policy|policies|dmarc|spf|dkim|rate limit(?:ed)?|too many|throttl\w*|suspicious)\b",
    re.IGNORECASE,
)
_UNKNOWN_ADDRESS = re.compile(
    r"user unknown|unknown user|unknown (?:recipient|mailbox|address|account)|recipient unknown|"
    r"no such (?:user|recipient|mailbox|address|account|person)|does ?n[o']?t exist|doesn't exist|"
    r"mailbox (?:is )?unavailable|mailbox not found|recipient not found|recipientnotfound|recipnotfound|"
    r"address (?:couldn't|could not|cannot|can't) be found|not a valid (?:mailbox|recipient|user|address)|"
    r"invalid (?:recipient|mailbox)|(?:account|mailbox|address) (?:has been |is )?(?:disabled|deactivated)|"
    r"account (?:has been )?(?:closed|terminated|discontinued)|"
    r"(?:doesn't|does not) have an? [\w.-]{1,64} account|no mailbox here by that name|"
    r"bad destination mailbox|relay(?:ing)? (?:access )?denied|relay not permitted",
    re.IGNORECASE,
)
# Sentences mail systems write at the top of a bounce, and people almost never do.
_BOUNCE_SENTENCE = re.compile(
    r"this message was created automatically by mail delivery software|"
    r"could not be delivered to one or more of its recipients|"
    r"delivery has failed to these recipients or groups|diagnostic information for administrators|"
    r"your message to \S{1,320} couldn't be delivered|"
    r"your message (?:wasn't|was not|could not be|couldn't be) delivered|"
    r"sorry, we were unable to deliver your message|"
    r"unable to deliver (?:your )?message to the following address|"
    r"delivery to the following recipients? failed|"
    r"i'm sorry to have to inform you that your message could not|this is the mail system at host|"
    r"this is the qmail-send program|the following addresses had permanent fatal errors|"
    r"message could not be delivered|undeliverable message|delivery status notification|"
    r"has not yet been delivered to one or more of its recipients|"
    r"delivery has been delayed to these recipients",
    re.IGNORECASE,
)
# Subjects of bounces, trusted only from a mail system's address (people write "undeliverable" too).
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|returned mail|returned to sender|delivery (?:status notification|failure|failed|problem)|"
    r"mail delivery failed|failure notice|non-?delivery|could not be delivered|delayed mail",
    re.IGNORECASE,
)
_DELAY_SENTENCE = re.compile(
    r"has not yet been delivered|delivery attempts will continue|this is a warning message only|"
    r"will (?:continue to )?retry|still being retried|delivery (?:has been )?delayed|delivery incomplete|"
    r"delayed mail",
    re.IGNORECASE,
)
_PERMANENT_SENTENCE = re.compile(
    r"permanent error|permanent failure|failed permanently|permanent fatal error", re.IGNORECASE
)
_AUTO_REPLY_SUBJECT = re.compile(
    r"^\s*(?:automatic reply|auto(?:matic)?[ -]?(?:reply|response|antwort)|auto:|out of (?:the )?office|"
    r"abwesenheitsnotiz|automatische antwort|r[ée]ponse automatique|respuesta autom[áa]tica|risposta automatica|"
    r"automatisch antwoord|autosvar|vacation|on vacation|away from)",
    re.IGNORECASE,
)
# Where a plain-text bounce stops explaining and starts quoting the returned message.
_COPY_MARKER = re.compile(
    r"^[ \t]*-*[ \t]*(?:this is a copy of the message|below this line is a copy of the message|"
    r"enclosed are the original headers|original message (?:follows|headers)|original message[ \t]*-)",
    re.IGNORECASE | re.MULTILINE,
)
# Phrases after which a bounce names the failed address (the first address that follows is taken).
_RECIPIENT_ANCHOR = re.compile(
    r"following address(?:\(es\)|es)? failed:|delivery has failed to these recipients or groups:|"
    r"your message to\s|(?:wasn't|was not|could not be|couldn't be) delivered to\s|"
    r"delivery to the following recipients? failed|unable to deliver (?:your )?message to the following|"
    r"following addresses had permanent fatal errors|generating server:|rcpt to:|"
    r"^[ \t]*<[^<>\s]{1,320}>:",
    re.IGNORECASE | re.MULTILINE,
)
# Phrases after which a bounce quotes the remote server's reply.
_REPLY_ANCHOR = re.compile(
    r"smtp error from remote (?:mail )?server after|\bsaid:|"
    r"the response from the remote server was:|the error that the other server returned was:|"
    r"\(reason:|^[ \t]*<[^<>\s]{1,320}>:[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
# Gmail quotes the reply's text without its code after this phrase.
_UNCODED_REPLY_ANCHOR = re.compile(r"^[ \t]*the response was:", re.IGNORECASE | re.MULTILINE)
_EXCHANGE_REPLY = re.compile(r"remote server returned '([^']{1,800})'", re.IGNORECASE)
_EXCHANGE_2007_REPLY = re.compile(r"#([245]\d\d[ -][245]\.\d{1,3}\.\d{1,3}[^#\n]{0,500})#", re.IGNORECASE)
_REPLY_LINE = re.compile(r"^[ \t]*#?[245][0-5]\d[ -][245]\.\d{1,3}\.\d{1,3}\b", re.MULTILINE)
_REPLY_CODE_AT_START = re.compile(r"#?([245][0-5]\d)(?![\d.])")
_REPLY_CODE_ANYWHERE = re.compile(r"(?<![\w.\[:/<@-])([245][0-5]\d)(?=[ \t]*[-:]|[ \t]+[\w#<\"'(])")
_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?!\d|\.\d)")
_HOST_PREFIX = re.compile(r"^\s*host\s+\S{1,255}(?:\s+\[[^\]\n]{1,64}\])?\s*:?\s*", re.IGNORECASE)
_IN_REPLY_TO = re.compile(r"\s*\(in reply to [^()\n]{1,80}\)\s*$", re.IGNORECASE)
_ADDRESS = re.compile(
    r"[^\s<>()\[\]\\,;:@\"']{1,64}@[^\s<>()\[\]\\,;:@\"'.]{1,63}(?:\.[^\s<>()\[\]\\,;:@\"'.]{1,63})+"
)
_MAIL_SYSTEM_LOCAL_PARTS = frozenset(
    ("mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon", "mdaemon")
)
_COMPLAINT_FEEDBACK_TYPES = frozenset(("abuse", "fraud", "virus", "other"))
_FAILURE_ACTIONS = ("failed", "delayed")
_SUCCESS_ACTIONS = frozenset(("delivered", "relayed", "expanded"))
# Names of codecs that are not charsets: punycode decodes in quadratic time, the rest misread mail.
_NOT_CHARSETS = frozenset(("punycode", "idna", "unicode-escape", "raw-unicode-escape", "undefined"))
_CONTENT_TYPE_FIELD = re.compile(
    rb"^content-type[ \t]*:[^\n]*(?:\n[ \t][^\n]*)*", re.IGNORECASE | re.MULTILINE
)
_NEWLINES = re.compile(r"\r\n|\r|\n")
_SPACES = re.compile(r"\s+")
_TAG = re.compile(r"<[^<>]*>")


# --- reading ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Letter:
    """What every reading of a report needs, gathered once."""

    message: Message
    parts: list[Message]
    explanation: str  # the human-readable text, up to where it starts quoting the returned message
    quoted: str  # what follows that point in the same text (a plain-text bounce's inline copy)
    returned: Message | None  # the returned message, or its headers
    envelope_token: str | None
    bounce_domain: str


def _within_parsing_bounds(data: bytes) -> bool:
    """Whether the email package can parse `data` quickly: its cost grows with the number and length of
    Content-Type fields, with the number of boundary lines, and (in a delivery-status part) with the
    number of blank lines. Real reports are far inside these bounds."""
    lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")  # the three line ends the parser accepts
    if lines.count(b"\n--") + lines.startswith(b"--") > MAX_BOUNDARY_LINES:
        return False
    if lines.count(b"\n\n") > MAX_BLANK_LINES:
        return False
    for count, field in enumerate(_CONTENT_TYPE_FIELD.finditer(lines), start=1):
        if count > MAX_CONTENT_TYPE_FIELDS or field.end() - field.start() > MAX_CONTENT_TYPE_CHARS:
            return False
    return True


def _read(data: bytes, envelope_recipient: str | None, bounce_domain: str) -> BounceReport | None:
    message = BytesParser(policy=policy.compat32).parsebytes(data)
    parts = _parts(message)
    explanation, quoted = _split_at_copy(_explanation(parts))
    letter = _Letter(
        message=message,
        parts=parts,
        explanation=explanation,
        quoted=quoted,
        returned=_returned(parts),
        envelope_token=token_from_address(envelope_recipient, bounce_domain=bounce_domain)
        if isinstance(envelope_recipient, str)
        else None,
        bounce_domain=bounce_domain if isinstance(bounce_domain, str) else "",
    )
    feedback = _first(parts, "message/feedback-report")
    if feedback is not None:
        return _complaint(letter, _feedback_fields(feedback))
    status_part = _first(parts, "message/delivery-status", "message/global-delivery-status")
    if status_part is not None:
        blocks = _status_blocks(status_part)
        if any(_is_recipient_block(block) for block in blocks):
            return _delivery_status(letter, blocks)
    if _is_legacy_jmrp(letter):
        return _legacy_jmrp_complaint(letter)
    if _is_auto_reply(message):
        return None
    return _plain_text_bounce(letter)


def _parts(message: Message) -> list[Message]:
    """The report's parts in document order, at most MAX_PARTS. Only multipart containers are entered:
    a returned message's own parts are its content, not the report's."""
    found: list[Message] = []
    stack = [message]
    while stack and len(found) < MAX_PARTS:
        part = stack.pop()
        found.append(part)
        if part.get_content_maintype() == "multipart":
            payload = part.get_payload()
            if isinstance(payload, list):
                stack.extend(reversed([child for child in payload if isinstance(child, Message)]))
    return found


def _first(parts: list[Message], *content_types: str) -> Message | None:
    return next((part for part in parts if part.get_content_type() in content_types), None)


def _explanation(parts: list[Message]) -> str:
    """The first text a person would read: a text/plain part that is not an attachment, else the words of
    a text/html one."""
    html_part = None
    for part in parts:
        if part.get_content_maintype() != "text" or _is_attachment(part):
            continue
        if part.get_content_subtype() == "plain":
            return _text_of(part)
        if part.get_content_subtype() == "html" and html_part is None:
            html_part = part
    if html_part is None:
        return ""
    return html.unescape(_TAG.sub(" ", _text_of(html_part)))


def _is_attachment(part: Message) -> bool:
    return _header(part, "content-disposition").lower().startswith("attachment")


def _split_at_copy(text: str) -> tuple[str, str]:
    marker = _COPY_MARKER.search(text)
    return (text[: marker.start()], text[marker.start() :]) if marker else (text, "")


def _returned(parts: list[Message]) -> Message | None:
    """The returned message (message/rfc822, RFC 6532's message/global) or its headers
    (text/rfc822-headers, message/global-headers), parsed as far as its headers."""
    for part in parts:
        content_type = part.get_content_type()
        if content_type in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
        elif content_type in ("text/rfc822-headers", "message/global-headers"):
            raw = _payload_bytes(part)
            if raw:
                return BytesHeaderParser(policy=policy.compat32).parsebytes(raw[:MAX_RETURNED_HEADER_BYTES])
    return None


# --- delivery status notifications (RFC 3464) --------------------------------------------------------


def _status_blocks(part: Message) -> list[dict[str, str]]:
    """The delivery-status part's field blocks: per-message fields first, then one per recipient."""
    payload = part.get_payload()
    if not isinstance(payload, list):
        return []
    if part.get_content_type() == "message/delivery-status":
        return [_fields(block) for block in payload[: MAX_STATUS_BLOCKS + 1] if isinstance(block, Message)]
    # message/global-delivery-status is parsed by the email package as one message: the per-message
    # fields as its headers, the recipients' blocks as its body.
    if not payload or not isinstance(payload[0], Message):
        return []
    return [_fields(payload[0]), *_field_blocks(_payload_bytes(payload[0])[: MAX_TEXT_CHARS * 4])]


def _field_blocks(raw: bytes) -> list[dict[str, str]]:
    """RFC 822-style field blocks separated by blank lines, for report text the email package left
    unparsed."""
    blocks = []
    for chunk in re.split(rb"(?:\r\n|\r|\n)[ \t]*(?:\r\n|\r|\n)", raw)[:MAX_STATUS_BLOCKS]:
        if chunk.strip():
            parsed = BytesHeaderParser(policy=policy.compat32).parsebytes(chunk.strip(b"\r\n"))
            blocks.append(_fields(parsed))
    return blocks


def _fields(block: Message) -> dict[str, str]:
    """A field block's fields by lower-case name, first occurrence, folding kept (Diagnostic-Code's line
    structure matters)."""
    fields: dict[str, str] = {}
    for name, value in islice(block.raw_items(), MAX_HEADER_FIELDS):
        key = str(name).strip().lower()
        if key not in fields:
            fields[key] = _as_text(str(value)[:MAX_HEADER_CHARS])
    return fields


def _feedback_fields(part: Message) -> dict[str, str]:
    """The fields of a message/feedback-report part, which the email package parses as a message whose
    headers are the fields."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return _fields(payload[0])
    blocks = _field_blocks(_payload_bytes(part)[:MAX_TEXT_CHARS])
    return blocks[0] if blocks else {}


def _is_recipient_block(block: dict[str, str]) -> bool:
    return any(name in block for name in ("final-recipient", "original-recipient", "action", "status"))


def _delivery_status(letter: _Letter, blocks: list[dict[str, str]]) -> BounceReport | None:
    recipients = [block for block in blocks if _is_recipient_block(block)]
    per_message = blocks[0]
    block, action = _failure_in(recipients)
    if block is None:
        return None
    status = _status_in(_unfold(block.get("status", "")))
    diagnostic_type, diagnostic = _typed(block.get("diagnostic-code", ""))
    diagnostic = _reply_text(diagnostic)
    if not diagnostic:
        diagnostic = _reply_in_text(letter.explanation)
    smtp_code = _reply_code(diagnostic, at_start=diagnostic_type in ("smtp", None))
    if status is None:
        status = _status_in(diagnostic, anywhere=True)
    elif status.endswith(".0.0"):
        specific = _status_in(diagnostic, anywhere=True)
        if specific and specific[0] == status[0]:
            status = specific
    kind = Kind.DELAY if action == "delayed" else classify(status, smtp_code, diagnostic)
    recipient = (
        _address_field(block.get("final-recipient", ""))
        or _address_field(block.get("original-recipient", ""))
        or _recipient_in_text(letter)
    )
    postfix_sender = _typed(per_message.get("x-postfix-sender", ""))[1]
    return BounceReport(
        kind=kind,
        token=_token(letter, [postfix_sender]),
        recipient=recipient,
        status=status,
        diagnostic=_one_line(diagnostic),
        smtp_code=smtp_code,
        reporter=_host_field(per_message.get("reporting-mta", "")) or _from_domain(letter.message),
    )


def _failure_in(recipients: list[dict[str, str]]) -> tuple[dict[str, str] | None, str]:
    """The block to report and its action: the first failed, else the first delayed. Blocks without a
    usable Action (RFC 3464 requires one) go by their Status class; all delivered means no failure."""
    actions = [(_unfold(block.get("action", "")).lower().split() or [""])[0] for block in recipients]
    for wanted in _FAILURE_ACTIONS:
        for block, action in zip(recipients, actions, strict=True):
            if action == wanted:
                return block, action
    for block, action in zip(recipients, actions, strict=True):
        if action in _SUCCESS_ACTIONS:
            continue
        status = _status_in(_unfold(block.get("status", "")))
        if status is None or status[0] != "2":
            return block, "failed"
    return None, ""


# --- feedback reports (RFC 5965) ---------------------------------------------------------------------


def _complaint(letter: _Letter, fields: dict[str, str]) -> BounceReport | None:
    feedback_type = _unfold(fields.get("feedback-type", "")).strip().lower()
    if feedback_type and feedback_type not in _COMPLAINT_FEEDBACK_TYPES:
        return None
    original_mail_from = _unfold(fields.get("original-mail-from", ""))
    recipient = _address_field(fields.get("original-rcpt-to", "")) or _address_field(
        _header(letter.returned, "x-hmxmroriginalrecipient") if letter.returned is not None else ""
    )
    return BounceReport(
        kind=Kind.COMPLAINT,
        token=_token(letter, [original_mail_from]),
        recipient=recipient,
        status=None,
        diagnostic=_one_line(letter.explanation) or f"Feedback-Type: {feedback_type or 'abuse'}",
        smtp_code=None,
        reporter=_host_field(fields.get("reporting-mta", "")) or _from_domain(letter.message),
    )


def _is_legacy_jmrp(letter: _Letter) -> bool:
    """Microsoft's JMRP before its ARF format: a copy of the message, from staff@hotmail.com, titled
    "complaint about message from <ip>"."""
    if letter.returned is None:
        return False
    sender = _address_in(_header(letter.message, "from")) or ""
    subject = _subject(letter.message).lower()
    return sender.lower() == "staff@hotmail.com" or subject.startswith("complaint about message from")


def _legacy_jmrp_complaint(letter: _Letter) -> BounceReport:
    returned = letter.returned
    recipient = (
        _address_field(_header(returned, "x-hmxmroriginalrecipient")) if returned is not None else None
    )
    return BounceReport(
        kind=Kind.COMPLAINT,
        token=_token(letter, []),
        recipient=recipient,
        status=None,
        diagnostic=_one_line(letter.explanation) or _one_line(_subject(letter.message)),
        smtp_code=None,
        reporter=_from_domain(letter.message),
    )


# --- auto-replies and plain-text bounces ---------------------------------------------------------------


def _sent_by_mail_system(message: Message) -> bool:
    """Whether the report is from an MTA rather than a person or a mailbox rule."""
    if _header(message, "x-failed-recipients") or any(
        name.strip().lower() == "x-ms-exchange-message-is-ndr" for name in message
    ):
        return True
    sender = _header(message, "from")
    address = _address_in(sender) or ""
    local = address.rpartition("@")[0].lower()
    return (
        local in _MAIL_SYSTEM_LOCAL_PARTS
        or local.startswith("microsoftexchange")
        or "mail delivery" in sender.lower()
        or sender.strip().lower() in _MAIL_SYSTEM_LOCAL_PARTS
    )


def _is_auto_reply(message: Message) -> bool:
    """RFC 3834's signs of an automatic reply, and the non-standard ones common mail clients set. A mail
    system's bounce carries some of them too (Auto-Submitted: auto-replied), so it is never one."""
    if _sent_by_mail_system(message):
        return False
    auto_submitted = _header(message, "auto-submitted").strip().lower()
    precedence = _header(message, "precedence").strip().lower()
    return (
        bool(auto_submitted and not auto_submitted.startswith("no"))
        or bool(_header(message, "x-autoreply") or _header(message, "x-autorespond"))
        or precedence == "auto_reply"
        or bool(_AUTO_REPLY_SUBJECT.search(_subject(message)))
    )


def _plain_text_bounce(letter: _Letter) -> BounceReport | None:
    text = letter.explanation
    if not _BOUNCE_SENTENCE.search(text) and not (
        _sent_by_mail_system(letter.message) and _BOUNCE_SUBJECT.search(_subject(letter.message))
    ):
        return None
    diagnostic = _reply_in_text(text)
    smtp_code = _reply_code(diagnostic, at_start=True)
    status = _status_in(diagnostic, anywhere=True)
    if _DELAY_SENTENCE.search(text) or _DELAY_SENTENCE.search(_subject(letter.message)):
        kind = Kind.DELAY
    else:
        kind = classify(status, smtp_code, diagnostic)
        if kind is Kind.UNKNOWN and _PERMANENT_SENTENCE.search(text):
            kind = Kind.HARD
    inline_return_paths = re.findall(
        r"(?im)^return-path:[ \t]*([^\r\n]{1,400})$", letter.quoted[:MAX_TEXT_CHARS]
    )
    return BounceReport(
        kind=kind,
        token=_token(letter, inline_return_paths),
        recipient=_recipient_in_text(letter),
        status=status,
        diagnostic=_one_line(diagnostic),
        smtp_code=smtp_code,
        reporter=_from_domain(letter.message),
    )


def _recipient_in_text(letter: _Letter) -> str | None:
    """The failed address: X-Failed-Recipients (Exim, Gmail), else the first address after a phrase that
    introduces one, skipping our own and mail systems' addresses."""
    failed = _address_in(_header(letter.message, "x-failed-recipients"))
    if failed:
        return failed
    text = letter.explanation
    for anchor in islice(_RECIPIENT_ANCHOR.finditer(text), MAX_ANCHORS):
        window = text[anchor.start() : anchor.end() + 300]
        for candidate in _ADDRESS.finditer(window):
            address = _clean_address(candidate.group(0))
            local, _, domain = (address or "").rpartition("@")
            ours = domain.lower() == letter.bounce_domain.lower() or local.lower() in _MAIL_SYSTEM_LOCAL_PARTS
            if address and not ours:
                return address
    return None


def _reply_in_text(text: str) -> str:
    """The remote server's reply as a bounce's explanation quotes it, with the SMTP code first; "" if it
    quotes none."""
    exchange = _EXCHANGE_REPLY.search(text) or _EXCHANGE_2007_REPLY.search(text)
    if exchange:
        return exchange.group(1)
    for anchor in islice(_REPLY_ANCHOR.finditer(text), MAX_ANCHORS):
        reply = _reply_after(text, anchor.end())
        if reply:
            return reply
    line = _REPLY_LINE.search(text)
    if line:
        return _reply_after(text, line.start())
    uncoded = _UNCODED_REPLY_ANCHOR.search(text)
    if uncoded:
        return _reply_after(text, uncoded.end(), coded=False)
    return ""


def _reply_after(text: str, start: int, *, coded: bool = True) -> str:
    """From `start`, the lines up to the next blank line (at most ten), from the first reply code on
    (or all of them when the reply is not `coded`)."""
    lines = []
    for line in text[start : start + 4000].splitlines():
        if not line.strip():
            if lines:
                break
            continue  # blank lines between the phrase and the reply
        lines.append(line.strip())
        if len(lines) == 10:
            break
    joined = _HOST_PREFIX.sub("", "\n".join(lines), count=1).lstrip()
    if not coded:
        return _reply_text(joined)
    code = _REPLY_CODE_AT_START.match(joined) or _REPLY_CODE_ANYWHERE.search(joined)
    if not code:
        return ""
    return _IN_REPLY_TO.sub("", _reply_text(joined[code.start() :]))


# --- field values ---------------------------------------------------------------------------------------


def _reply_text(raw: str) -> str:
    """A possibly multi-line SMTP reply on one line: "550-5.1.1 a\\n550-5.1.1 b\\n550 5.1.1 c" reads
    "550 5.1.1 a b c". Continuation prefixes are removed only when they repeat the first line's code."""
    lines = [line.strip() for line in _NEWLINES.split(raw.strip())]
    lines = [line for line in lines if line]
    if not lines:
        return ""
    first = re.match(r"([245]\d\d)[- ]", lines[0])
    if first:
        code = first.group(1)
        continuation = re.compile(rf"{code}[- ](?:[245]\.\d{{1,3}}\.\d{{1,3}}[ \t]*)?")
        lines = [f"{code} {lines[0][4:]}"] + [continuation.sub("", line, count=1) for line in lines[1:]]
    return " ".join(lines)


def _reply_code(reply: str, *, at_start: bool) -> int | None:
    """The reply code a reply starts with, or (for diagnostics that are not SMTP, where codes are rare)
    None."""
    if not at_start:
        return None
    match = _REPLY_CODE_AT_START.match(reply.lstrip())
    return int(match.group(1)) if match else None


def _status_in(text: str, *, anywhere: bool = False) -> str | None:
    """An RFC 3463 status code, "5.1.1", normalised; at the start of `text`, or its first one anywhere in
    the first few hundred characters."""
    text = text[:300]
    match = _STATUS.search(text) if anywhere else _STATUS.match(text.strip())
    if not match:
        return None
    klass, subject, detail = match.groups()
    return f"{klass}.{int(subject)}.{int(detail)}"


def _typed(value: str) -> tuple[str | None, str]:
    """A DSN field's type and value: "smtp; 550 ..." is ("smtp", "550 ...")."""
    kind, semicolon, rest = value.partition(";")
    if semicolon and re.fullmatch(r"[A-Za-z0-9-]{1,40}", kind.strip()):
        return kind.strip().lower(), rest.strip()
    return None, value.strip()


def _address_field(value: str) -> str | None:
    """The address in an address field ("rfc822; <jane@example.com>"), or None if it holds none."""
    kind, address = _typed(_unfold(value))
    if kind == "utf-8":
        # RFC 6533 writes characters it cannot carry as \x{HHHH}.
        address = re.sub(r"\\x\{([0-9A-Fa-f]{1,6})\}", _unicode_escape, address)
    return _clean_address(address.strip().strip("<>").strip())


def _clean_address(address: str) -> str | None:
    """`address` if it can be one: printable, no white space, an @, at most MAX_ADDRESS_CHARS. What is
    returned is stored by the caller, and PostgreSQL refuses NUL in text."""
    if not address or len(address) > MAX_ADDRESS_CHARS or "@" not in address:
        return None
    if _SPACES.search(address) or not address.isprintable():
        return None
    return address


def _unicode_escape(match: re.Match[str]) -> str:
    codepoint = int(match.group(1), 16)
    return chr(codepoint) if codepoint <= 0x10FFFF and not 0xD800 <= codepoint <= 0xDFFF else "\ufffd"


def _host_field(value: str) -> str | None:
    """The name in a host field ("dns; mx.example.com"), lower-cased."""
    words = _typed(_unfold(value))[1].split()
    name = words[0].strip("[]").lower()[:255] if words else ""
    return name if name and name.isprintable() else None


def _from_domain(message: Message) -> str | None:
    address = _address_in(_header(message, "from"))
    return address.rpartition("@")[2].lower() if address else None


def _address_in(value: str) -> str | None:
    match = _ADDRESS.search(value[:MAX_HEADER_CHARS])
    return _clean_address(match.group(0)) if match else None


def _token(letter: _Letter, quoted_senders: Iterable[str]) -> str | None:
    """The envelope's token, else the first VERP address the report quotes (see the module docstring)."""
    if letter.envelope_token:
        return letter.envelope_token
    for candidate in _candidate_senders(letter, quoted_senders):
        token = token_from_address(_unfold(candidate), bounce_domain=letter.bounce_domain)
        if token:
            return token
    return None


def _candidate_senders(letter: _Letter, quoted_senders: Iterable[str]) -> Iterator[str]:
    yield from (sender for sender in quoted_senders if sender)
    if letter.returned is not None:
        yield from _headers(letter.returned, "return-path")


# --- headers and text ----------------------------------------------------------------------------------


def _headers(message: Message, name: str) -> list[str]:
    """Every `name` field's value, unfolded, 8-bit bytes read as UTF-8."""
    return [
        _unfold(_as_text(str(value)[:MAX_HEADER_CHARS]))
        for key, value in islice(message.raw_items(), MAX_HEADER_FIELDS)
        if str(key).strip().lower() == name
    ]


def _header(message: Message | None, name: str) -> str:
    if message is None:
        return ""
    values = _headers(message, name)
    return values[0] if values else ""


def _subject(message: Message) -> str:
    """Subject with RFC 2047 encoded words decoded; raw when they cannot be."""
    subject = _header(message, "subject")[:1000]
    try:
        return str(make_header(decode_header(subject)))
    except Exception:
        # Unknown charsets, broken base64 and the like: the raw words still serve the heuristics.
        return subject


def _unfold(value: str) -> str:
    return _NEWLINES.sub("", value)


def _as_text(value: str) -> str:
    """A raw header value as text: the parser keeps 8-bit bytes as surrogate escapes."""
    try:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeError:
        return value.encode("utf-8", "replace").decode("utf-8")


def _payload_bytes(part: Message) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        # Transfer encodings the email package cannot undo; the part is read as empty.
        return b""
    return payload if isinstance(payload, bytes) else b""


def _text_of(part: Message) -> str:
    """A text part's content, at most MAX_TEXT_CHARS, lines ending in "\\n": in its declared charset if
    that reads it, else as UTF-8, else with replacement characters. Charsets that lie are common in
    bounces."""
    raw = _payload_bytes(part)[: MAX_TEXT_CHARS * 4]
    charset = _charset(part)
    attempts = [(charset, "strict"), ("utf-8", "strict"), (charset, "replace"), ("utf-8", "replace")]
    text = None
    for encoding, errors in attempts:
        if encoding is None:
            continue
        try:
            text = raw.decode(encoding, errors)
            break
        except (LookupError, UnicodeError):
            continue
    if text is None:
        text = raw.decode("latin-1")
    # One line end, so that patterns anchored at line ends read CRLF mail like the rest.
    return _NEWLINES.sub("\n", text[:MAX_TEXT_CHARS])


def _charset(part: Message) -> str | None:
    try:
        charset = part.get_content_charset()
    except Exception:
        # A malformed Content-Type parameter: read the part as UTF-8.
        return None
    if not isinstance(charset, str) or len(charset) > 40:
        return None
    try:
        name = codecs.lookup(charset).name
    except LookupError:
        return None
    return None if name in _NOT_CHARSETS else name


def _one_line(text: str) -> str:
    """`text` on one line: control characters and runs of white space become one space, at most
    MAX_DIAGNOSTIC_CHARS characters."""
    text = "".join(
        character if character.isprintable() else " " for character in text[: MAX_DIAGNOSTIC_CHARS * 4]
    )
    text = _SPACES.sub(" ", text).strip()
    if len(text) > MAX_DIAGNOSTIC_CHARS:
        text = text[: MAX_DIAGNOSTIC_CHARS - 1].rstrip() + "…"
    return text
