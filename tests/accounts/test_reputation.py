"""Reputation from the Usage summary, and auto-pause: past the agency's limits a subaccount is paused by
itself, exactly once however many bounces race, its mail held, the agency told."""

import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from accounts import reputation
from accounts.models import Account, AuditEvent, Membership, Usage
from accounts.quota import hour_start
from tests.conftest import requires_postgres
from tests.factories import MembershipFactory, SubaccountFactory

pytestmark = pytest.mark.django_db


def _usage(sub, *, delivered=0, hard=0, complained=0, hours_ago=1):
    Usage.objects.create(
        account=sub, billed_to=sub.parent, window=Usage.Window.HOUR, start=hour_start(timezone.now() - timedelta(hours=hours_ago)),
        delivered=delivered, hard_bounced=hard, complained=complained,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("delivered", "hard", "complained", "expected"),
    [
        (50, 10, 0, 100),
        (1000, 0, 0, 100),
        (950, 50, 0, 50),
        (999, 0, 1, 50),
        (900, 100, 0, 0),
        (975, 25, 0, 75),
    ],
)
def test_reputation_from_the_rates(delivered, hard, complained, expected):
    sub = SubaccountFactory()
    _usage(sub, delivered=delivered, hard=hard, complained=complained)
    assert reputation.health_of([sub.pk])[sub.pk].reputation == expected


def test_usage_older_than_the_window_does_not_count():
    sub = SubaccountFactory()
    _usage(sub, delivered=100, hard=100, hours_ago=24 * 31)
    assert reputation.health_of([sub.pk])[sub.pk].reputation == 100


def test_the_master_limit_and_the_subaccounts_override():
    sub = SubaccountFactory()
    sub.parent.auto_pause_rates = {"hard_bounce": 10}
    assert reputation.limits_for(sub) == {"hard_bounce": 10, "complaint": 0.1, "window_days": 30}
    sub.auto_pause_rates = {"hard_bounce": 2}
    assert reputation.limits_for(sub)["hard_bounce"] == 2


def test_past_its_limits_a_subaccount_is_paused_once_and_the_agency_told(django_capture_on_commit_callbacks):
    sub = SubaccountFactory()
    MembershipFactory(account=sub.parent, role=Membership.Role.ADMIN)
    _usage(sub, delivered=470, hard=30)  # 6 % hard bounces
    with django_capture_on_commit_callbacks(execute=True):
        assert reputation.check_auto_pause(sub) is True
        assert reputation.check_auto_pause(sub) is False
    sub.refresh_from_db()
    assert sub.status == Account.Status.PAUSED
    event = AuditEvent.objects.get(action="subaccount.auto_paused")
    assert "hard-bounce rate 6.0% over the last 500 sends" in event.after["reason"]
    assert [m.subject for m in mail.outbox] == [f"{sub.name} was paused automatically"]


def test_under_the_limits_or_too_few_sends_nothing_happens():
    sub, small = SubaccountFactory(), SubaccountFactory()
    _usage(sub, delivered=990, hard=10)
    _usage(small, delivered=10, hard=10)
    assert not reputation.check_auto_pause(sub) and not reputation.check_auto_pause(small)


@requires_postgres()
@pytest.mark.django_db(transaction=True)
def test_sixteen_racing_bounces_pause_exactly_once():
    sub = SubaccountFactory()
    MembershipFactory(account=sub.parent, role=Membership.Role.ADMIN)
    _usage(sub, delivered=400, hard=100)
    barrier, paused = threading.Barrier(16), []

    def bounce():
        try:
            barrier.wait(timeout=10)
            paused.append(
                reputation.check_auto_pause(Account.objects.select_related("parent").get(pk=sub.pk))
            )
        finally:
            connection.close()

    workers = [threading.Thread(target=bounce) for _ in range(16)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert paused.count(True) == 1
    assert AuditEvent.objects.filter(action="subaccount.auto_paused").count() == 1
    assert len([m for m in mail.outbox if "paused automatically" in m.subject]) == 1
