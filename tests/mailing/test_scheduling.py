"""Scheduled sends: counted when accepted (in the month of acceptance), held until their time, released by
the periodic task, cancellable (the quota comes back) and reschedulable; a paused account's are held."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from accounts import lifecycle
from accounts.models import Account, Membership, Usage
from mailing import delivery, scheduling
from mailing.keys import create_api_key
from mailing.models import Message
from mailing.outgoing import OutgoingMessage, Recipient
from mailing.sending import accept_messages
from mailing.tasks import release_scheduled
from tests.factories import MasterFactory, MembershipFactory, SubaccountFactory

pytestmark = pytest.mark.django_db


def _scheduled(sub, send_at, now, *to):
    message = OutgoingMessage(
        from_email="shop@example.test",
        text="hi",
        recipients=[Recipient(a) for a in to or ["a@example.test"]],
        send_at=send_at,
    )
    return accept_messages(account=sub, message=message, now=now)


def _month(sub, start):
    return (
        Usage.objects.filter(account=sub, window=Usage.Window.MONTH, start=start)
        .values_list("sent", flat=True)
        .first()
        or 0
    )


def test_accepted_on_the_last_day_of_a_month_counts_in_that_month_and_leaves_in_the_next(smtp_sink):
    sub = SubaccountFactory(monthly_limit=10)
    november_30 = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    december_1 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    [result] = _scheduled(sub, december_1, november_30)
    assert result.status == "scheduled"
    assert _month(sub, datetime(2026, 11, 1, tzinfo=UTC)) == 1
    # nothing leaves before its time
    assert delivery.release_scheduled(now=december_1 - timedelta(minutes=1)) == []
    assert Message.objects.get().status == Message.Status.SCHEDULED
    # then the periodic release hands it to delivery, and December's allowance is untouched
    released = delivery.release_scheduled(now=december_1)
    delivery.deliver(released)
    assert Message.objects.get().status == Message.Status.SENT and len(smtp_sink.received) == 1
    assert _month(sub, datetime(2026, 12, 1, tzinfo=UTC)) == 0


def test_a_scheduled_send_is_refused_at_accept_time_when_over_quota_never_later():
    sub = SubaccountFactory(monthly_limit=2)
    now = datetime(2026, 11, 10, tzinfo=UTC)
    results = _scheduled(
        sub, now + timedelta(days=3), now, "a@example.test", "b@example.test", "c@example.test"
    )
    assert {r.status for r in results} == {"rejected"}
    # Rejected, not queued: recorded for the log without a body, nothing scheduled, no quota used.
    assert set(Message.objects.values_list("status", "send_at")) == {(Message.Status.REJECTED, None)}
    assert _month(sub, now) == 0


def test_cancelling_gives_the_quota_back_to_the_hour_and_month_it_was_counted_in():
    sub = SubaccountFactory(monthly_limit=10)
    now = datetime.now(UTC)
    [result] = _scheduled(sub, now + timedelta(days=2), now)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    assert _month(sub, month_start) == 1
    scheduling.cancel_scheduled(account=sub, public_id=result.id)
    assert _month(sub, month_start) == 0 and not Message.objects.exists()
    with pytest.raises(Message.DoesNotExist):
        scheduling.cancel_scheduled(account=sub, public_id=result.id)


def test_another_tenants_scheduled_message_cannot_be_cancelled():
    sub, other = SubaccountFactory(), SubaccountFactory()
    now = datetime.now(UTC)
    [result] = _scheduled(sub, now + timedelta(days=1), now)
    with pytest.raises(Message.DoesNotExist):
        scheduling.cancel_scheduled(account=other, public_id=result.id)
    assert Message.objects.filter(status=Message.Status.SCHEDULED).count() == 1


def test_reschedule_and_a_paused_accounts_mail_is_held_when_its_time_comes():
    sub = SubaccountFactory(monthly_limit=10)
    admin = MembershipFactory(account=sub.parent, role=Membership.Role.ADMIN).user
    now = datetime.now(UTC)
    [result] = _scheduled(sub, now + timedelta(days=5), now)
    scheduling.reschedule(account=sub, public_id=result.id, send_at=now - timedelta(minutes=1))
    lifecycle.pause_subaccount(actor=admin, master=sub.parent, subaccount_id=sub.pk)
    assert release_scheduled() == 0  # nothing queued: held instead
    message = Message.objects.get()
    assert message.status == Message.Status.HELD and message.queued_reason == "sending-paused"


@pytest.fixture
def master_key(db):
    master = MasterFactory(public_id="agency")
    owner = MembershipFactory(account=master, role=Membership.Role.OWNER).user
    return create_api_key(actor=owner, account=master, label="scheduling")[1]


def _api(client, call, body):
    return client.post(f"/api/1.0/messages/{call}.json", json.dumps(body), content_type="application/json")


def test_the_scheduling_calls(client, master_key):
    message = {"from_email": "news@agency.test", "to": [{"email": "r@example.test"}], "text": "hi"}
    [sent] = _api(
        client, "send", {"key": master_key, "message": message, "send_at": "2099-05-01 10:00:00"}
    ).json()
    assert sent["status"] == "scheduled"
    [listed] = _api(client, "list-scheduled", {"key": master_key}).json()
    assert listed == {"_id": sent["_id"], "created_at": listed["created_at"], "send_at": "2099-05-01 10:00:00",
                      "from_email": "news@agency.test", "to": "r@example.test", "subject": ""}  # fmt: skip
    moved = _api(
        client, "reschedule", {"key": master_key, "id": sent["_id"], "send_at": "2099-06-01 00:00:00"}
    ).json()
    assert moved["send_at"] == "2099-06-01 00:00:00"
    cancelled = _api(client, "cancel-scheduled", {"key": master_key, "id": sent["_id"]}).json()
    assert cancelled["_id"] == sent["_id"]
    again = _api(client, "cancel-scheduled", {"key": master_key, "id": sent["_id"]})
    assert again.status_code == 500 and again.json()["name"] == "Unknown_Message"
    assert not Message.objects.exists() and Account.objects.get(public_id="agency")


def test_the_owner_cancels_a_scheduled_message_from_the_message_list(client):
    from django.urls import reverse

    from tests.factories import subaccount_with_owner

    sub, owner = subaccount_with_owner(monthly_limit=10)
    now = datetime.now(UTC)
    [result] = _scheduled(sub, now + timedelta(days=1), now)
    client.force_login(owner)
    page = client.get(reverse("mailing:message_list")).content.decode()
    assert "Scheduled" in page and "Cancel" in page
    client.post(reverse("mailing:message_cancel", args=[result.id]))
    assert not Message.objects.exists()
    _other, stranger = subaccount_with_owner()
    [again] = _scheduled(sub, now + timedelta(days=1), now)
    client.force_login(stranger)
    client.post(reverse("mailing:message_cancel", args=[again.id]))
    assert Message.objects.filter(public_id=again.id).exists()
