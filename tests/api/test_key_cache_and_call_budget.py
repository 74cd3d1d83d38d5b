"""The API's per-process shortcuts: a key found lately is not looked up again for API_KEY_CACHE_SECONDS,
and a key's call budget and the invalid-key throttle are read from the shared cache at most once per
API_RATE_SYNC_SECONDS. What they cost is bounded staleness; these tests pin the bound."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import ratelimit
from accounts.models import Account
from mailing.keys import lookup_api_key, revoke_api_key
from mailing.models import ApiKey
from reseller import process_cache
from tests.api.test_wire_format import assert_error, call

pytestmark = pytest.mark.django_db


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(process_cache, "clock", clock)
    monkeypatch.setattr(ratelimit, "_clock", clock)
    return clock


def test_a_found_key_is_not_looked_up_again_within_the_ttl(master_key, settings, clock):
    # given
    settings.API_KEY_CACHE_SECONDS = 5
    _, secret = master_key
    assert lookup_api_key(secret) is not None
    # when
    with CaptureQueriesContext(connection) as queries:
        again = lookup_api_key(secret)
    # then
    assert again is not None and len(queries) == 0
    clock.now += 5.01
    with CaptureQueriesContext(connection) as queries:
        assert lookup_api_key(secret) is not None
    assert len(queries) == 1


def test_a_key_revoked_by_another_process_stops_within_the_ttl(client, master_key, settings, clock):
    # given: the key was used here a moment ago
    settings.API_KEY_CACHE_SECONDS = 5
    master, secret = master_key
    assert call(client, "users/ping.json", {"key": secret}).json() == "PONG!"
    # when: another process revokes it (this process's cache is not told)
    ApiKey.objects.filter(account=master).update(revoked_at=timezone.now())
    # then: it works here for at most the TTL, and not a moment longer
    clock.now += 4.9
    assert call(client, "users/ping.json", {"key": secret}).json() == "PONG!"
    clock.now += 0.11
    assert_error(call(client, "users/ping.json", {"key": secret}), "Invalid_Key")


def test_a_key_revoked_in_this_process_stops_at_once(
    client, master_key, settings, clock, django_capture_on_commit_callbacks
):
    settings.API_KEY_CACHE_SECONDS = 5
    master, secret = master_key
    assert call(client, "users/ping.json", {"key": secret}).json() == "PONG!"
    owner = master.memberships.get().user
    with django_capture_on_commit_callbacks(execute=True):
        revoke_api_key(actor=owner, account=master, key_id=ApiKey.objects.get(account=master).pk)
    assert_error(call(client, "users/ping.json", {"key": secret}), "Invalid_Key")


def test_a_closed_accounts_key_stops_within_the_ttl(client, subaccount_key, settings, clock):
    settings.API_KEY_CACHE_SECONDS = 5
    sub, secret = subaccount_key
    assert call(client, "users/ping.json", {"key": secret}).json() == "PONG!"
    Account.objects.filter(pk=sub.pk).update(status=Account.Status.CLOSED)
    clock.now += 5.01
    assert_error(call(client, "users/ping.json", {"key": secret}), "Invalid_Key")


def test_with_no_ttl_every_call_looks_the_key_up(client, master_key, settings):
    settings.API_KEY_CACHE_SECONDS = 0
    master, secret = master_key
    assert call(client, "users/ping.json", {"key": secret}).json() == "PONG!"
    ApiKey.objects.filter(account=master).update(revoked_at=timezone.now())
    assert_error(call(client, "users/ping.json", {"key": secret}), "Invalid_Key")


def test_each_lookup_gets_its_own_copy(master_key, settings):
    settings.API_KEY_CACHE_SECONDS = 5
    _, secret = master_key
    first = lookup_api_key(secret)
    first.account.name = "changed by one request"
    assert lookup_api_key(secret).account.name != "changed by one request"


def test_a_wrong_secret_is_never_cached(master_key, settings):
    settings.API_KEY_CACHE_SECONDS = 5
    for _ in range(2):
        with CaptureQueriesContext(connection) as queries:
            assert lookup_api_key("md-not-a-key") is None
        assert len(queries) == 1


def test_the_call_budget_counts_this_process_at_once_and_others_within_the_sync_interval(
    client, master_key, settings, clock
):
    # given a budget of 4 calls a minute, synced once a second
    settings.API_CALLS_PER_MINUTE = 4
    settings.API_RATE_SYNC_SECONDS = 1
    master, secret = master_key
    api_key = ApiKey.objects.get(account=master)
    assert call(client, "users/ping.json", {"key": secret}).json() == "PONG!"
    # when another process spends 3 calls of the same minute
    for _ in range(3):
        ratelimit.hit(f"api-key:{api_key.pk}", limit=4, window_seconds=60)
    # then this process does not know for up to a second (the documented overshoot)...
    assert call(client, "users/ping.json", {"key": secret}).json() == "PONG!"
    # ...and refuses once it syncs: 1 + 3 + 1 + this one is over 4
    clock.now += 1.01
    assert_error(call(client, "users/ping.json", {"key": secret}), "RequestLimitExceeded", status=429)


def test_hits_between_syncs_reach_the_shared_counter(settings, clock):
    for _ in range(3):
        assert ratelimit.hit_batched("api-key:77", limit=10, window_seconds=60, sync_seconds=1)
    clock.now += 1.01
    assert ratelimit.hit_batched("api-key:77", limit=10, window_seconds=60, sync_seconds=1)
    # all four are in the shared counter: another process sees them
    assert ratelimit.exceeded("api-key:77", limit=4, window_seconds=60)
    assert not ratelimit.exceeded("api-key:77", limit=5, window_seconds=60)


def test_the_invalid_key_throttle_sees_other_processes_within_the_memo(client, master_key, settings, clock):
    # given: this process last saw no failures from this address
    settings.API_FAILED_KEYS_PER_MINUTE = 2
    settings.API_RATE_SYNC_SECONDS = 1
    _, secret = master_key
    assert call(client, "users/ping.json", {"key": secret}).json() == "PONG!"
    # when: other processes count two failures for it
    for _ in range(2):
        ratelimit.hit("api-bad-key:127.0.0.1", limit=2, window_seconds=60)
    # then: the address is refused, even with a right key, once the memo (one second) has expired
    assert call(client, "users/ping.json", {"key": secret}).json() == "PONG!"
    clock.now += 1.01
    assert_error(call(client, "users/ping.json", {"key": secret}), "RequestLimitExceeded", status=429)


def test_a_failure_in_this_process_is_seen_at_once(client, settings, clock):
    settings.API_FAILED_KEYS_PER_MINUTE = 1
    settings.API_RATE_SYNC_SECONDS = 60
    assert_error(call(client, "users/ping.json", {"key": "wrong"}), "Invalid_Key")
    assert_error(call(client, "users/ping.json", {"key": "wrong"}), "RequestLimitExceeded", status=429)
