"""Every `message` option we take is honoured in what the recipient receives, checked on the delivered
MIME at a local relay, not only in the API's answer."""

import base64
import json
from email import message_from_bytes, policy

import pytest

from accounts.models import Membership
from mailing.keys import create_api_key
from mailing.models import Message
from tests.factories import MasterFactory, MembershipFactory

pytestmark = pytest.mark.django_db(transaction=True)  # delivery runs after commit, as in production

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16).decode()


@pytest.fixture
def key(db):
    master = MasterFactory(public_id="agency")
    owner = MembershipFactory(account=master, role=Membership.Role.OWNER).user
    return create_api_key(actor=owner, account=master, label="options")[1]


def _send(client, key, **message):
    body = {
        "from_email": "news@agency.test",
        "subject": "Hello",
        "to": [{"email": "reader@example.test"}],
    } | message
    response = client.post(
        "/api/1.0/messages/send.json",
        json.dumps({"key": key, "message": body}),
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    return response.json()


def _delivered(sink):
    return [
        (
            envelope.rcpt_tos,
            message_from_bytes(envelope.original_content or envelope.content, policy=policy.default),
        )
        for envelope in sink.received
    ]


def test_images_are_inline_parts_with_their_content_id(client, key, smtp_sink):
    _send(
        client,
        key,
        html='<p><img src="cid:logo"></p>',
        images=[{"type": "image/png", "name": "logo", "content": PNG}],
    )
    [(_rcpt, mime)] = _delivered(smtp_sink)
    related = next(part for part in mime.walk() if part.get_content_type() == "multipart/related")
    image = next(part for part in related.iter_parts() if part.get_content_type() == "image/png")
    assert image["Content-ID"] == "<logo>"
    assert image.get_content_disposition() == "inline"


def test_preserve_recipients_shows_to_and_cc_but_never_bcc(client, key, smtp_sink):
    to = [{"email": "a@example.test", "name": "A"}, {"email": "b@example.test", "type": "cc"},
          {"email": "hidden@example.test", "type": "bcc"}]  # fmt: skip
    _send(client, key, text="hi", to=to, preserve_recipients=True)
    delivered = _delivered(smtp_sink)
    assert sorted(rcpt[0] for rcpt, _ in delivered) == [
        "a@example.test",
        "b@example.test",
        "hidden@example.test",
    ]
    for _rcpt, mime in delivered:
        assert mime["To"] == "A <a@example.test>" and mime["Cc"] == "b@example.test"
        assert "hidden" not in mime.as_string()


def test_without_preserve_recipients_each_copy_shows_only_its_own_address(client, key, smtp_sink):
    _send(client, key, text="hi", to=[{"email": "a@example.test"}, {"email": "b@example.test", "type": "cc"}])
    for rcpt, mime in _delivered(smtp_sink):
        assert mime["To"] == rcpt[0] and mime["Cc"] is None


def test_bcc_address_gets_a_copy_of_each_message(client, key, smtp_sink):
    _send(client, key, text="hi", bcc_address="archive@agency.test")
    [(rcpt, mime)] = _delivered(smtp_sink)
    assert rcpt == ["reader@example.test", "archive@agency.test"]
    assert "archive@agency.test" not in mime.as_string()


def test_important_auto_text_and_inline_css(client, key, smtp_sink):
    html = '<html><head><style>p { color: red }</style></head><body><p>Hi <a href="https://x.example/">there</a></p></body></html>'
    _send(client, key, html=html, important=True, auto_text=True, inline_css=True)
    [(_rcpt, mime)] = _delivered(smtp_sink)
    assert mime["Importance"] == "high"
    assert mime.get_body(("plain",)).get_content().strip() == "Hi there (https://x.example/)"
    assert 'style="color: red' in mime.get_body(("html",)).get_content()


def test_an_internationalised_address_is_accepted_and_delivered_with_smtputf8(client, key, smtp_sink):
    [result] = _send(client, key, text="hi", to=[{"email": "to-тест@xn--pklad-zsa96e.example.cz"}])
    assert result["status"] == "queued"
    [(rcpt, _mime)] = _delivered(smtp_sink)
    assert rcpt == ["to-тест@xn--pklad-zsa96e.example.cz"]
    assert Message.objects.get().status == Message.Status.SENT


@pytest.mark.parametrize("address", ["someone@localhost", "a@b", "x@invalid"])
def test_non_routable_addresses_are_invalid(client, key, address):
    [result] = _send(client, key, text="hi", to=[{"email": address}])
    assert result["status"] == "invalid"


@pytest.mark.parametrize(
    ("field", "value"), [("preserve_recipients", "yes"), ("important", 1), ("bcc_address", "not an address")]
)
def test_a_bad_option_is_refused_clearly(client, key, field, value):
    body = {"from_email": "news@agency.test", "to": [{"email": "r@example.test"}], "text": "x", field: value}
    response = client.post(
        "/api/1.0/messages/send.json",
        json.dumps({"key": key, "message": body}),
        content_type="application/json",
    )
    assert response.status_code == 500 and field in response.json()["message"]


@pytest.mark.parametrize(
    "subject, merge_vars, shown",
    [
        ("Line one\nline two", [], "Line one line two"),
        ("Order\r\n\r\nshipped\u2028today", [], "Order shipped today"),
        ("Ship to *|ADDRESS|*", [{"name": "ADDRESS", "content": "1 Main St\nSpringfield"}], "Ship to 1 Main St Springfield"),
    ],
)  # fmt: skip
def test_a_subject_with_line_breaks_is_delivered_on_one_line(
    client, key, smtp_sink, subject, merge_vars, shown
):
    """Found by the end-to-end merge property: such a subject was accepted ("queued") and then failed at
    delivery, because a header may not hold a line break."""
    [result] = _send(client, key, subject=subject, text="hi", merge=True, global_merge_vars=merge_vars)
    assert result["status"] == "queued"
    [(_rcpt, mime)] = _delivered(smtp_sink)
    assert mime["Subject"] == shown
    assert Message.objects.get(public_id=result["_id"]).status == Message.Status.SENT
