"""Who a message says it is from is decided by from_email/from_name on a verified domain, never by
`headers`: identity and routing headers are refused at accept time, for the API and SMTP alike."""

from email import message_from_bytes, policy

import pytest

from accounts.models import Membership, Usage
from mailing.keys import create_api_key
from mailing.models import Message
from tests.api.test_wire_format import assert_error, call
from tests.factories import MasterFactory, MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def key(db):
    master = MasterFactory(public_id="agency")
    owner = MembershipFactory(account=master, role=Membership.Role.OWNER).user
    return create_api_key(actor=owner, account=master, label="identity")[1]


def _send(client, key, **message):
    body = {
        "from_email": "news@agency.test",
        "to": [{"email": "reader@example.test"}],
        "text": "hi",
    } | message
    return call(client, "messages/send.json", {"key": key, "message": body})


def _received(sink):
    [envelope] = sink.received
    return message_from_bytes(envelope.content, policy=policy.default)


@pytest.mark.parametrize(
    "header",
    ["From", "from", "Sender", "Return-Path", "To", "Cc", "Bcc", "DKIM-Signature", "Received", "Message-ID",
     "Resent-From", "Content-Type"],
)  # fmt: skip
def test_identity_and_routing_headers_are_refused(client, key, header, smtp_sink):
    response = _send(client, key, headers={header: "CEO <ceo@unverified-bank.example>"})
    body = assert_error(response, "ValidationError")
    assert header.lower() in body["message"].lower()
    assert not Message.objects.exists() and not smtp_sink.received
    assert not Usage.objects.filter(sent__gt=0).exists()


@pytest.mark.django_db(transaction=True)
def test_reply_to_and_x_headers_are_kept_and_the_visible_from_is_ours(client, key, smtp_sink):
    response = _send(
        client, key, from_name="Agency News", headers={"Reply-To": "help@agency.test", "X-Campaign": "nov"}
    )
    assert response.status_code == 200 and response.json()[0]["status"] == "queued", response.content
    received = _received(smtp_sink)
    assert received["From"] == "Agency News <news@agency.test>"
    assert received["Reply-To"] == "help@agency.test" and received["X-Campaign"] == "nov"
    assert received["Sender"] is None


@pytest.mark.parametrize("value", ["line\r\nBcc: victim@example.test", "line\nX-Evil: 1", "nul\x00byte"])
def test_a_header_value_cannot_smuggle_another_header(client, key, value, smtp_sink):
    assert_error(_send(client, key, headers={"X-Note": value}), "ValidationError")
    assert not Message.objects.exists()


@pytest.mark.parametrize("name", ["Bad Name", "Colon:Name", "", "Ünicode"])
def test_a_header_name_must_be_a_field_name(client, key, name):
    assert_error(_send(client, key, headers={name: "x"}), "ValidationError")


@pytest.mark.parametrize(
    "from_email",
    ["news@agency.test, ceo@unverified-bank.example", "News <news@agency.test>", "news@@agency.test"],
)
def test_from_email_must_be_one_address(client, key, from_email):
    body = assert_error(_send(client, key, from_email=from_email), "ValidationError")
    assert "from_email" in body["message"]
    assert not Message.objects.exists()
    assert not Usage.objects.filter(sent__gt=0).exists()


@pytest.mark.parametrize(
    "from_name",
    ['CEO" <ceo@unverified-bank.example>, "x', "Name\r\nBcc: victim@example.test", "A <b@c.test>"],
)
def test_from_name_must_be_one_display_name(client, key, from_name):
    body = assert_error(_send(client, key, from_name=from_name), "ValidationError")
    assert "from_name" in body["message"]
    assert not Message.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_display_name_with_quotes_and_commas_is_delivered_as_one_name(client, key, smtp_sink):
    response = _send(
        client, key, from_name='Shop, "The Best"', to=[{"email": "r@example.test", "name": 'Doe, "J"'}]
    )
    assert response.json()[0]["status"] == "queued"
    received = _received(smtp_sink)
    assert received["From"].addresses[0].display_name == 'Shop, "The Best"'
    assert received["From"].addresses[0].addr_spec == "news@agency.test"
    assert [a.addr_spec for a in received["To"].addresses] == ["r@example.test"]


def test_a_recipient_name_cannot_smuggle_a_header(client, key):
    response = _send(client, key, to=[{"email": "r@example.test", "name": "R\r\nBcc: victim@example.test"}])
    assert "r@example.test" in assert_error(response, "ValidationError")["message"]
    assert not Message.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_smtp_keeps_x_headers_and_drops_identity_headers(key):
    import smtplib
    from email.message import EmailMessage

    from mailing.smtp import build_controller
    from tests.mailing.conftest import free_port

    port = free_port()
    controller = build_controller(hostname="127.0.0.1", port=port, require_tls_for_auth=False)
    controller.start()
    try:
        email = EmailMessage()
        email["From"], email["To"], email["Subject"] = "news@agency.test", "reader@example.test", "hi"
        email["Sender"], email["X-Campaign"], email["Reply-To"] = (
            "ceo@bank.example",
            "nov",
            "help@agency.test",
        )
        email.set_content("hi")
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.login("agency", key)
            smtp.send_message(email)
    finally:
        controller.stop()
    assert Message.objects.get().headers == {"X-Campaign": "nov", "Reply-To": "help@agency.test"}
