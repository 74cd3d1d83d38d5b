"""Bounce reports by mail: the listener (smtplib against the real server) and process_report behind it.
A report is recorded only for the message its signed VERP token names, about that message's recipient;
everything else is dropped with no change at all."""

import json
import smtplib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from accounts.models import Usage
from mailing.bounce_listener import build_controller
from mailing.deliverability import bounces
from mailing.deliverability.bounces import Result, process_report, verp_token
from mailing.keys import create_api_key
from mailing.models import Message, MessageEvent, Suppression
from mailing.sending import OutgoingMessage, Recipient, accept_messages
from tests.factories import MasterFactory, subaccount_with_owner
from tests.mailing.conftest import free_port

FIXTURES = Path(__file__).parent / "fixtures" / "bounces"
BOUNCE_DOMAIN = "bounce.example.net"
# Each fixture's token and failed recipient, as the fixture was written (replaced by a real message's).
FIXTURE = {
    "postfix_user_unknown": ("pf_7Gk2mQx9LrT4", "jane.doe@example.com"),
    "dovecot_mailbox_full": ("full_Bq5Nr9Ht3Lz", "maria.garcia@correo.example.es"),
    "yahoo_complaint_arf": ("cfl_Ma8Ex4Ru1Ti", "sam.lee@yahoo.com"),
    "microsoft_jmrp_complaint_arf": ("jmrp_Ws3Ob7Zf5Qa", None),
    "postfix_delayed": ("dly_Ck7Vm2Gs6Pw", "tom@slowmail.example"),
}


@pytest.fixture(autouse=True)
def _bounce_domain(settings):
    settings.BOUNCE_DOMAIN = BOUNCE_DOMAIN


def _sent_message(sub, to: str) -> Message:
    [result] = accept_messages(
        account=sub,
        message=OutgoingMessage(from_email="news@shop.test", text="hi", recipients=[Recipient(to)]),
    )
    Message.objects.filter(public_id=result.id).update(status=Message.Status.SENT)
    return Message.objects.get(public_id=result.id)


def _report(name: str, *, token: str, recipient: str | None = None) -> bytes:
    fixture_token, fixture_recipient = FIXTURE[name]
    data = (FIXTURES / f"{name}.eml").read_bytes().replace(fixture_token.encode(), token.encode())
    if recipient and fixture_recipient:
        data = data.replace(fixture_recipient.encode(), recipient.encode())
    return data


def _address(token: str) -> str:
    return f"bounces+{token}@{BOUNCE_DOMAIN}"


def _state() -> tuple:
    """Everything a report may change."""
    return (
        sorted(Message.objects.values_list("public_id", "status", "last_error")),
        MessageEvent.objects.count(),
        sorted(Suppression.objects.values_list("account_id", "email", "reason")),
        sorted(
            Usage.objects.values_list("account_id", "window", "hard_bounced", "soft_bounced", "complained")
        ),
    )


@pytest.fixture
def shops(db):
    master = MasterFactory(public_id="agency")
    shop, owner = subaccount_with_owner(master, public_id="shop", monthly_limit=100)
    other, _ = subaccount_with_owner(master, public_id="other", monthly_limit=100)
    return {"master": master, "shop": shop, "owner": owner, "other": other}


# --- the listener, end to end --------------------------------------------------------------------------


@pytest.fixture
def listener():
    port = free_port()
    controller = build_controller(hostname="127.0.0.1", port=port)
    controller.start()
    yield port
    controller.stop()


def _deliver_report(port: int, rcpt: str, data: bytes):
    """As an MTA sends it: lines end in CRLF on the wire (the fixtures are stored with LF)."""
    wire = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        return client.sendmail("", [rcpt], wire)


@pytest.mark.django_db(transaction=True)
def test_a_dsn_by_smtp_bounces_the_message_suppresses_the_address_and_shows_everywhere(
    listener, shops, client
):
    # given a message delivered to jane
    shop = shops["shop"]
    message = _sent_message(shop, "jane.doe@example.com")
    token = verp_token(message.public_id)
    # when her server's DSN arrives at the message's VERP address
    assert _deliver_report(listener, _address(token), _report("postfix_user_unknown", token=token)) == {}
    # then the message bounced, the address is suppressed, and the account's counters moved
    message.refresh_from_db()
    assert message.status == Message.Status.BOUNCED
    event = message.events.exclude(kind=MessageEvent.Kind.SEND).get()
    assert event.kind == MessageEvent.Kind.HARD_BOUNCE
    assert "User unknown" in event.diagnostic
    assert event.data["status"] == "5.1.1" and event.data["smtp_code"] == 550
    assert Suppression.objects.get(account=shop).email == "jane.doe@example.com"
    assert Usage.objects.get(account=shop, window=Usage.Window.HOUR).hard_bounced == 1
    # the detail page says it in words, with the codes
    client.force_login(shops["owner"])
    page = client.get(f"/messages/{message.public_id}/").content.decode()
    assert "Mailbox does not exist (550 5.1.1)" in page
    # and programs see it: messages/info and rejects/list
    _, key = create_api_key(actor=shops["owner"], account=shop, label="t")
    info = client.post(
        "/api/1.0/messages/info.json", json.dumps({"key": key, "id": message.public_id}), "application/json"
    ).json()
    assert info["state"] == "bounced" and "5.1.1" in info["diag"]
    rejects = client.post("/api/1.0/rejects/list.json", json.dumps({"key": key}), "application/json").json()
    assert [(r["email"], r["reason"]) for r in rejects] == [("jane.doe@example.com", "hard-bounce")]


@pytest.mark.django_db(transaction=True)
def test_the_listener_refuses_recipients_outside_the_bounce_domain(listener, shops):
    with smtplib.SMTP("127.0.0.1", listener, timeout=10) as client:
        client.ehlo()
        assert "auth" not in client.esmtp_features  # reporting MTAs have no credentials
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.sendmail("", ["someone@example.com"], b"Subject: hi\r\n\r\nrelay me")
    [(code, _)] = refused.value.recipients.values()
    assert code == 550


@pytest.mark.django_db(transaction=True)
def test_the_listener_refuses_an_oversize_report(listener, shops, settings):
    message = _sent_message(shops["shop"], "jane.doe@example.com")
    token = verp_token(message.public_id)
    data = _report("postfix_user_unknown", token=token) + b"x" * (settings.BOUNCE_MAX_REPORT_BYTES + 1)
    with smtplib.SMTP("127.0.0.1", listener, timeout=10) as client:
        client.ehlo()
        assert int(client.esmtp_features["size"]) == settings.BOUNCE_MAX_REPORT_BYTES
        with pytest.raises((smtplib.SMTPSenderRefused, smtplib.SMTPDataError)) as refused:
            client.sendmail("", [_address(token)], data)
    assert refused.value.smtp_code == 552
    message.refresh_from_db()
    assert message.status == Message.Status.SENT
    assert not MessageEvent.objects.exclude(kind=MessageEvent.Kind.SEND).exists()


@pytest.mark.django_db(transaction=True)
def test_a_forged_report_is_answered_250_and_changes_nothing(listener, shops):
    message = _sent_message(shops["shop"], "jane.doe@example.com")
    before = _state()
    forged = message.public_id + "0" * bounces.MAC_CHARS
    assert _deliver_report(listener, _address(forged), _report("postfix_user_unknown", token=forged)) == {}
    assert _state() == before


# --- what process_report records and drops ------------------------------------------------------------


@pytest.mark.django_db
def test_a_token_must_carry_its_mac_so_a_public_id_alone_names_nothing(shops):
    # given another account's message, whose public id its recipient reads in X-Message-Id
    victim = _sent_message(shops["other"], "jane.doe@example.com")
    before = _state()
    # when someone bounces it by that id
    data = _report("postfix_user_unknown", token=victim.public_id)
    result = process_report(data, envelope_recipient=_address(victim.public_id))
    # then nothing happens
    assert result in (Result.FORGED_TOKEN, Result.NO_TOKEN)
    assert _state() == before


@pytest.mark.django_db
def test_a_mangled_mac_is_refused():
    public_id = "a" * 32
    token = verp_token(public_id)
    assert bounces.public_id_from_token(token) == public_id
    assert bounces.public_id_from_token(token[:-1] + ("0" if token[-1] != "0" else "1")) is None
    assert bounces.public_id_from_token(token[:-1]) is None
    assert bounces.public_id_from_token("short") is None


@pytest.mark.django_db
def test_a_report_about_another_recipient_is_dropped(shops):
    # given shop's message to jane, and a DSN naming its token but someone else's address
    message = _sent_message(shops["shop"], "jane.doe@example.com")
    token = verp_token(message.public_id)
    before = _state()
    data = _report("postfix_user_unknown", token=token, recipient="ceo@other-company.example")
    assert process_report(data, envelope_recipient=_address(token)) == Result.RECIPIENT_MISMATCH
    assert _state() == before


@pytest.mark.django_db
def test_a_report_for_another_accounts_message_through_our_own_address_is_dropped(shops):
    # given the other account's message to bob, and shop's own message to jane
    theirs = _sent_message(shops["other"], "bob@example.com")
    ours = _sent_message(shops["shop"], "jane.doe@example.com")
    before = _state()
    # when a report sent to our VERP address names their recipient
    token = verp_token(ours.public_id)
    data = _report("postfix_user_unknown", token=token, recipient=theirs.to_email)
    # then it is not about our message, and their message is untouched
    assert process_report(data, envelope_recipient=_address(token)) == Result.RECIPIENT_MISMATCH
    assert _state() == before


@pytest.mark.django_db
def test_a_complaint_suppresses_the_address_even_when_the_provider_redacts_it(shops):
    message = _sent_message(shops["shop"], "sam.lee@yahoo.com")
    token = verp_token(message.public_id)
    assert process_report(_report("yahoo_complaint_arf", token=token), _address(token)) == Result.RECORDED
    assert Suppression.objects.get(account=shops["shop"]).reason == "spam"
    redacted = _sent_message(shops["shop"], "someone@outlook.example")
    token = verp_token(redacted.public_id)
    data = _report("microsoft_jmrp_complaint_arf", token=token)
    assert process_report(data, envelope_recipient=f"fbl@{BOUNCE_DOMAIN}") == Result.RECORDED
    assert redacted.events.filter(kind=MessageEvent.Kind.SPAM).exists()


@pytest.mark.django_db
def test_a_soft_bounce_is_an_event_not_a_suppression_and_a_repeat_changes_nothing(shops):
    message = _sent_message(shops["shop"], "maria.garcia@correo.example.es")
    token = verp_token(message.public_id)
    data = _report("dovecot_mailbox_full", token=token)
    assert process_report(data, _address(token)) == Result.RECORDED
    assert message.events.filter(kind=MessageEvent.Kind.SOFT_BOUNCE).count() == 1
    assert not Suppression.objects.exists()
    before = _state()
    assert process_report(data, _address(token)) == Result.REPEATED
    assert _state() == before


@pytest.mark.django_db
def test_a_deferral_an_auto_reply_and_an_oversize_report_change_nothing(shops, settings):
    message = _sent_message(shops["shop"], "tom@slowmail.example")
    token = verp_token(message.public_id)
    before = _state()
    assert process_report(_report("postfix_delayed", token=token), _address(token)) == Result.NOT_A_FAILURE
    vacation = (FIXTURES / "sieve_vacation.eml").read_bytes()
    assert process_report(vacation, _address(token)) == Result.NOT_A_REPORT
    big = _report("postfix_user_unknown", token=token) + b" " * settings.BOUNCE_MAX_REPORT_BYTES
    assert process_report(big, _address(token)) == Result.OVERSIZE
    assert _state() == before


# --- hostile input: nothing raises, nothing changes ---------------------------------------------------

MIME_PARTS = st.sampled_from(
    [
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n",
        b"Content-Type: message/delivery-status\r\n",
        b"Content-Type: message/feedback-report\r\n",
        b"--b\r\n",
        b"--b--\r\n",
        b"Final-Recipient: rfc822; jane.doe@example.com\r\n",
        b"Action: failed\r\n",
        b"Status: 5.1.1\r\n",
        b"Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n",
        b"Return-Path: <bounces+" + b"a" * 48 + b"@bounce.example.net>\r\n",
        b"Feedback-Type: abuse\r\n",
        b"\r\n",
        b"=?utf-8?b?w6k=?=\r\n",
        b"\xff\xfe\x00",
    ]
)


@pytest.mark.django_db
@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.one_of(
        st.binary(max_size=4000), st.lists(MIME_PARTS | st.binary(max_size=40), max_size=60).map(b"".join)
    ),
    rcpt=st.one_of(st.none(), st.text(max_size=80), st.just(f"bounces+{'a' * 48}@{BOUNCE_DOMAIN}")),
)
def test_random_bytes_and_mime_never_raise_and_change_nothing(shops, data, rcpt):
    _sent_message(shops["shop"], "jane.doe@example.com") if not Message.objects.exists() else None
    before = _state()
    assert process_report(data, envelope_recipient=rcpt) in set(Result) - {Result.RECORDED, Result.REPEATED}
    assert _state() == before
