"""What became of a message: delivered, hard or soft bounced, complained about. Each is an event, a Usage
counter and, for the recipient's sake, a suppression; a repeated report changes nothing."""

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from accounts.models import Usage
from mailing import delivery, partitions
from mailing.deliverability import outcomes
from mailing.deliverability.bounces import verp_token
from mailing.models import Message, MessageEvent, Suppression
from mailing.sending import OutgoingMessage, Recipient, accept_messages
from tests.factories import SubaccountFactory

pytestmark = pytest.mark.django_db
Kind = MessageEvent.Kind


def _send(sub, *emails):
    results = accept_messages(
        account=sub,
        message=OutgoingMessage(
            from_email="news@shop.test", text="hi", recipients=[Recipient(e) for e in emails]
        ),
    )
    return [r for r in results]


def _deliver(results):
    return delivery.deliver(
        list(
            Message.objects.filter(public_id__in=[r.id for r in results if r.id]).values_list("pk", flat=True)
        )
    )


def _hour(sub):
    return Usage.objects.get(account=sub, window=Usage.Window.HOUR)


def test_a_delivered_message_has_a_send_event_and_counts_delivered(smtp_sink):
    sub = SubaccountFactory()
    _deliver(_send(sub, "a@example.test", "b@example.test"))
    assert list(MessageEvent.objects.values_list("kind", flat=True)) == [Kind.SEND, Kind.SEND]
    assert _hour(sub).delivered == 2
    # each names its message and account, at the time the message was marked sent, in the batch's order
    events = MessageEvent.objects.order_by("pk").values_list(
        "message_id", "account_id", "created_at", "diagnostic", "data"
    )
    messages = Message.objects.order_by("pk")
    assert list(events) == [(m.pk, sub.pk, m.sent_at, "", {}) for m in messages]


def test_a_relays_5xx_for_the_address_is_a_hard_bounce_that_suppresses_it(smtp_sink):
    sub = SubaccountFactory(monthly_limit=10)
    smtp_sink.refuse_recipients["gone@example.test"] = "550 5.1.1 <gone@example.test>: user unknown"
    _deliver(_send(sub, "gone@example.test"))
    message = Message.objects.get()
    assert message.status == Message.Status.BOUNCED
    event = message.events.get()
    assert event.kind == Kind.HARD_BOUNCE and "5.1.1" in event.diagnostic
    assert Suppression.objects.get(account=sub).reason == "hard-bounce"
    assert _hour(sub).hard_bounced == 1
    # the next send to it is rejected at no cost
    [again] = _send(sub, "gone@example.test")
    assert (again.status, again.reject_reason) == ("rejected", "hard-bounce")
    assert Usage.objects.get(account=sub, window=Usage.Window.MONTH).sent == 1


def test_soft_bounces_suppress_for_a_while_after_the_third(settings):
    settings.SOFT_BOUNCES_TO_SUPPRESS = 3
    sub = SubaccountFactory()
    results = _send(sub, "full@example.test", "full@example.test", "full@example.test")
    messages = list(Message.objects.filter(public_id__in=[r.id for r in results]))
    for n, message in enumerate(messages, start=1):
        outcomes.record_bounce(message, kind=Kind.SOFT_BOUNCE, diagnostic="452 4.2.2 mailbox full")
        assert Suppression.objects.filter(email="full@example.test").exists() == (n == 3)
    entry = Suppression.objects.get()
    assert entry.reason == "soft-bounce" and entry.expires_at is not None
    assert _hour(sub).soft_bounced == 3


def test_a_complaint_suppresses_and_a_repeated_report_changes_nothing():
    sub = SubaccountFactory()
    [result] = _send(sub, "angry@example.test")
    message = Message.objects.get(public_id=result.id)
    assert outcomes.record_bounce(message, kind=Kind.SPAM, diagnostic="abuse report") is not None
    assert outcomes.record_bounce(message, kind=Kind.SPAM, diagnostic="abuse report") is None
    assert Suppression.objects.get().reason == "spam" and _hour(sub).complained == 1
    assert MessageEvent.objects.filter(kind=Kind.SPAM).count() == 1


def test_the_envelope_sender_names_the_message_when_a_bounce_domain_is_set(smtp_sink, settings):
    settings.BOUNCE_DOMAIN = "bounce.reseller.test"
    sub = SubaccountFactory()
    [result] = _send(sub, "a@example.test")
    _deliver([result])
    assert smtp_sink.received[0].mail_from == f"bounces+{verp_token(result.id)}@bounce.reseller.test"


def test_old_events_are_deleted_where_tables_are_not_partitioned(settings):
    settings.EVENT_RETENTION_DAYS = 90
    sub = SubaccountFactory()
    message = Message.objects.create(account=sub, from_email="a@example.test", to_email="b@example.test")
    now = timezone.now()
    old = MessageEvent.objects.create(
        message=message, account=sub, kind="open", created_at=now - timedelta(days=91)
    )
    kept = MessageEvent.objects.create(
        message=message, account=sub, kind="open", created_at=now - timedelta(days=89)
    )
    with mock.patch.object(partitions, "enabled", return_value=False):
        assert outcomes.purge_old_events(now=now) == 1
    assert list(MessageEvent.objects.values_list("pk", flat=True)) == [kept.pk] and old.pk != kept.pk
