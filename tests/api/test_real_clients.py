"""The official Mandrill clients, unchanged but for the base URL, against a live server."""

import base64

import mailchimp_transactional
import pytest
from anymail.exceptions import AnymailRequestsAPIError
from django.core.mail import EmailMultiAlternatives
from mailchimp_transactional.api_client import ApiClientError

from accounts.models import Account
from mailing.models import Message

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def official(live_server, master_key):
    _, secret = master_key
    client = mailchimp_transactional.Client(secret)
    client.api_client.host = f"{live_server.url}/api/1.3"
    return client


def test_the_official_python_client_runs_the_whole_story(official, mailoutbox):
    assert official.users.ping() == "PONG!"
    added = official.subaccounts.add({"id": "cust-123", "name": "ABC Widgets", "notes": "n", "custom_quota": 100,
                                      "monthly_quota": 3, "owner_email": "owner@abc.test"})  # fmt: skip
    assert (added["id"], added["custom_quota"], added["status"]) == ("cust-123", 100, "active")
    assert official.subaccounts.info({"id": "cust-123"})["notes"] == "n"
    assert official.subaccounts.pause({"id": "cust-123"})["status"] == "paused"
    assert official.subaccounts.resume({"id": "cust-123"})["status"] == "active"
    assert [s["id"] for s in official.subaccounts.list({"q": "cust"})] == ["cust-123"]
    message = {"from_email": "shop@abc.test", "subject": "Hi", "text": "Hello", "subaccount": "cust-123",
               "to": [{"email": "a@example.test"}, {"email": "b@example.test"}, {"email": "c@example.test"}]}  # fmt: skip
    sent = official.messages.send({"message": message})
    assert [r["status"] for r in sent] == ["queued", "queued", "queued"]
    over = official.messages.send({"message": message})
    assert {(r["status"], r["reject_reason"]) for r in over} == {("rejected", "monthly-limit-reached")}
    # three queued; the three refused are on record as rejected (the log), none queued
    stored = Message.objects.filter(account__public_id="cust-123")
    assert stored.exclude(status=Message.Status.REJECTED).count() == 3
    assert stored.filter(status=Message.Status.REJECTED).count() == 3
    with pytest.raises(ApiClientError) as unknown:
        official.messages.send({"message": {**message, "subaccount": "nope"}})
    assert unknown.value.status_code == 500 and unknown.value.text["name"] == "Unknown_Subaccount"
    with pytest.raises(ApiClientError) as duplicate:
        official.subaccounts.add({"id": "cust-123"})
    assert duplicate.value.text["message"] == "A subaccount with id cust-123 already exists"
    assert [m.to for m in mailoutbox if "invited you" in m.subject] == [["owner@abc.test"]]
    official.subaccounts.delete({"id": "cust-123"})
    assert not Account.objects.filter(public_id="cust-123").exists()


def test_the_official_client_reports_an_invalid_key(live_server):
    client = mailchimp_transactional.Client("md-not-a-key")
    client.api_client.host = f"{live_server.url}/api/1.3"
    with pytest.raises(ApiClientError) as refused:
        client.users.ping()
    assert refused.value.status_code == 500
    assert refused.value.text == {
        "status": "error",
        "code": -1,
        "name": "Invalid_Key",
        "message": "Invalid API key",
    }


def _use_anymail(settings, key: str, live_server) -> None:
    """django-anymail's Mandrill backend as a Django 6.1 mailer, pointed at our /api/1.0."""
    settings.MAILERS = {
        **settings.MAILERS,
        "mandrill": {
            "BACKEND": "anymail.backends.mandrill.EmailBackend",
            "OPTIONS": {"api_key": key, "api_url": f"{live_server.url}/api/1.0"},
        },
    }


def test_django_anymail_sends_as_a_subaccount(live_server, master_key, subaccount_key, settings):
    _, secret = master_key
    _use_anymail(settings, secret, live_server)
    email = EmailMultiAlternatives(
        subject="Invoice", body="See attached", from_email="Acme <billing@acme.test>",
        to=["Client <client@example.test>"], cc=["boss@example.test"],
    )  # fmt: skip
    email.attach_alternative("<p>See attached</p>", "text/html")
    email.attach("invoice.txt", b"total: 42", "text/plain")
    email.tags = ["invoice"]
    email.metadata = {"invoice": "42"}
    email.esp_extra = {"message": {"subaccount": "acme"}}
    email.send(using="mandrill")
    status = email.anymail_status
    assert status.status == {"queued"}
    assert set(status.recipients) == {"client@example.test", "boss@example.test"}
    stored = Message.objects.get(to_email="client@example.test")
    assert (
        stored.account.public_id == "acme"
        and stored.tags == ["invoice"]
        and stored.metadata == {"invoice": "42"}
    )
    assert base64.b64decode(stored.attachments[0]["content"]) == b"total: 42"


def test_anymail_sees_an_api_error(live_server, settings):
    _use_anymail(settings, "wrong", live_server)
    email = EmailMultiAlternatives(subject="x", body="y", from_email="a@x.test", to=["b@x.test"])
    with pytest.raises(AnymailRequestsAPIError) as refused:
        email.send(using="mandrill")
    assert refused.value.status_code == 500 and "Invalid_Key" in str(refused.value)
