"""mailing.bounce_parsing: each fixture read as its MTA meant it. No database."""

import logging
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailing.bounce_parsing import (
    MAX_DIAGNOSTIC_CHARS,
    BounceReport,
    Kind,
    parse_report,
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
