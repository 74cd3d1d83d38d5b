"""The quota meter is exact under any concurrency: real threads, real PostgreSQL connections."""

import threading
from datetime import datetime, timedelta
from unittest import mock

import pytest
from django.core import mail
from django.db import connection, transaction
from django.utils import timezone

from accounts.errors import QuotaExceeded
from accounts.models import LimitAlert, Membership, Usage
from accounts.quota import reserve_quota
from mailing.models import Message
from mailing.sending import OutgoingMessage, Recipient, accept_messages
from tests.conftest import requires_postgres
from tests.factories import MembershipFactory, SubaccountFactory

pytestmark = pytest.mark.django_db


def _message(n: int) -> OutgoingMessage:
    return OutgoingMessage(
        from_email="shop@example.test", subject="Hi", text="Hello",
        recipients=[Recipient(email=f"r{i}@example.test") for i in range(n)],
    )  # fmt: skip


def _reserve(account, n, now=None):
    with transaction.atomic():
        reserve_quota(account=account, n=n, now=now)


def _usage(account, window):
    return sum(Usage.objects.filter(account=account, window=window).values_list("sent", flat=True))


def test_a_send_that_fits_is_counted_in_both_windows_and_billed_to_the_master():
    sub = SubaccountFactory(monthly_limit=10, hourly_limit=5)
    _reserve(sub, 3)
    assert _usage(sub, Usage.Window.HOUR) == 3 and _usage(sub, Usage.Window.MONTH) == 3
    assert set(Usage.objects.filter(account=sub).values_list("billed_to", flat=True)) == {sub.parent_id}


def test_over_the_hourly_limit_nothing_is_counted():
    sub = SubaccountFactory(monthly_limit=100, hourly_limit=5)
    _reserve(sub, 4)
    with pytest.raises(QuotaExceeded) as refused:
        _reserve(sub, 2)
    assert refused.value.reason == "hourly-quota-exhausted"
    assert _usage(sub, Usage.Window.HOUR) == 4 and _usage(sub, Usage.Window.MONTH) == 4


def test_over_the_monthly_limit_the_hourly_count_is_rolled_back():
    sub = SubaccountFactory(monthly_limit=5, hourly_limit=100)
    _reserve(sub, 5)
    with pytest.raises(QuotaExceeded) as refused:
        _reserve(sub, 1)
    assert refused.value.reason == "monthly-limit-reached"
    assert _usage(sub, Usage.Window.HOUR) == 5


def test_a_windows_first_send_creates_it_counted_in_one_statement(django_assert_num_queries):
    sub = SubaccountFactory(monthly_limit=10, hourly_limit=5)
    with transaction.atomic(), django_assert_num_queries(2):  # the hour's and the month's, no more
        assert reserve_quota(account=sub, n=3) == 3
    row = Usage.objects.get(account=sub, window=Usage.Window.HOUR)
    assert (row.sent, row.delivered, row.billed_to_id, row.account_label) == (3, 0, sub.parent_id, str(sub))


def test_a_first_send_larger_than_the_limit_creates_no_window():
    sub = SubaccountFactory(monthly_limit=10, hourly_limit=5)
    with pytest.raises(QuotaExceeded) as refused:
        _reserve(sub, 6)
    assert refused.value.reason == "hourly-quota-exhausted"
    assert not Usage.objects.filter(account=sub).exists()
    _reserve(sub, 5)  # exactly the limit still fits
    assert _usage(sub, Usage.Window.HOUR) == 5


def test_a_lowered_limit_applies_to_the_next_send():
    sub = SubaccountFactory(monthly_limit=100)
    _reserve(sub, 10)
    sub.monthly_limit = 10
    sub.save()
    with pytest.raises(QuotaExceeded):
        _reserve(sub, 1)


def test_windows_roll_over_at_the_hour_and_the_month_in_utc():
    sub = SubaccountFactory(monthly_limit=10, hourly_limit=3)
    end_of_hour = datetime(2026, 10, 31, 23, 59, 59, tzinfo=timezone.UTC)
    _reserve(sub, 3, now=end_of_hour)
    with pytest.raises(QuotaExceeded):
        _reserve(sub, 1, now=end_of_hour)
    next_hour_and_month = end_of_hour + timedelta(seconds=1)
    _reserve(sub, 3, now=next_hour_and_month)  # a new hour and a new month: both windows are fresh
    months = dict(Usage.objects.filter(account=sub, window=Usage.Window.MONTH).values_list("start", "sent"))
    assert months == {
        datetime(2026, 10, 1, tzinfo=timezone.UTC): 3,
        datetime(2026, 11, 1, tzinfo=timezone.UTC): 3,
    }


def test_a_rejected_call_queues_nothing_and_rejects_every_recipient():
    sub = SubaccountFactory(monthly_limit=2)
    results = accept_messages(account=sub, message=_message(3))
    assert [r.status for r in results] == ["rejected"] * 3
    assert {r.reject_reason for r in results} == {"monthly-limit-reached"}
    # Each refusal is on record for the log (status rejected, no body); nothing is queued.
    assert set(Message.objects.values_list("status", "reject_reason", "content")) == {
        ("rejected", "monthly-limit-reached", None)
    }
    assert _usage(sub, Usage.Window.MONTH) == 0
    # the refusal is counted for the charts, not against the limit
    assert Usage.objects.get(account=sub, window=Usage.Window.HOUR).rejected == 3


def _race(sub, *, threads: int, batch: int, now=None) -> tuple[int, int]:
    accepted, rejected = [], []
    barrier = threading.Barrier(threads)

    def sender():
        try:
            barrier.wait()
            for _ in range(200 // (threads * batch) + 2):
                results = accept_messages(account=sub, message=_message(batch), now=now)
                statuses = {r.status for r in results}
                assert len(statuses) == 1  # all or nothing per call
                (accepted if statuses == {"queued"} else rejected).append(len(results))
        finally:
            connection.close()

    workers = [threading.Thread(target=sender) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(accepted), sum(rejected)


@requires_postgres()
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("batch", [1, 7])
def test_sixteen_concurrent_senders_never_pass_the_limit(batch):
    # given a subaccount with 100 emails left this month
    sub = SubaccountFactory(monthly_limit=150)
    MembershipFactory(account=sub.parent, role=Membership.Role.ADMIN)  # someone to alert
    _reserve(sub, 50)
    # when 16 threads send at once
    with mock.patch("mailing.sending.enqueue_delivery"):
        accepted, rejected = _race(sub, threads=16, batch=batch)
    # then exactly what fits was accepted, counted and stored
    assert accepted == (100 if batch == 1 else 98)  # 14 batches of 7 fit in 100
    assert rejected > 0
    assert _usage(sub, Usage.Window.MONTH) == 50 + accepted
    assert Message.objects.filter(account=sub).exclude(status=Message.Status.REJECTED).count() == accepted
    assert Message.objects.filter(account=sub, status=Message.Status.REJECTED).count() == rejected
    # and however the senders raced, each threshold crossed was recorded, and announced, once
    crossed = {t for t in (80, 95, 100) if (50 + accepted) * 100 >= t * 150}
    assert sorted(LimitAlert.objects.filter(account=sub).values_list("threshold", flat=True)) == sorted(
        crossed
    )
    alert_mails = [m for m in mail.outbox if "monthly email limit" in m.subject]
    assert 1 <= len(alert_mails) <= len(crossed)


@requires_postgres()
@pytest.mark.django_db(transaction=True)
def test_hourly_and_monthly_limits_both_bind_under_concurrency():
    sub = SubaccountFactory(monthly_limit=1000, hourly_limit=40)
    hour = datetime(2026, 11, 2, 10, 30, tzinfo=timezone.UTC)
    with mock.patch("mailing.sending.enqueue_delivery"):
        accepted, _ = _race(sub, threads=8, batch=1, now=hour)
        assert accepted == 40
        sub.monthly_limit = 60
        sub.save()
        accepted_next_hour, _ = _race(sub, threads=8, batch=1, now=hour + timedelta(hours=1))
    assert accepted_next_hour == 20  # the month binds before the new hour does
    assert _usage(sub, Usage.Window.MONTH) == 60
