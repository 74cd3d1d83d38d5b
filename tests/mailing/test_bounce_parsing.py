"""mailing.bounce_parsing: each fixture read as its MTA meant it, the DSN and ARF rules, the VERP token,
classify's table, and hostile input that must neither raise nor take long. No database."""

import logging
import os
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from mailing.bounce_parsing import (
    MAX_DIAGNOSTIC_CHARS,
    MAX_REPORT_BYTES,
    BounceReport,
    Kind,
    classify,
    parse_report,
    token_from_address,
)

FIXTURES = Path(__file__).parent / "fixtures" / "bounces"
BOUNCE_DOMAIN = "bounce.example.net"
FEEDBACK_LOOP_ADDRESS = f"fbl@{BOUNCE_DOMAIN}"  # where providers send complaints: not a VERP address


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def verp(token: str) -> str:
    return f"bounces+{token}@{BOUNCE_DOMAIN}"


@contextmanager
def nothing_logged():
    """parse_report turns an unforeseen exception into None and a warning: fail on the warning, so the
    catch-all never hides a bug from these tests."""
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("mailing.bounce_parsing")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
    assert not records, [record.getMessage() for record in records]


def parse(data: bytes, envelope_recipient: str | None = None) -> BounceReport | None:
    with nothing_logged():
        return parse_report(data, envelope_recipient=envelope_recipient, bounce_domain=BOUNCE_DOMAIN)


# --- every fixture --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    envelope: str  # the RCPT TO the report arrives for
    kind: Kind
    token: str | None  # with that envelope
    quoted_token: str | None  # with no envelope: what the report itself quotes
    recipient: str | None
    status: str | None
    smtp_code: int | None
    diagnostic_start: str
    reporter: str | None


REPORTS = {
    # Postfix's RFC 3464 DSN: the remote MX refused the address at RCPT TO.
    "postfix_user_unknown.eml": Expected(
        envelope=verp("pf_7Gk2mQx9LrT4"),
        kind=Kind.HARD,
        token="pf_7Gk2mQx9LrT4",
        quoted_token="pf_7Gk2mQx9LrT4",  # X-Postfix-Sender
        recipient="jane.doe@example.com",
        status="5.1.1",
        smtp_code=550,
        diagnostic_start="550 5.1.1 <jane.doe@example.com>: Recipient address rejected: User unknown in",
        reporter="mta1.relay.example.net",
    ),
    # Exim's classic plain-text bounce, with the message copied inline after it.
    "exim_user_unknown.eml": Expected(
        envelope=verp("ex-Wq81ZbN0cVy5"),
        kind=Kind.HARD,
        token="ex-Wq81ZbN0cVy5",
        quoted_token="ex-Wq81ZbN0cVy5",  # the copy's Return-path
        recipient="info@bakery.example.org",
        status="5.1.1",
        smtp_code=550,
        diagnostic_start="550 5.1.1 <info@bakery.example.org>: Recipient address rejected",
        reporter="smtp.hosting.example.org",
    ),
    # A Microsoft 365 NDR: "Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound...'", a
    # delivery-status part and the returned headers.
    "microsoft365_recipient_not_found.eml": Expected(
        envelope=verp("ms365_Hn4Ls8QeP2"),
        kind=Kind.HARD,
        token="ms365_Hn4Ls8QeP2",
        quoted_token="ms365_Hn4Ls8QeP2",  # Return-Path in the text/rfc822-headers part
        recipient="m.rossi@contoso.com",
        status="5.1.10",
        smtp_code=550,
        diagnostic_start="550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP",
        reporter="dm6pr11mb4123.namprd11.prod.outlook.com",
    ),
    # An Exchange 2010 NDR's human-readable part only (its report parts dropped on the way): the
    # "#550 5.1.1 ... ##" line under "Diagnostic information for administrators".
    "exchange2010_ndr_text_only.eml": Expected(
        envelope=verp("exch_Tz6Rb1Mn9Kd"),
        kind=Kind.HARD,
        token="exch_Tz6Rb1Mn9Kd",
        quoted_token="exch_Tz6Rb1Mn9Kd",  # Return-Path under "Original message headers"
        recipient="alex.smith@fabrikam.example",
        status="5.1.1",
        smtp_code=550,
        diagnostic_start="550 5.1.1 RESOLVER.ADR.RecipNotFound; not found",
        reporter="fabrikam.example",
    ),
    # Google's DSN (mailer-daemon@googlemail.com) with Gmail's multi-line 550-5.1.1 reply.
    "gmail_no_such_user.eml": Expected(
        envelope=verp("gm_Jv3Xc7Pa5Ye0"),
        kind=Kind.HARD,
        token="gm_Jv3Xc7Pa5Ye0",
        quoted_token="gm_Jv3Xc7Pa5Ye0",  # the returned message's Return-Path
        recipient="chris.nguyen@gmail.com",
        status="5.1.1",
        smtp_code=550,
        diagnostic_start="550 5.1.1 The email account that you tried to reach does not exist. Please try "
        "double-checking the recipient's email address for typos or unnecessary spaces.",
        reporter="googlemail.com",
    ),
    # Yahoo's qmail-style "Failure Notice": no enhanced status code, "554: delivery error: dd ...".
    "yahoo_no_account.eml": Expected(
        envelope=verp("yh_Du2Fw6Ki8Os4"),
        kind=Kind.HARD,
        token="yh_Du2Fw6Ki8Os4",
        quoted_token="yh_Du2Fw6Ki8Os4",
        recipient="jdoe1987@yahoo.com",
        status=None,
        smtp_code=554,
        diagnostic_start="554: delivery error: dd This user doesn't have a yahoo.com account",
        reporter="yahoo.com",
    ),
    # A full mailbox behind Dovecot: 5.2.2 is permanent in form but soft in fact.
    "dovecot_mailbox_full.eml": Expected(
        envelope=verp("full_Bq5Nr9Ht3Lz"),
        kind=Kind.SOFT,
        token="full_Bq5Nr9Ht3Lz",
        quoted_token="full_Bq5Nr9Ht3Lz",
        recipient="maria.garcia@correo.example.es",
        status="5.2.2",
        smtp_code=552,
        diagnostic_start="552 5.2.2 <maria.garcia@correo.example.es> Quota exceeded (mailbox for user is full)",
        reporter="mta1.relay.example.net",
    ),
    # Postfix's delay warning: Action: delayed, Status: 4.4.1, a diagnostic that is not an SMTP reply.
    "postfix_delayed.eml": Expected(
        envelope=verp("dly_Ck7Vm2Gs6Pw"),
        kind=Kind.DELAY,
        token="dly_Ck7Vm2Gs6Pw",
        quoted_token="dly_Ck7Vm2Gs6Pw",
        recipient="tom@slowmail.example",
        status="4.4.1",
        smtp_code=None,
        diagnostic_start="connect to mx.slowmail.example[203.0.113.77]:25: Connection timed out",
        reporter="mta1.relay.example.net",
    ),
    # Yahoo's complaint feedback loop: ARF with the whole message attached.
    "yahoo_complaint_arf.eml": Expected(
        envelope=FEEDBACK_LOOP_ADDRESS,
        kind=Kind.COMPLAINT,
        token="cfl_Ma8Ex4Ru1Ti",  # Original-Mail-From, and the returned Return-Path
        quoted_token="cfl_Ma8Ex4Ru1Ti",
        recipient="sam.lee@yahoo.com",
        status=None,
        smtp_code=None,
        diagnostic_start="This is an email abuse report for an email message received from IP 198.51.100.21",
        reporter="arf.mail.yahoo.com",
    ),
    # Microsoft's JMRP as ARF: the report fields are bare and the recipient is withheld; the returned
    # headers' Return-Path is the only way back to the message.
    "microsoft_jmrp_complaint_arf.eml": Expected(
        envelope=FEEDBACK_LOOP_ADDRESS,
        kind=Kind.COMPLAINT,
        token="jmrp_Ws3Ob7Zf5Qa",
        quoted_token="jmrp_Ws3Ob7Zf5Qa",
        recipient=None,
        status=None,
        smtp_code=None,
        diagnostic_start="This is an email abuse report for an email message received from IP 198.51.100.21",
        reporter="hotmail.com",
    ),
    # Microsoft's JMRP before ARF: the message attached, the recipient in X-HmXmrOriginalRecipient and
    # no Return-Path, so no token: the address is all a caller can act on.
    "microsoft_jmrp_legacy_complaint.eml": Expected(
        envelope=FEEDBACK_LOOP_ADDRESS,
        kind=Kind.COMPLAINT,
        token=None,
        quoted_token=None,
        recipient="lena.k@hotmail.com",
        status=None,
        smtp_code=None,
        diagnostic_start="complaint about message from 198.51.100.21",
        reporter="hotmail.com",
    ),
}

NOT_REPORTS = {
    # Outlook's out-of-office reply ("Automatic reply:", Auto-Submitted: auto-generated).
    "exchange_out_of_office.eml": verp("ooo_Rk4Hx8Jm1Vb"),
    # A Sieve vacation reply in German, ISO-8859-1 8-bit body, encoded-word From.
    "sieve_vacation.eml": verp("vac_Gz5Kt1Qw7Xe"),
    # Spam sent to a harvested VERP address; it talks of a "delivery" waiting.
    "spam_to_bounce_address.eml": verp("spam_Vn2Yq8Lc4Hs"),
    # A scanner that mails its PDFs to the bounce address: nothing to recognise.
    "no_recognisable_content.eml": verp("scan_Ht6Wp3Bz9Mc"),
}


def test_every_fixture_has_an_expectation():
    assert sorted(path.name for path in FIXTURES.glob("*.eml")) == sorted([*REPORTS, *NOT_REPORTS])


@pytest.mark.parametrize(("name", "expected"), REPORTS.items(), ids=list(REPORTS))
def test_fixture_is_read_as_its_mta_meant(name, expected):
    # when
    report = parse(fixture(name), envelope_recipient=expected.envelope)
    # then
    assert report is not None
    assert report.kind is expected.kind
    assert report.token == expected.token
    assert report.recipient == expected.recipient
    assert report.status == expected.status
    assert report.smtp_code == expected.smtp_code
    assert report.diagnostic.startswith(expected.diagnostic_start), report.diagnostic
    assert report.reporter == expected.reporter
    assert "\n" not in report.diagnostic and len(report.diagnostic) <= MAX_DIAGNOSTIC_CHARS


@pytest.mark.parametrize(("name", "expected"), REPORTS.items(), ids=list(REPORTS))
def test_without_the_envelope_the_token_comes_from_what_the_report_quotes(name, expected):
    report = parse(fixture(name))
    assert report is not None
    assert report.token == expected.quoted_token
    assert report.kind is expected.kind


@pytest.mark.parametrize("name", [*REPORTS, *NOT_REPORTS])
def test_crlf_line_ends_read_alike(name):
    envelope = REPORTS[name].envelope if name in REPORTS else NOT_REPORTS[name]
    unix = parse(fixture(name), envelope_recipient=envelope)
    wire = parse(fixture(name).replace(b"\n", b"\r\n"), envelope_recipient=envelope)
    assert wire == unix


@pytest.mark.parametrize(("name", "envelope"), NOT_REPORTS.items(), ids=list(NOT_REPORTS))
def test_replies_spam_and_noise_are_not_reports(name, envelope):
    assert parse(fixture(name), envelope_recipient=envelope) is None


@pytest.mark.parametrize(
    ("name", "kind", "recipient", "status"),
    [
        ("postfix_user_unknown.eml", Kind.HARD, "jane.doe@example.com", "5.1.1"),
        ("dovecot_mailbox_full.eml", Kind.SOFT, "maria.garcia@correo.example.es", "5.2.2"),
        ("gmail_no_such_user.eml", Kind.HARD, "chris.nguyen@gmail.com", None),
        ("microsoft365_recipient_not_found.eml", Kind.HARD, "m.rossi@contoso.com", "5.1.10"),
    ],
)
def test_the_explanation_alone_is_enough_when_the_delivery_status_part_is_lost(name, kind, recipient, status):
    # given a DSN whose message/delivery-status part a gateway dropped
    data = fixture(name)
    without_status = re.sub(
        rb"Content-Type: message/delivery-status\n\n.*?(?=\n--)",
        b"Content-Type: text/x-dropped\n\n",
        data,
        flags=re.S,
    )
    assert without_status != data
    # when
    report = parse(without_status)
    # then
    assert report is not None
    assert (report.kind, report.recipient, report.status) == (kind, recipient, status)


# --- delivery status notifications ------------------------------------------------------------------------

RETURNED = """Return-Path: <bounces+dsn_Pq4Wz8Kd2Rm@bounce.example.net>
From: Example Shop <orders@shop.example.com>
To: kim@example.org
Subject: Your receipt
Message-ID: <1737000000.1@app-7.example.net>

Thanks for your order.
"""


def dsn(
    *recipient_blocks: str, returned: str = RETURNED, status_type: str = "message/delivery-status"
) -> bytes:
    """A DSN as Postfix writes it, with the given per-recipient field blocks."""
    blocks = "\n\n".join(block.strip("\n") for block in recipient_blocks)
    return f"""From: MAILER-DAEMON@mta1.relay.example.net (Mail Delivery System)
To: bounces+dsn_Pq4Wz8Kd2Rm@bounce.example.net
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"

--b1
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mta1.relay.example.net.

--b1
Content-Type: {status_type}

Reporting-MTA: dns; mta1.relay.example.net

{blocks}

--b1
Content-Type: message/rfc822

{returned}
--b1--
""".encode()


FAILED = """Final-Recipient: rfc822; kim@example.org
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <kim@example.org>: Recipient address rejected: User unknown
"""
DELAYED = """Final-Recipient: rfc822; lee@example.org
Action: delayed
Status: 4.4.1
Diagnostic-Code: X-Postfix; connect to mx.example.org[192.0.2.9]:25: Connection refused
"""


@pytest.mark.parametrize("action", ["delivered", "relayed", "expanded"])
def test_a_dsn_that_reports_success_is_not_a_failure(action):
    block = f"Final-Recipient: rfc822; kim@example.org\nAction: {action}\nStatus: 2.0.0\n"
    assert parse(dsn(block)) is None


def test_a_failed_recipient_is_reported_before_a_delayed_or_delivered_one():
    delivered = "Final-Recipient: rfc822; ok@example.org\nAction: delivered\nStatus: 2.0.0\n"
    report = parse(dsn(delivered, DELAYED, FAILED))
    assert (report.kind, report.recipient, report.status) == (Kind.HARD, "kim@example.org", "5.1.1")


def test_a_delayed_recipient_is_a_deferral_whatever_its_status():
    report = parse(dsn(DELAYED.replace("Status: 4.4.1", "Status: 5.4.1")))
    assert (report.kind, report.recipient, report.smtp_code) == (Kind.DELAY, "lee@example.org", None)
    assert report.diagnostic == "connect to mx.example.org[192.0.2.9]:25: Connection refused"


def test_without_an_action_the_status_class_decides():
    assert parse(dsn("Final-Recipient: rfc822; kim@example.org\nStatus: 2.0.0\n")) is None
    report = parse(dsn("Final-Recipient: rfc822; kim@example.org\nStatus: 5.1.2\n"))
    assert (report.kind, report.status) == (Kind.HARD, "5.1.2")


def test_a_generic_status_gives_way_to_the_servers_specific_one():
    block = FAILED.replace("Status: 5.1.1", "Status: 5.0.0").replace("550 5.1.1", "552 5.2.2")
    report = parse(dsn(block.replace("User unknown", "Mailbox full")))
    assert (report.kind, report.status, report.smtp_code) == (Kind.SOFT, "5.2.2", 552)


def test_original_recipient_stands_in_for_a_missing_final_recipient():
    block = FAILED.replace(
        "Final-Recipient: rfc822; kim@example.org", "Original-Recipient: rfc822;<kim@example.org>"
    )
    assert parse(dsn(block)).recipient == "kim@example.org"


def test_a_global_dsn_with_a_utf8_address_is_read():
    # given RFC 6533's message/global-delivery-status, its address type utf-8 with an escaped character
    block = FAILED.replace("rfc822; kim@example.org", "utf-8; j\\x{00F6}rg@b\u00fccher.example")
    # when
    report = parse(dsn(block, status_type="message/global-delivery-status"))
    # then
    assert (report.kind, report.recipient) == (Kind.HARD, "j\u00f6rg@b\u00fccher.example")


def test_a_failure_without_any_code_or_words_is_unknown():
    report = parse(dsn("Final-Recipient: rfc822; kim@example.org\nAction: failed\n"))
    assert (report.kind, report.status, report.smtp_code, report.diagnostic) == (Kind.UNKNOWN, None, None, "")


def test_a_diagnostic_is_one_line_without_control_characters_and_trimmed():
    long_reply = "550 5.1.1 " + "no such user \x00\x1b[31m " * 200
    report = parse(
        dsn(
            FAILED.replace(
                "550 5.1.1 <kim@example.org>: Recipient address rejected: User unknown", long_reply
            )
        )
    )
    assert report.diagnostic.startswith("550 5.1.1 no such user")
    assert len(report.diagnostic) <= MAX_DIAGNOSTIC_CHARS
    assert report.diagnostic.isprintable()


def test_an_address_with_control_characters_is_no_address():
    # a caller stores the recipient, and PostgreSQL refuses NUL in text
    report = parse(dsn(FAILED.replace("rfc822; kim@example.org", "rfc822; kim\x00@example.org")))
    assert report.kind is Kind.HARD
    assert report.recipient is None


# --- the token -----------------------------------------------------------------------------------------------


def test_the_envelope_token_wins_over_the_one_the_report_quotes():
    report = parse(dsn(FAILED), envelope_recipient=verp("envelope_Tk0001"))
    assert report.token == "envelope_Tk0001"


@pytest.mark.parametrize(
    "envelope",
    [
        None,
        FEEDBACK_LOOP_ADDRESS,
        "bounces+other_Tk00001@bounce.elsewhere.example",
        "bounces+bad token@bounce.example.net",
    ],
)
def test_without_our_verp_envelope_the_returned_return_path_gives_the_token(envelope):
    assert parse(dsn(FAILED), envelope_recipient=envelope).token == "dsn_Pq4Wz8Kd2Rm"


def test_message_ids_are_never_read_as_tokens():
    # given a returned message whose only token-like values are in Message-ID, X-Message-Id and To
    returned = """From: Example Shop <orders@shop.example.com>
To: bounces+to_Tk00000001@bounce.example.net
Subject: Your receipt
Message-ID: <bounces+mid_Tk0000001@bounce.example.net>
X-Message-Id: xmid_Tk0000001
Sender: bounces+sender_Tk0001@bounce.example.net

Thanks.
"""
    # when
    report = parse(dsn(FAILED, returned=returned))
    # then
    assert report.kind is Kind.HARD
    assert report.token is None


def test_a_return_path_at_another_domain_gives_no_token():
    returned = RETURNED.replace("@bounce.example.net", "@bounce.attacker.example")
    assert parse(dsn(FAILED, returned=returned)).token is None


# --- feedback reports -----------------------------------------------------------------------------------------


def arf(feedback_fields: str) -> bytes:
    return f"""From: Feedback Loop <fbl@isp.example>
To: {FEEDBACK_LOOP_ADDRESS}
Subject: Abuse report
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="f1"

--f1
Content-Type: text/plain

This is an email abuse report.

--f1
Content-Type: message/feedback-report

{feedback_fields}
--f1
Content-Type: message/rfc822

{RETURNED}
--f1--
""".encode()


@pytest.mark.parametrize("feedback_type", ["abuse", "fraud", "virus", "other", None])
def test_abuse_fraud_virus_other_and_untyped_feedback_are_complaints(feedback_type):
    fields = "User-Agent: SomeFBL/1.0\nVersion: 1\nOriginal-Rcpt-To: <kim@example.org>\n"
    if feedback_type:
        fields = f"Feedback-Type: {feedback_type}\n{fields}"
    report = parse(arf(fields))
    assert (report.kind, report.recipient, report.token) == (
        Kind.COMPLAINT,
        "kim@example.org",
        "dsn_Pq4Wz8Kd2Rm",
    )
    assert report.reporter == "isp.example"


@pytest.mark.parametrize("feedback_type", ["not-spam", "auth-failure", "dmarc", "opt-out-please"])
def test_feedback_that_is_not_a_complaint_is_none(feedback_type):
    assert parse(arf(f"Feedback-Type: {feedback_type}\nUser-Agent: SomeFBL/1.0\nVersion: 1\n")) is None


def test_a_feedback_reports_own_reporting_mta_names_the_reporter():
    report = parse(arf("Feedback-Type: abuse\nVersion: 1\nReporting-MTA: dns; fbl.isp.example\n"))
    assert report.reporter == "fbl.isp.example"


# --- plain-text bounces and auto-replies ------------------------------------------------------------------------

EXIM_HEAD = """From: Mail Delivery System <Mailer-Daemon@smtp.hosting.example.org>
To: bounces+ex_Tk00000001@bounce.example.net
Subject: Mail delivery failed: returning message to sender
Auto-Submitted: auto-replied

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

"""


@pytest.mark.parametrize(
    "failure",
    [
        # Exim 4.9x: host on its own line, reply on the next
        "  info@bakery.example.org\n    host mx.bakery.example.org [192.0.2.44]\n"
        "    SMTP error from remote mail server after RCPT TO:<info@bakery.example.org>:\n"
        "    550 5.1.1 <info@bakery.example.org>: User unknown\n",
        # the reply on the same line as the command
        "  info@bakery.example.org\n"
        "    SMTP error from remote mail server after RCPT TO:<info@bakery.example.org>: 550 5.1.1 User unknown\n",
        # a multi-line reply
        "  info@bakery.example.org\n"
        "    SMTP error from remote mail server after RCPT TO:<info@bakery.example.org>:\n"
        "    host mx.bakery.example.org [192.0.2.44]: 550-5.1.1 The mailbox does not exist here.\n"
        "    550-5.1.1 Check the address\n    550 5.1.1 and try again\n",
    ],
)
def test_exims_layouts_read_alike(failure):
    report = parse(f"{EXIM_HEAD}{failure}".encode())
    assert (report.kind, report.recipient, report.status, report.smtp_code) == (
        Kind.HARD,
        "info@bakery.example.org",
        "5.1.1",
        550,
    )
    assert report.token == "ex_Tk00000001" or report.token is None
    assert "\n" not in report.diagnostic and not re.search(r"\b550-", report.diagnostic)


def test_an_exim_bounce_without_a_reply_is_still_hard_when_it_says_permanent():
    report = parse(f"{EXIM_HEAD}  info@bakery.example.org\n    Unrouteable address\n".encode())
    assert (report.kind, report.recipient, report.smtp_code) == (Kind.HARD, "info@bakery.example.org", None)


def test_an_exim_delay_warning_is_a_deferral():
    warning = EXIM_HEAD.replace(
        "Mail delivery failed: returning message to sender", "Warning: message 1tYk delayed 24 hours"
    )
    warning = warning.split("A message that you sent")[0] + (
        "A message that you sent has not yet been delivered to one or more of its\n"
        "recipients after more than 24 hours on the queue on smtp.hosting.example.org.\n\n"
        "  info@bakery.example.org\n    host mx.bakery.example.org [192.0.2.44]\n"
        "    SMTP error from remote mail server after RCPT TO:<info@bakery.example.org>:\n"
        "    451 4.3.0 Temporary lookup failure\n\n"
        "No action is required on your part. Delivery attempts will continue for\nsome time.\n"
    )
    report = parse(warning.encode())
    assert (report.kind, report.status, report.smtp_code) == (Kind.DELAY, "4.3.0", 451)


def test_an_auto_reply_that_quotes_bounce_sentences_is_still_an_auto_reply():
    reply = """From: Sam Lee <sam@example.org>
To: bounces+ooo_Tk0000001@bounce.example.net
Subject: Re: Your receipt
Auto-Submitted: auto-replied
X-Autoreply: yes

I'm away. Your message could not be delivered to my assistant either:
550 5.1.1 user unknown
"""
    assert parse(reply.encode()) is None


def test_a_mail_systems_bounce_that_says_little_more_than_its_subject_is_unknown():
    terse = "From: MAILER-DAEMON@mx.example.org\nSubject: Undeliverable mail\n\nSee the attached headers.\n"
    report = parse(terse.encode(), envelope_recipient=verp("terse_Tk00001"))
    assert (report.kind, report.token, report.recipient, report.reporter) == (
        Kind.UNKNOWN,
        "terse_Tk00001",
        None,
        "mx.example.org",
    )


def test_a_person_writing_to_the_bounce_address_is_not_a_bounce():
    note = "From: kim@example.org\nTo: bounces+x_Tk000000001@bounce.example.net\nSubject: who are you?\n\nPlease stop.\n"
    assert parse(note.encode()) is None


# --- classify -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "smtp_code", "diagnostic", "kind"),
    [
        # RFC 3463 classes
        ("5.1.1", 550, "User unknown", Kind.HARD),
        ("5.1.2", 550, "Host or domain name not found", Kind.HARD),
        ("5.1.10", 550, "RESOLVER.ADR.RecipientNotFound", Kind.HARD),
        ("5.4.4", 550, "Unable to route", Kind.HARD),
        ("5.0.0", None, "", Kind.HARD),
        (None, 550, "Requested action not taken", Kind.HARD),
        ("4.4.1", None, "Connection timed out", Kind.SOFT),
        ("4.1.1", 450, "Recipient address rejected: User unknown (try later)", Kind.SOFT),
        (None, 421, "Service not available", Kind.SOFT),
        # a full mailbox is soft whatever its class
        ("5.2.2", 552, "Mailbox full", Kind.SOFT),
        (None, 552, "Requested mail action aborted: exceeded storage allocation", Kind.SOFT),
        ("5.0.0", 550, "user is over quota", Kind.SOFT),
        (None, None, "Quota exceeded (mailbox for user is full)", Kind.SOFT),
        # policy and reputation blocks are about us: soft
        (
            "5.7.1",
            550,
            "Service unavailable; client [198.51.100.21] blocked using zen.spamhaus.org",
            Kind.SOFT,
        ),
        ("5.7.1", 554, "Message rejected as spam by Content Filtering", Kind.SOFT),
        ("5.7.1", 550, "Our system has detected that this message is likely unsolicited mail", Kind.SOFT),
        ("5.7.1", 550, "part of their network is on our block list (S3150)", Kind.SOFT),
        (
            "5.7.26",
            550,
            "Unauthenticated email from shop.example.com is not accepted due to DMARC policy",
            Kind.SOFT,
        ),
        ("5.7.1", 550, "Poor sender reputation", Kind.SOFT),
        (None, 554, "rejected due to local policy", Kind.SOFT),
        ("5.7.0", 550, "Delivery not authorized", Kind.SOFT),
        # ...unless the words say the address does not exist
        ("5.7.1", 550, "<kim@example.org>: Recipient address rejected: user does not exist", Kind.HARD),
        (None, 550, "No such user here", Kind.HARD),
        (None, 550, "Requested action not taken: mailbox unavailable", Kind.HARD),
        (None, 554, "delivery error: dd This user doesn't have a yahoo.com account", Kind.HARD),
        ("5.7.1", 554, "<kim@example.org>: Relay access denied", Kind.HARD),
        # the address is fine, the sender or the message is not
        ("5.1.8", 553, "Sender address rejected: Domain not found", Kind.SOFT),
        (
            "5.1.0",
            550,
            "<bounces+x@bounce.example.net>: Sender address rejected: Domain not found",
            Kind.SOFT,
        ),
        ("5.3.4", 552, "Message size exceeds fixed limit", Kind.SOFT),
        ("5.6.0", 550, "Content rejected", Kind.SOFT),
        # words alone
        (None, None, "The email account that you tried to reach does not exist.", Kind.HARD),
        (None, None, "Blocked for spam", Kind.SOFT),
        (None, None, "Something went wrong", Kind.UNKNOWN),
        (None, None, "", Kind.UNKNOWN),
        # not a failure, or nonsense
        ("2.0.0", 250, "OK", Kind.UNKNOWN),
        ("9.9.9", 999, "user unknown", Kind.HARD),
        ("garbage", None, "", Kind.UNKNOWN),
    ],
)
def test_classify(status, smtp_code, diagnostic, kind):
    assert classify(status, smtp_code, diagnostic) is kind


def test_classify_never_raises_on_wrong_types():
    assert classify(5.11, "550", None) is Kind.UNKNOWN  # type: ignore[arg-type]


# --- token_from_address -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "token"),
    [
        ("bounces+Ab3_x-Yz901@bounce.example.net", "Ab3_x-Yz901"),
        ("<bounces+Ab3_x-Yz901@bounce.example.net>", "Ab3_x-Yz901"),
        ("  <bounces+Ab3_x-Yz901@bounce.example.net> ", "Ab3_x-Yz901"),
        # domains compare without regard to case; our prefix and the token do not
        ("bounces+Ab3_x-Yz901@BOUNCE.Example.NET", "Ab3_x-Yz901"),
        ("BOUNCES+Ab3_x-Yz901@bounce.example.net", None),
        ("bounces+" + "a" * 64 + "@bounce.example.net", "a" * 64),
        # another domain, or a look-alike of ours
        ("bounces+Ab3_x-Yz901@example.net", None),
        ("bounces+Ab3_x-Yz901@x.bounce.example.net", None),
        ("bounces+Ab3_x-Yz901@bounce.example.net.attacker.example", None),
        ("bounces+Ab3_x-Yz901@bounce.example.net.", None),
        ("bounces+Ab3_x-Yz901@bounce.exampIe.net", None),
        ("bounces+Ab3_x-Yz901@bounce.ex\u0430mple.net", None),
        ("bounces+Ab3_x-Yz901@evil.example@bounce.example.net", None),
        # not our shape
        ("bounces@bounce.example.net", None),
        ("bouncesAb3_x-Yz901@bounce.example.net", None),
        ("Ab3_x-Yz901@bounce.example.net", None),
        ("bounces+@bounce.example.net", None),
        ("bounces+short@bounce.example.net", None),
        ("bounces+" + "a" * 65 + "@bounce.example.net", None),
        ("bounces+Ab3.x-Yz901@bounce.example.net", None),
        ("bounces+Ab3+x-Yz901@bounce.example.net", None),
        ('"bounces+Ab3_x-Yz901"@bounce.example.net', None),
        ("Shop <bounces+Ab3_x-Yz901@bounce.example.net>", None),
        ("<<bounces+Ab3_x-Yz901@bounce.example.net>>", None),
        ("bounces+Ab3_x-Yz901", None),
        ("", None),
        # injected line breaks and control characters
        ("bounces+Ab3_x-Yz901@bounce.example.net\r\nBcc: victim@example.org", None),
        ("bounces+Ab3_x-Yz901\r\n@bounce.example.net", None),
        ("bounces+Ab3_x-Yz901@bounce.example.net\n", None),
        ("bounces+Ab3_x-Yz901@bounce.example.net\x00", None),
        ("bounces+Ab3_x\x00Yz901@bounce.example.net", None),
        # very long
        ("bounces+" + "a" * 100_000 + "@bounce.example.net", None),
        ("bounces+Ab3_x-Yz901@" + "b" * 100_000, None),
        (" " * 100_000 + "bounces+Ab3_x-Yz901@bounce.example.net", None),
        # not a string at all
        (None, None),
        (b"bounces+Ab3_x-Yz901@bounce.example.net", None),
    ],
)
def test_token_from_address(address, token):
    assert token_from_address(address, bounce_domain=BOUNCE_DOMAIN) == token


@pytest.mark.parametrize("bounce_domain", ["", None, 42])
def test_no_bounce_domain_means_no_token(bounce_domain):
    assert token_from_address("bounces+Ab3_x-Yz901@bounce.example.net", bounce_domain=bounce_domain) is None


# --- hostile input ----------------------------------------------------------------------------------------------

# FUZZ_EXAMPLES=2000 for a longer hunt; CI keeps the default, bounded run.
FUZZ = hsettings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", 150)),
    deadline=None,  # timed below with a generous bound instead: CI machines stall
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
SECONDS_PER_REPORT = 5.0  # measured worst cases take under one second


def read_within_bounds(data: bytes, envelope_recipient: str | None = None) -> BounceReport | None:
    """parse_report's contract on any input: no exception, nothing logged, quick, and a well-formed
    report or None."""
    started = time.perf_counter()
    report = parse(data, envelope_recipient=envelope_recipient)
    assert time.perf_counter() - started < SECONDS_PER_REPORT
    if report is not None:
        assert isinstance(report.kind, Kind)
        assert report.token is None or re.fullmatch(r"[A-Za-z0-9_-]{10,64}", report.token)
        assert report.status is None or re.fullmatch(r"[245]\.\d{1,3}\.\d{1,3}", report.status)
        assert report.smtp_code is None or 200 <= report.smtp_code <= 599
        assert isinstance(report.diagnostic, str) and len(report.diagnostic) <= MAX_DIAGNOSTIC_CHARS
        assert report.diagnostic.isprintable()
        assert report.recipient is None or (
            len(report.recipient) <= 320 and report.recipient.isprintable() and " " not in report.recipient
        )
        assert report.reporter is None or report.reporter.isprintable()
    return report


CONTENT_TYPES = [
    "text/plain",
    "text/html",
    "multipart/report; report-type=delivery-status",
    "multipart/report; report-type=feedback-report",
    "multipart/mixed",
    "multipart/alternative",
    "multipart/digest",
    "message/delivery-status",
    "message/global-delivery-status",
    "message/feedback-report",
    "message/rfc822",
    "message/global",
    "text/rfc822-headers",
    "application/octet-stream",
    "multipart/report; report-type=",
    "message/",
    "",
]
CHARSETS = ["utf-8", "us-ascii", "iso-8859-1", "windows-1252", "utf-7", "utf-16", "punycode", "idna", "zlib",
            "base64", "rot13", "x-unknown", "\u00e9", '"utf-8', "", "unicode-escape"]  # fmt: skip
ENCODINGS = ["7bit", "8bit", "binary", "base64", "quoted-printable", "x-uuencode", "bogus", ""]
FIELD_NAMES = ["Final-Recipient", "Original-Recipient", "Action", "Status", "Diagnostic-Code", "Reporting-MTA",
               "X-Postfix-Sender", "Feedback-Type", "Original-Mail-From", "Original-Rcpt-To", "Return-Path",
               "Remote-MTA", "From", "Subject", "Auto-Submitted", "X-Failed-Recipients",
               "X-HmXmrOriginalRecipient"]  # fmt: skip
FIELD_VALUES = ["rfc822; kim@example.org", "utf-8; j\\x{FFFFFF}@x.example", "utf-8; \\x{D800}@x", "failed",
                "delayed", "delivered", "5.1.1", "4.4.1", "5.0.0 (x)", "9.99.999", "smtp; 550-5.1.1 a\n 550 5.1.1 b",
                "smtp;", "dns; mx.example.org", f"rfc822; {verp('Tk_000000001')}", "abuse", "not-spam", "",
                "<bounces+Tk_000000001@bounce.example.net>", "Mail Delivery System <MAILER-DAEMON@x.example>",
                "=?utf-8?b?!!!?=", "=?x-unknown?q?a?=", "auto-replied"]  # fmt: skip
SENTENCES = ["This message was created automatically by mail delivery software.",
             "Sorry, we were unable to deliver your message to the following address.", "<kim@example.org>:",
             "SMTP error from remote mail server after RCPT TO:<kim@example.org>:",
             "host mx.example.org [192.0.2.1] said: 550 5.1.1 user unknown (in reply to RCPT TO command)",
             "Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound'", "#550 5.1.1 RESOLVER ##",
             "------ This is a copy of the message, including all the headers. ------",
             "Return-path: <bounces+Tk_000000001@bounce.example.net>", "The response was:", "said:", "(reason:",
             "Delivery attempts will continue", "Delivery has failed to these recipients or groups:",
             "Generating server: x", "550-5.1.1 a", "   ", ""]  # fmt: skip

hostile_text = st.one_of(
    st.text(max_size=60),
    st.text(
        alphabet=st.sampled_from(
            ["\x00", "\r", "\n", "\t", " ", ":", ";", "<", ">", "@", '"', "=", "-", "5"]
        ),
        max_size=40,
    ),
)
field_lines = st.lists(
    st.tuples(st.sampled_from(FIELD_NAMES), st.one_of(st.sampled_from(FIELD_VALUES), hostile_text)),
    max_size=8,
).map(lambda fields: "\n".join(f"{name}: {value}" for name, value in fields))
text_lines = st.lists(st.one_of(st.sampled_from(SENTENCES), hostile_text), max_size=12).map("\n".join)
leaf_bodies = st.one_of(
    st.lists(field_lines, max_size=4)
    .map("\n\n".join)
    .map(lambda text: text.encode("utf-8", "surrogatepass")),
    text_lines.map(lambda text: text.encode("utf-8", "surrogatepass")),
    text_lines.map(lambda text: text.encode("utf-16")),
    st.binary(max_size=300),
)


@st.composite
def mime_ish(draw, depth: int = 0) -> bytes:
    """A message that is nearly MIME: real content types and report fields, hostile values, broken
    boundaries and encodings, nested up to three deep."""
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    boundary = draw(st.sampled_from(["b", "=_x", "----=_Part_1", "", '"', "b b"]))
    header = (
        f"{draw(field_lines)}\n"
        f'Content-Type: {content_type}; charset={draw(st.sampled_from(CHARSETS))}; boundary="{boundary}"\n'
        f"Content-Transfer-Encoding: {draw(st.sampled_from(ENCODINGS))}\n\n"
    ).encode("utf-8", "surrogatepass")
    if content_type.startswith("multipart/") and depth < 3:
        children = draw(st.lists(mime_ish(depth + 1), max_size=4))
        body = b"".join(b"--" + boundary.encode() + b"\n" + child + b"\n" for child in children)
        if draw(st.booleans()):
            body += b"--" + boundary.encode() + b"--\n"
    elif content_type.startswith("message/") and depth < 3 and draw(st.booleans()):
        body = draw(mime_ish(depth + 1))
    else:
        body = draw(leaf_bodies)
    line_end = draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
    return (header + body).replace(b"\n", line_end)


@FUZZ
@given(data=st.binary(max_size=4096))
def test_random_bytes_never_raise(data):
    read_within_bounds(data)


@FUZZ
@given(message=mime_ish(), envelope=st.one_of(st.none(), st.just(verp("Tk_000000002")), hostile_text))
def test_mime_ish_structures_never_raise(message, envelope):
    read_within_bounds(message, envelope_recipient=envelope)


@FUZZ
@given(
    data=st.binary(max_size=600),
    name=st.sampled_from(sorted([*REPORTS, *NOT_REPORTS])),
    cut=st.integers(0, 10_000),
)
def test_damaged_fixtures_never_raise(data, name, cut):
    # given a real report with a slice replaced by garbage: truncated mid-part, a boundary overwritten...
    original = fixture(name)
    cut %= len(original)
    # when / then
    read_within_bounds(original[:cut] + data + original[cut + len(data) :])


def padded(prefix: bytes, unit: bytes, suffix: bytes = b"") -> bytes:
    """`prefix`, then `unit` repeated up to just under MAX_REPORT_BYTES, then `suffix`."""
    repeat = (MAX_REPORT_BYTES - 2000 - len(prefix) - len(suffix)) // len(unit)
    return prefix + unit * repeat + suffix


EXIM_BOUNCE = EXIM_HEAD.encode()
WORST_CASES = {
    # beyond the parsing bounds: refused unparsed
    "a Content-Type of 200,000 parameters": padded(b"Content-Type: multipart/mixed; ", b"a=b; ", b"\n\nx"),
    "200,000 empty parts": padded(b"Content-Type: multipart/mixed; boundary=b\n\n", b"--b\n\n"),
    "a delivery-status part of blank lines": padded(b"Content-Type: message/delivery-status\n\n", b"\n"),
    # within them: parsed
    "10,000 delivery-status blocks": b"Content-Type: message/delivery-status\n\n"
    + b"Action: failed\nStatus: 5.1.1\n\n" * 9_999,
    "multiparts nested 250 deep": b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n" % (depth, depth) for depth in range(250)
    ),
    "messages nested 250 deep": b"Content-Type: message/rfc822\n\n" * 250 + b"x",
    "one 1 MB header": padded(b"Subject: ", b"a", b"\n\nbody"),
    "140,000 headers": padded(b"", b"X-A: b\n", b"\nbody"),
    "a bounce of 'said:'": padded(EXIM_BOUNCE, b"said: "),
    "a bounce of address lines": padded(EXIM_BOUNCE, b"<a@b.example>:\n"),
    "a bounce of reply lines": padded(EXIM_BOUNCE, b"550 5.1.1 x\n"),
    "a bounce of an unending local part": padded(EXIM_BOUNCE + b"The following address(es) failed:\n", b"a"),
    "a bounce of every phrase": padded(
        EXIM_BOUNCE,
        b"following address(es) failed: RCPT TO: your message to Remote Server returned 'x #550 5.1.1 ",
    ),
    "a quoted copy of Return-Path lines": padded(
        EXIM_BOUNCE + b"------ This is a copy of the message, including all the headers. ------\n",
        b"Return-path: <bounces+x@bounce.example.net>\n",
    ),
    "HTML of unclosed tags": padded(b"Content-Type: text/html\n\n", b"<a "),
    "a punycode body": padded(b"Content-Type: text/plain; charset=punycode\n\n", b"a"),
    "bare carriage returns": padded(b"Subject: x\r\r", b"a\r"),
    "a feedback report with a 900 kB field": b"Content-Type: multipart/report; report-type=feedback-report; "
    b"boundary=f\n\n--f\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nOriginal-Rcpt-To: "
    + b"a" * 900_000
    + b"@x\n--f--\n",
    "a Subject of encoded words": padded(b"Subject: ", b"=?utf-8?q?a?= ", b"\n\nbody"),
}


@pytest.mark.parametrize("data", WORST_CASES.values(), ids=list(WORST_CASES))
def test_crafted_worst_cases_finish_quickly(data):
    assert len(data) <= MAX_REPORT_BYTES
    read_within_bounds(data)


def test_oversize_input_is_refused_without_parsing():
    # given a well-formed bounce padded past the limit
    data = fixture("postfix_user_unknown.eml") + b"x" * MAX_REPORT_BYTES
    # when
    started = time.perf_counter()
    report = parse(data, envelope_recipient=verp("pf_7Gk2mQx9LrT4"))
    # then
    assert report is None
    assert time.perf_counter() - started < 0.5


def test_input_at_the_limit_is_read():
    data = fixture("postfix_user_unknown.eml")
    data += b"\n" + b"x" * (MAX_REPORT_BYTES - len(data) - 1)
    assert len(data) == MAX_REPORT_BYTES
    assert read_within_bounds(data).kind is Kind.HARD


@pytest.mark.parametrize("data", [None, "a str, not bytes", 42])
def test_input_that_is_not_bytes_gives_none(data):
    assert parse(data) is None  # type: ignore[arg-type]


def test_bytes_like_input_is_read_and_measured_in_bytes():
    data = fixture("postfix_user_unknown.eml")
    assert parse(bytearray(data)).kind is Kind.HARD
    assert parse(memoryview(data)).kind is Kind.HARD
    wide = memoryview(data + b"\0" * (MAX_REPORT_BYTES + 4 - len(data))).cast("I")  # fewer items than bytes
    assert len(wide) < MAX_REPORT_BYTES < wide.nbytes
    assert parse(wide) is None
