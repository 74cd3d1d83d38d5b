"""messages/send-raw goes through the same path as SMTP (X-MC-* headers, identity rules); messages/content
returns what was accepted, to its own tenant only."""

import json
from email import message_from_bytes, policy

import pytest

from accounts.models import Membership
from mailing.keys import create_api_key
from mailing.models import Message
from tests.api.test_wire_format import assert_error
from tests.factories import MasterFactory, MembershipFactory, subaccount_with_owner

pytestmark = pytest.mark.django_db(transaction=True)

RAW = (
    "From: Shop <orders@shop.test>\r\nTo: a@example.test\r\nCc: b@example.test\r\nBcc: c@example.test\r\n"
    "Subject: Your order\r\nX-MC-Subaccount: shop\r\nX-MC-Tags: order, receipt\r\nX-Campaign: nov\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n\r\nThanks for your order\r\n"
)


@pytest.fixture
def keys(db):
    master = MasterFactory(public_id="agency")
    owner = MembershipFactory(account=master, role=Membership.Role.OWNER).user
    shop, _ = subaccount_with_owner(master, public_id="shop")
    other = MasterFactory(public_id="other")
    other_owner = MembershipFactory(account=other, role=Membership.Role.OWNER).user
    return {
        "master": create_api_key(actor=owner, account=master, label="raw")[1],
        "other": create_api_key(actor=other_owner, account=other, label="raw")[1],
        "shop": shop,
    }


def _api(client, call, body):
    return client.post(f"/api/1.0/messages/{call}.json", json.dumps(body), content_type="application/json")


def test_send_raw_reads_x_mc_headers_and_takes_recipients_from_the_message(client, keys, smtp_sink):
    results = _api(client, "send-raw", {"key": keys["master"], "raw_message": RAW}).json()
    assert sorted(r["email"] for r in results) == ["a@example.test", "b@example.test", "c@example.test"]
    assert {r["status"] for r in results} == {"queued"}
    stored = Message.objects.all()
    assert {m.account for m in stored} == {keys["shop"]} and stored[0].tags == ["order", "receipt"]
    delivered = [
        message_from_bytes(e.original_content or e.content, policy=policy.default) for e in smtp_sink.received
    ]
    assert len(delivered) == 3
    for mime in delivered:
        assert mime["From"] == "Shop <orders@shop.test>" and mime["X-Campaign"] == "nov"
        assert mime["Bcc"] is None and mime["X-MC-Tags"] is None


def test_send_raw_with_to_and_from_overrides(client, keys, smtp_sink):
    body = {"key": keys["master"], "raw_message": RAW, "to": ["only@example.test"], "from_email": "news@agency.test",
            "from_name": "Agency"}  # fmt: skip
    [result] = _api(client, "send-raw", body).json()
    assert result["email"] == "only@example.test"
    message = Message.objects.get()
    assert (message.from_email, message.from_name) == ("news@agency.test", "Agency")


@pytest.mark.parametrize(
    ("raw", "name"),
    [("Subject: none\r\n\r\nno recipients\r\n", "ValidationError"),
     (RAW.replace("X-MC-Subaccount: shop", "X-MC-Subaccount: nope"), "Unknown_Subaccount"),
     (RAW.replace("X-MC-Tags: order, receipt", "X-MC-Metadata: {not json"), "ValidationError")],
)  # fmt: skip
def test_send_raw_refusals(client, keys, raw, name):
    assert_error(_api(client, "send-raw", {"key": keys["master"], "raw_message": raw}), name)
    assert not Message.objects.exists()


def test_content_returns_what_was_accepted_to_its_tenant_only(client, keys):
    message = {"from_email": "news@agency.test", "from_name": "Agency", "subject": "Hi", "html": "<p>Hi</p>",
               "text": "Hi", "to": [{"email": "r@example.test", "name": "R"}], "tags": ["t"]}  # fmt: skip
    [sent] = _api(client, "send", {"key": keys["master"], "message": message}).json()
    content = _api(client, "content", {"key": keys["master"], "id": sent["_id"]}).json()
    assert content["_id"] == sent["_id"] and content["html"] == "<p>Hi</p>" and content["text"] == "Hi"
    assert content["to"] == {"email": "r@example.test", "name": "R"} and content["from_name"] == "Agency"
    assert_error(_api(client, "content", {"key": keys["other"], "id": sent["_id"]}), "Unknown_Message")


def test_symfony_mailers_mandrill_https_transport_request(client, keys, smtp_sink):
    """The request Symfony Mailer's `mandrill+https` transport sends (MandrillHttpTransport): send-raw with
    the envelope's recipients as plain strings (Bcc included), the sender's address and name, and the whole
    message as Symfony Mime writes it, tags and metadata moved into X-MC-Tags and X-MC-Metadata."""
    raw = (
        "From: Shop <orders@shop.test>\r\nTo: ana@example.test\r\nSubject: =?utf-8?Q?Commande_exp=C3=A9di=C3=A9e?=\r\n"
        "Message-ID: <4f2a@shop.test>\r\nMIME-Version: 1.0\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\n"
        "X-MC-Subaccount: shop\r\nX-MC-Tags: shipping\r\nX-MC-Metadata: {\"order_id\":\"1234\"}\r\n"
        "Content-Type: multipart/alternative; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\nVotre commande est exp=C3=A9di=C3=A9e\r\n--b1\r\n"
        "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        "<p>Votre commande est exp=C3=A9di=C3=A9e</p>\r\n--b1--\r\n"
    )  # fmt: skip
    body = {"key": keys["master"], "to": ["ana@example.test", "audit@shop.test"], "from_email": "orders@shop.test",
            "from_name": "Shop", "raw_message": raw}  # fmt: skip
    response = _api(client, "send-raw", body)
    results = response.json()
    assert response.status_code == 200 and results[0]["_id"]  # Symfony reads $result[0]['_id']
    assert sorted((r["email"], r["status"]) for r in results) == [
        ("ana@example.test", "queued"),
        ("audit@shop.test", "queued"),
    ]
    stored = Message.objects.get(to_email="ana@example.test")
    assert (stored.account, stored.subject, stored.tags, stored.metadata) == (
        keys["shop"], "Commande expédiée", ["shipping"], {"order_id": "1234"}
    )  # fmt: skip
    delivered = {e.rcpt_tos[0]: message_from_bytes(e.original_content or e.content, policy=policy.default)
                 for e in smtp_sink.received}  # fmt: skip
    audit = delivered["audit@shop.test"]
    # each copy shows its own address, as Mandrill does unless X-MC-PreserveRecipients asks otherwise
    assert audit["To"] == "audit@shop.test" and audit["X-MC-Metadata"] is None
    assert audit.get_body(("html",)).get_content().strip() == "<p>Votre commande est expédiée</p>"
    refused = _api(client, "send-raw", {**body, "key": "md-wrong"})
    assert refused.status_code == 500 and refused.json()["status"] == "error" and "code" in refused.json()
