"""webhooks/* through the official Python client against a live server, and the API's answers for another
account's webhook, bad URLs and bad events."""

import mailchimp_transactional
import pytest
from mailchimp_transactional.api_client import ApiClientError

from mailing.models import Webhook
from tests.webhooks.receiver import Receiver, start

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _loopback_receivers(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    settings.WEBHOOK_TIMEOUT_SECONDS = 2.0


@pytest.fixture
def receiver():
    got = Receiver()
    server = start(got)
    yield got
    server.shutdown()
    server.server_close()


def _answer(result):
    """The client hands back the raw response when the JSON answer is falsy (an empty list)."""
    return result.json() if hasattr(result, "json") else result


def _client(live_server, secret):
    client = mailchimp_transactional.Client(secret)
    client.api_client.host = f"{live_server.url}/api/1.3"
    return client


def test_the_official_client_lists_adds_reads_updates_and_deletes_webhooks(live_server, master_key, receiver):
    official = _client(live_server, master_key[1])
    assert _answer(official.webhooks.list()) == []

    added = official.webhooks.add(
        {"url": receiver.url, "description": "Shop", "events": ["send", "hard_bounce"]}
    )

    assert set(added) >= {"id", "url", "description", "auth_key", "events", "created_at", "last_sent_at",
                          "batches_sent", "events_sent", "last_error"}  # fmt: skip
    assert (added["url"], added["events"], added["batches_sent"], added["last_error"]) == (
        receiver.url, ["send", "hard_bounce"], 0, None,
    )  # fmt: skip
    assert isinstance(added["id"], int) and len(added["auth_key"]) == 22
    assert [r.method for r in receiver.requests] == ["HEAD"]
    assert official.webhooks.info({"id": added["id"]}) == added
    assert [w["id"] for w in official.webhooks.list()] == [added["id"]]

    updated = official.webhooks.update({"id": added["id"], "url": receiver.url + "?v=2", "events": ["open"]})
    assert (updated["url"], updated["events"], updated["description"]) == (
        receiver.url + "?v=2",
        ["open"],
        "Shop",
    )

    deleted = official.webhooks.delete({"id": added["id"]})
    assert deleted["id"] == added["id"] and not Webhook.objects.exists()


def _error(call) -> dict:
    with pytest.raises(ApiClientError) as refused:
        call()
    assert refused.value.status_code == 500
    return refused.value.text


def test_another_accounts_webhook_is_unknown(live_server, master_key, subaccount_key, receiver):
    theirs = _client(live_server, subaccount_key[1]).webhooks.add({"url": receiver.url})
    mine = _client(live_server, master_key[1])
    for call in (mine.webhooks.info, mine.webhooks.delete):
        error = _error(lambda call=call: call({"id": theirs["id"]}))
        assert (error["name"], error["code"], error["message"]) == (
            "Unknown_Webhook",
            3,
            f"Unknown hook ID {theirs['id']}",
        )
    error = _error(lambda: mine.webhooks.update({"id": theirs["id"], "url": receiver.url}))
    assert error["name"] == "Unknown_Webhook"
    assert _answer(mine.webhooks.list()) == []
    assert Webhook.objects.get().url == receiver.url


def test_bad_urls_and_events_are_validation_errors(live_server, master_key, receiver, settings):
    official = _client(live_server, master_key[1])
    for params in ({"url": "ftp://example.com/x"}, {"url": "http://10.0.0.1/x"}, {"url": "http://169.254.169.254/"},
                   {"url": receiver.url, "events": ["send", "nonsense"]}, {}):  # fmt: skip
        assert _error(lambda p=params: official.webhooks.add(p))["name"] == "ValidationError"
    receiver.head_status = 404
    receiver.replies = [404]
    error = _error(lambda: official.webhooks.add({"url": receiver.url}))
    assert error["name"] == "ValidationError" and "did not accept the check" in error["message"]
    assert not Webhook.objects.exists()


def test_a_subaccounts_key_cannot_ask_for_account_events(live_server, subaccount_key, receiver):
    sub = _client(live_server, subaccount_key[1])
    error = _error(lambda: sub.webhooks.add({"url": receiver.url, "events": ["account.paused"]}))
    assert error["name"] == "ValidationError"


def test_key_reset_is_our_extension(live_server, master_key, receiver):
    official = _client(live_server, master_key[1])
    added = official.webhooks.add({"url": receiver.url})
    reset = official.api_client.call_api(
        "/webhooks/key-reset", "POST", body={"id": added["id"], "key": master_key[1]}
    )
    assert reset["id"] == added["id"] and reset["auth_key"] != added["auth_key"]
    assert official.webhooks.info({"id": added["id"]})["auth_key"] == reset["auth_key"]
