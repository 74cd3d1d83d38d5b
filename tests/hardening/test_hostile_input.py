"""Hostile input gets a clear refusal, never a crash: Mandrill's ValidationError from the API, a form
error in the dashboard, a permanent 5xx from SMTP. (NUL bytes only break PostgreSQL: CI runs there.)"""

import json
import smtplib
from unittest import mock

import pytest
from django.urls import reverse

from accounts.models import Membership
from mailing.keys import create_api_key
from mailing.models import ApiKey, Message
from mailing.smtp import build_controller
from tests.api.test_wire_format import assert_error
from tests.factories import MasterFactory, MembershipFactory, subaccount_with_owner
from tests.mailing.conftest import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def key(db):
    master = MasterFactory(public_id="agency")
    owner = MembershipFactory(account=master, role=Membership.Role.OWNER).user
    return create_api_key(actor=owner, account=master, label="hostile")[1]


def _post(client, path, raw: str):
    return client.post(f"/api/1.0/{path}.json", raw, content_type="application/json")


def _send_body(key, **message):
    body = {
        "from_email": "news@agency.test",
        "to": [{"email": "reader@example.test"}],
        "text": "hi",
    } | message
    return {"key": key, "message": body}


# --- the API ---------------------------------------------------------------------------------------------


def test_a_lone_surrogate_as_the_key_is_a_validation_error(client):
    assert_error(_post(client, "users/ping", '{"key": "\\ud800"}'), "ValidationError")


@pytest.mark.parametrize(
    ("path", "field", "where"),
    [("messages/send", "subject", "message"), ("messages/send", "from_name", "message"),
     ("messages/search", "query", None), ("subaccounts/add", "name", None)],
)  # fmt: skip
@pytest.mark.parametrize("bad", ["\\ud800", "a\\u0000b"])
def test_lone_surrogates_and_nul_anywhere_are_validation_errors(client, key, path, field, where, bad):
    body = _send_body(key) if where else {"key": key, "id": "new-one"}
    target = body["message"] if where else body
    target[field] = "PLACEHOLDER"
    raw = json.dumps(body).replace("PLACEHOLDER", bad)
    response = _post(client, path, raw)
    assert "character" in assert_error(response, "ValidationError")["message"]
    assert not Message.objects.exists()


def test_json_nested_twenty_thousand_deep_is_a_validation_error(client, key):
    raw = json.dumps({"key": key, "x": "NEST"}).replace('"NEST"', "[" * 20_000 + "]" * 20_000)
    assert "nested" in assert_error(_post(client, "users/ping", raw), "ValidationError")["message"]


@pytest.mark.parametrize("metadata", [1, "x", {"rcpt": "a@b.test"}])
def test_recipient_metadata_of_the_wrong_type_is_a_validation_error(client, key, metadata):
    response = _post(client, "messages/send", json.dumps(_send_body(key, recipient_metadata=metadata)))
    assert "recipient_metadata" in assert_error(response, "ValidationError")["message"]


@pytest.mark.parametrize("date_to", ["9999-12-31", "9999-12-31 23:59:59"])
def test_the_end_of_time_as_a_search_bound_is_no_bound(client, key, date_to):
    response = _post(client, "messages/search", json.dumps({"key": key, "date_to": date_to}))
    assert response.status_code == 200 and response.json() == []


def test_a_year_outside_the_calendar_is_a_validation_error(client, key):
    response = _post(client, "messages/search", json.dumps({"key": key, "date_from": "0000-01-01"}))
    assert_error(response, "ValidationError")


# --- the dashboard ---------------------------------------------------------------------------------------


def test_an_api_key_label_with_a_nul_byte_is_a_form_error(client):
    _sub, owner = subaccount_with_owner()
    client.force_login(owner)
    page = client.post(reverse("mailing:api_keys"), {"label": "Shop\x00"})
    assert page.status_code == 200 and "cannot contain" in page.content.decode()
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize(
    ("url", "params"),
    [("mailing:message_list", {"recipient": "a\x00b"}), ("mailing:message_list", {"tag": "\x00"}),
     ("mailing:archive_list", {"q": "a\x00b"}), ("accounts:subaccount_list", {"q": "a\x00b"})],
)  # fmt: skip
def test_a_nul_byte_in_a_filter_is_a_form_error(client, url, params):
    sub, owner = subaccount_with_owner()
    client.force_login(owner if "subaccount" not in url else _master_admin(sub))
    page = client.get(reverse(url), params)
    assert page.status_code == 200, page.status_code
    assert "cannot contain" in page.content.decode()


def _master_admin(sub):
    return MembershipFactory(account=sub.parent, role=Membership.Role.ADMIN).user


# --- SMTP ------------------------------------------------------------------------------------------------


@pytest.fixture
def smtp_port(settings):
    port = free_port()
    controller = build_controller(hostname="127.0.0.1", port=port, require_tls_for_auth=False)
    controller.start()
    yield port
    controller.stop()


RAW_HEAD = b"From: news@agency.test\r\nTo: reader@example.test\r\nSubject: hi\r\n"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "raw",
    [RAW_HEAD + b"Content-Type: text/plain; charset=x-no-such-charset\r\n\r\nhello\r\n",
     RAW_HEAD + b"\r\nhello \x00 world\r\n"],
)  # fmt: skip
def test_smtp_refuses_unreadable_content_for_good_not_for_now(smtp_port, key, raw):
    with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as smtp:
        smtp.login("agency", key)
        with pytest.raises(smtplib.SMTPDataError) as refused:
            smtp.sendmail("news@agency.test", ["reader@example.test"], raw)
    assert refused.value.smtp_code in (550, 554), refused.value
    assert not Message.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_internal_fault_during_auth_says_nothing_of_our_insides(smtp_port, key):
    fault = ConnectionError("Error 111 connecting to 10.0.0.7:6399")
    with (
        mock.patch("mailing.smtp.check_credentials", side_effect=fault),
        smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as smtp,
        pytest.raises(smtplib.SMTPAuthenticationError) as refused,
    ):
        smtp.login("agency", key)
    assert refused.value.smtp_code == 454
    assert b"6399" not in refused.value.smtp_error and b"Error" not in refused.value.smtp_error
