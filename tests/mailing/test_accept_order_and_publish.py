"""The accept path's order inside its transaction (the quota last, so the hot Usage rows are locked
shortest), its one broker publish per call (split into batches by the worker), and the sender a master
names, cached per process and checked again inside the transaction."""

from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.errors import AccountClosed, PermissionDenied, UnknownSubaccount
from accounts.models import Account, Usage
from mailing import tasks
from mailing.deliverability import suppression
from mailing.delivery import DeliveryReport
from mailing.models import AllowlistEntry, Message, Suppression
from mailing.sending import OutgoingMessage, Recipient, accept_messages, resolve_sender
from tests.factories import SubaccountFactory

pytestmark = pytest.mark.django_db


def _message(count: int, **extra) -> OutgoingMessage:
    return OutgoingMessage(
        from_email="shop@example.test", subject="Your order", text="Thanks", html="<p>Thanks</p>",
        recipients=[Recipient(email=f"r{i}@example.test") for i in range(count)], **extra,
    )  # fmt: skip


def test_the_quota_is_reserved_after_the_insert_just_before_the_commit():
    # given
    sub = SubaccountFactory()
    # when
    with mock.patch("mailing.sending.enqueue_delivery"), CaptureQueriesContext(connection) as queries:
        accept_messages(account=sub, message=_message(3))
    # then: the Message insert comes first, the Usage reservations (one upsert per window) last
    statements = [q["sql"].strip() for q in queries.captured_queries]
    insert = next(i for i, sql in enumerate(statements) if sql.startswith('INSERT INTO "mailing_message"'))
    bumps = [i for i, sql in enumerate(statements) if sql.startswith("INSERT INTO accounts_usage")]
    assert bumps and insert < min(bumps)
    after = [sql for sql in statements[max(bumps) + 1 :] if not sql.startswith(("SAVEPOINT", "RELEASE"))]
    assert all(not sql.startswith(("INSERT", "UPDATE", "DELETE")) for sql in after), after


def test_a_call_over_quota_leaves_its_insert_rolled_back():
    # given a subaccount with 2 emails left this month
    sub = SubaccountFactory(monthly_limit=2)
    # when a call of 3 arrives (inserted, then refused by the reservation)
    with mock.patch("mailing.sending.enqueue_delivery") as enqueue:
        results = accept_messages(account=sub, message=_message(3))
    # then nothing is queued or counted, and each recipient is answered rejected
    assert {r.status for r in results} == {"rejected"}
    assert not Message.objects.exclude(status=Message.Status.REJECTED).exists()
    assert Message.objects.filter(status=Message.Status.REJECTED).count() == 3
    assert not Usage.objects.filter(account=sub, sent__gt=0).exists()
    enqueue.assert_not_called()


def test_a_large_call_is_published_to_the_broker_once(django_capture_on_commit_callbacks):
    sub = SubaccountFactory()
    with (
        mock.patch.object(tasks.deliver_messages, "apply_async") as publish,
        django_capture_on_commit_callbacks(execute=True),
    ):
        accept_messages(account=sub, message=_message(120))
    assert publish.call_count == 1
    (ids,) = publish.call_args.kwargs["args"]
    assert sorted(ids) == sorted(Message.objects.values_list("pk", flat=True)) and len(ids) == 120


def test_the_worker_hands_out_a_large_task_in_batches():
    ids = list(range(1, 121))
    with (
        mock.patch.object(tasks.delivery, "deliver", return_value=DeliveryReport(sent=50)) as deliver,
        mock.patch.object(tasks.deliver_messages, "apply_async") as publish,
    ):
        tasks.deliver_messages.run(ids)
    deliver.assert_called_once_with(ids[:50])
    assert [c.kwargs["args"] for c in publish.call_args_list] == [[ids[50:100]], [ids[100:]]]


def test_a_broker_failure_when_handing_out_leaves_the_rest_to_the_sweep(caplog):
    ids = list(range(1, 121))
    with (
        mock.patch.object(tasks.delivery, "deliver", return_value=DeliveryReport(sent=50)),
        mock.patch.object(tasks.deliver_messages, "apply_async", side_effect=ConnectionError("down")),
    ):
        assert tasks.deliver_messages.run(ids)["sent"] == 50
    assert "Could not enqueue 70 messages" in caplog.text


def test_an_empty_call_publishes_nothing():
    with mock.patch.object(tasks.deliver_messages, "apply_async") as publish:
        tasks.enqueue_delivery([])
    publish.assert_not_called()


# --- a master naming its subaccount: resolved from the process's cache, checked again at accept ----------


@pytest.fixture
def cached_sender(settings):
    """A subaccount its master has just sent as, so this process has it in `named_senders`."""
    settings.API_KEY_CACHE_SECONDS = 5
    sub = SubaccountFactory(public_id="shop")
    assert resolve_sender(account=sub.parent, subaccount_id="shop") == sub
    return sub


def test_a_cached_sender_is_not_looked_up_again(cached_sender):
    with CaptureQueriesContext(connection) as queries:
        assert resolve_sender(account=cached_sender.parent, subaccount_id="shop") == cached_sender
    assert len(queries) == 0


@pytest.mark.parametrize(
    "change, error",
    [
        (lambda sub: Account.objects.filter(pk=sub.pk).update(parent=None, kind=Account.Kind.STANDALONE),
         UnknownSubaccount),  # renewed away
        (lambda sub: Account.objects.filter(pk=sub.pk).delete(), UnknownSubaccount),
        (lambda sub: Account.objects.filter(pk=sub.pk).update(status=Account.Status.CLOSED), AccountClosed),
    ],
)  # fmt: skip
def test_a_sender_changed_since_it_was_cached_is_refused_at_accept(cached_sender, change, error):
    # given: another process renews, deletes or closes the subaccount after this one cached it
    change(cached_sender)
    sender = resolve_sender(account=cached_sender.parent, subaccount_id="shop")  # stale, from the cache
    # when / then
    with mock.patch("mailing.sending.enqueue_delivery"), pytest.raises(error):
        accept_messages(account=sender, message=_message(1))
    assert not Message.objects.exclude(status=Message.Status.REJECTED).exists()
    assert not Usage.objects.filter(sent__gt=0).exists()


def test_a_subaccount_naming_another_is_refused_even_when_the_master_cached_it(cached_sender):
    other = SubaccountFactory(parent=cached_sender.parent, public_id="other")
    with pytest.raises(PermissionDenied):
        resolve_sender(account=other, subaccount_id="shop")


# --- the suppression check every accept makes, written as SQL -------------------------------------------


def test_suppressed_among_reads_reasons_expiry_allowlist_and_tenant():
    # given
    sub, other = SubaccountFactory(), SubaccountFactory()
    now = timezone.now()
    Suppression.objects.bulk_create([
        Suppression(account=sub, email="gone@example.test", reason="hard-bounce"),
        Suppression(account=sub, email="soon@example.test", reason="soft-bounce", expires_at=now + timedelta(days=1)),
        Suppression(account=sub, email="past@example.test", reason="soft-bounce", expires_at=now - timedelta(days=1)),
        Suppression(account=sub, email="kept@example.test", reason="unsub"),  # allowlisted below
        Suppression(account=other, email="theirs@example.test", reason="spam"),
    ])  # fmt: skip
    AllowlistEntry.objects.create(account=sub, email="kept@example.test")
    AllowlistEntry.objects.create(account=other, email="gone@example.test")  # another tenant's allowlist
    # when
    found = suppression.suppressed_among(
        sub,
        ["Gone@Example.test", "soon@example.test", "past@example.test", "kept@example.test",
         "theirs@example.test", "new@example.test"],
        now=now,
    )  # fmt: skip
    # then
    assert found == {"gone@example.test": "hard-bounce", "soon@example.test": "soft-bounce"}
    assert suppression.suppressed_among(sub, [], now=now) == {}
