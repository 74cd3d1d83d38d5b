from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from accounts import lifecycle
from accounts.models import Account, LimitAlert, Membership, Usage
from mailing import delivery, tasks
from mailing.models import ArchivedMessage, Message
from mailing.sending import OutgoingMessage, Recipient, accept_messages
from tests.factories import MembershipFactory, SubaccountFactory

pytestmark = pytest.mark.django_db


def _message(*addresses: str, **extra) -> OutgoingMessage:
    return OutgoingMessage(
        from_email="shop@example.test", subject="Your order", text="Thanks", html="<p>Thanks</p>",
        recipients=[Recipient(email=a) for a in addresses], **extra,
    )  # fmt: skip


def test_an_accepted_message_is_stored_per_recipient_and_delivered(
    smtp_sink, django_capture_on_commit_callbacks
):
    sub = SubaccountFactory()
    with django_capture_on_commit_callbacks(execute=True):
        results = accept_messages(
            account=sub, message=_message("a@example.test", "b@example.test", tags=["order"])
        )
    assert [r.status for r in results] == ["queued", "queued"]
    assert all(len(r.id) == 32 for r in results)
    assert sorted(e.rcpt_tos[0] for e in smtp_sink.received) == ["a@example.test", "b@example.test"]
    assert set(Message.objects.values_list("status", flat=True)) == {Message.Status.SENT}


def test_invalid_addresses_are_answered_invalid_and_not_counted():
    sub = SubaccountFactory(monthly_limit=1)
    results = accept_messages(account=sub, message=_message("not-an-address", "ok@example.test"))
    assert {(r.email, r.status) for r in results} == {
        ("not-an-address", "invalid"),
        ("ok@example.test", "queued"),
    }


def test_a_closed_account_cannot_send():
    sub = SubaccountFactory(status=Account.Status.CLOSED)
    with pytest.raises(lifecycle.InvalidTransition):
        accept_messages(account=sub, message=_message("a@example.test"))
    assert not Message.objects.exists()


def test_paused_mail_is_held_then_released_in_order_on_resume(smtp_sink, django_capture_on_commit_callbacks):
    sub = SubaccountFactory(status=Account.Status.PAUSED)
    admin = MembershipFactory(account=sub.parent, role=Membership.Role.ADMIN).user
    with django_capture_on_commit_callbacks(execute=True):
        first = accept_messages(account=sub, message=_message("first@example.test"))
        accept_messages(account=sub, message=_message("second@example.test"))
    assert first[0].status == "queued" and first[0].queued_reason == "sending-paused"
    assert smtp_sink.received == []
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.resume_subaccount(actor=admin, master=sub.parent, subaccount_id=sub.pk)
    assert [e.rcpt_tos[0] for e in smtp_sink.received] == ["first@example.test", "second@example.test"]


def test_mail_held_past_72_hours_is_rejected():
    sub = SubaccountFactory(status=Account.Status.PAUSED)
    accept_messages(account=sub, message=_message("a@example.test"))
    Message.objects.update(created_at=timezone.now() - timedelta(hours=73))
    assert delivery.expire_held() == 1
    message = Message.objects.get()
    assert (message.status, message.reject_reason) == (Message.Status.REJECTED, "hold-expired")


def test_archiving_at_accept_time_decides(smtp_sink, django_capture_on_commit_callbacks):
    sub = SubaccountFactory(archiving_enabled=True)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        accept_messages(account=sub, message=_message("kept@example.test"))
    Account.objects.filter(pk=sub.pk).update(archiving_enabled=False)  # turned off before delivery
    for callback in callbacks:
        callback()
    with django_capture_on_commit_callbacks(execute=True):
        accept_messages(account=sub, message=_message("not-kept@example.test"))
    assert list(ArchivedMessage.objects.values_list("to_email", flat=True)) == ["kept@example.test"]


def test_a_temporary_failure_is_retried_and_a_permanent_one_fails(smtp_sink):
    sub = SubaccountFactory()
    with mock.patch("mailing.sending.enqueue_delivery"):
        accept_messages(account=sub, message=_message("temp@example.test"))
        accept_messages(account=sub, message=_message("perm@example.test"))
    temp, perm = Message.objects.order_by("pk")
    smtp_sink.replies = ["451 4.3.0 try later", "550 5.1.1 no such user"]
    report = delivery.deliver([temp.pk, perm.pk])
    assert (report.sent, report.retry, report.failed) == (0, 1, 1)
    temp.refresh_from_db()
    perm.refresh_from_db()
    assert temp.status == Message.Status.QUEUED and temp.next_attempt_at > timezone.now()
    assert perm.status == Message.Status.FAILED and "550" in perm.last_error
    assert (
        sum(Usage.objects.filter(account=sub, window=Usage.Window.HOUR).values_list("failed", flat=True)) == 1
    )
    # the retry, when it comes, delivers
    assert delivery.deliver([temp.pk]).sent == 1
    assert [e.rcpt_tos[0] for e in smtp_sink.received] == ["temp@example.test"]


def test_two_claims_on_the_same_messages_send_each_once(smtp_sink):
    sub = SubaccountFactory()
    with mock.patch("mailing.sending.enqueue_delivery"):
        accept_messages(account=sub, message=_message("a@example.test", "b@example.test"))
    ids = list(Message.objects.values_list("pk", flat=True))
    first = delivery.claim(ids)
    second = delivery.claim(ids)
    assert len(first) == 2 and second == []


def test_the_sweep_recovers_mail_from_a_lost_broker_message_or_a_dead_worker(smtp_sink):
    sub = SubaccountFactory()
    with mock.patch("mailing.sending.enqueue_delivery"):  # the broker never got them
        accept_messages(account=sub, message=_message("lost@example.test", "claimed@example.test"))
    lost, claimed = Message.objects.order_by("pk")
    delivery.claim([claimed.pk])  # a worker claimed it, then died before sending
    later = timezone.now() + timedelta(minutes=15)
    due = delivery.due_for_sweep(now=later)
    assert sorted(due) == sorted([lost.pk, claimed.pk])
    assert delivery.deliver(due).sent == 2


def test_the_sweep_task_enqueues_what_is_due(smtp_sink):
    sub = SubaccountFactory()
    with mock.patch("mailing.sending.enqueue_delivery"):
        accept_messages(account=sub, message=_message("a@example.test"))
    Message.objects.update(next_attempt_at=timezone.now() - timedelta(minutes=5))
    assert tasks.sweep_queued() == 1
    assert Message.objects.get().status == Message.Status.SENT


def test_when_the_broker_is_down_the_send_still_succeeds_and_the_sweep_delivers_later(
    smtp_sink, django_capture_on_commit_callbacks
):
    from reseller.celery import app

    sub = SubaccountFactory()
    app.conf.task_always_eager = False
    previous = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens there
    app._pool = None  # connections are made afresh, to the dead address
    try:
        with django_capture_on_commit_callbacks(execute=True):
            results = accept_messages(account=sub, message=_message("a@example.test"))
    finally:
        app.conf.broker_url = previous
        app._pool = None
        app.conf.task_always_eager = True
    assert results[0].status == "queued"
    assert Message.objects.get().status == Message.Status.QUEUED
    Message.objects.update(next_attempt_at=timezone.now() - timedelta(minutes=5))
    assert tasks.sweep_queued() == 1
    assert [e.rcpt_tos[0] for e in smtp_sink.received] == ["a@example.test"]


def test_crossing_thresholds_alerts_the_agency_once_each(mailoutbox, django_capture_on_commit_callbacks):
    sub = SubaccountFactory(monthly_limit=10)
    sub.parent.alert_thresholds = [50, 80]
    sub.parent.save()
    MembershipFactory(account=sub.parent, role=Membership.Role.ADMIN, user__email="boss@agency.test")
    with mock.patch("mailing.sending.enqueue_delivery"):
        for batch in (range(6), range(1), range(3)):  # 60 %, 70 %, 100 %
            with django_capture_on_commit_callbacks(execute=True):
                accept_messages(account=sub, message=_message(*[f"r{i}@example.test" for i in batch]))
    assert sorted(LimitAlert.objects.values_list("threshold", flat=True)) == [50, 80, 100]
    alert_mails = [m for m in mailoutbox if "monthly email limit" in m.subject]
    assert [m.to for m in alert_mails] == [["boss@agency.test"], ["boss@agency.test"]]
    assert "60%" in alert_mails[0].subject and "100%" in alert_mails[1].subject


def test_the_scan_alerts_after_a_quota_is_lowered_below_usage(mailoutbox, django_capture_on_commit_callbacks):
    from accounts.alerts import scan_limit_alerts

    sub = SubaccountFactory(monthly_limit=100)
    with mock.patch("mailing.sending.enqueue_delivery"):
        accept_messages(account=sub, message=_message(*[f"r{i}@example.test" for i in range(10)]))
    assert not LimitAlert.objects.exists()
    Account.objects.filter(pk=sub.pk).update(monthly_limit=10)
    with django_capture_on_commit_callbacks(execute=True):
        assert scan_limit_alerts() == 3  # 80, 95 and 100 at once
        assert scan_limit_alerts() == 0


def test_a_slow_batch_renews_its_claim_even_when_every_message_fails(smtp_sink, settings):
    # given a relay that refuses for now, and a clock where each message takes longer than a third of the lease
    sub = SubaccountFactory()
    with mock.patch("mailing.sending.enqueue_delivery"):
        ids = [
            r.id for r in accept_messages(account=sub, message=_message("a@example.test", "b@example.test"))
        ]
    smtp_sink.replies = ["451 4.3.0 busy", "451 4.3.0 busy"]
    ticks = iter(range(0, 10_000, 100))
    with (
        mock.patch("mailing.delivery.time.monotonic", side_effect=lambda: next(ticks)),
        mock.patch("mailing.delivery._renew_claim", wraps=delivery._renew_claim) as renew,
    ):
        report = delivery.deliver(
            list(Message.objects.filter(public_id__in=ids).values_list("pk", flat=True))
        )
    # then the worker still told the sweep it was alive, after each slow message that others wait behind
    # (after the last, nothing it holds is left to renew)
    assert report.retry == 2 and renew.call_count == 1
