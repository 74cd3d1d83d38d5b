"""Messages, events and archived copies live in monthly partitions on PostgreSQL: the accept path and
delivery write into them, the months ahead are kept ready, rows that landed in the default partition move
to their month, and the archive's retention drops whole months."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from mailing import archive, partitions
from mailing.deliverability import outcomes
from mailing.models import ArchivedMessage, Message, MessageEvent
from mailing.sending import OutgoingMessage, Recipient, accept_messages
from tests.conftest import requires_postgres
from tests.factories import SubaccountFactory

pytestmark = [pytest.mark.django_db, requires_postgres()]


def _month_name(table: str, moment: datetime) -> str:
    return f"{table}_{moment.astimezone(UTC):%Y_%m}"


def _archived(account, sent_at: datetime) -> ArchivedMessage:
    return ArchivedMessage.objects.create(
        account=account,
        from_email="shop@example.test",
        to_email="client@example.test",
        subject="Hi",
        sent_at=sent_at,
    )


def test_the_three_tables_are_partitioned_by_month_with_months_ahead_and_a_default():
    assert partitions.enabled()
    for table in partitions.TABLES:
        months = partitions.months_of(table)
        this_month = partitions.month_start(timezone.now())
        assert {p.start for p in months} >= {partitions.month_start(this_month, n) for n in range(4)}
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s)", [f"{table}_default"])
            assert cursor.fetchone()[0] is not None


def test_accepted_and_delivered_mail_lands_in_this_months_partitions(
    smtp_sink, django_capture_on_commit_callbacks
):
    sub = SubaccountFactory(archiving_enabled=True)
    message = OutgoingMessage(from_email="shop@example.test", subject="Order", text="Thanks",
                              recipients=[Recipient(email="a@example.test"), Recipient(email="b@example.test")])  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        results = accept_messages(account=sub, message=message)
    assert [r.status for r in results] == ["queued", "queued"]
    stored = list(Message.objects.filter(account=sub))
    assert {m.status for m in stored} == {Message.Status.SENT} and len(smtp_sink.received) == 2
    now = timezone.now()
    assert {partitions.partition_of("mailing_message", m.pk) for m in stored} == {
        _month_name("mailing_message", now)
    }
    event = stored[0].events.get()
    assert partitions.partition_of("mailing_messageevent", event.pk) == _month_name(
        "mailing_messageevent", now
    )
    copy = ArchivedMessage.objects.get(message=stored[0])
    assert partitions.partition_of("mailing_archivedmessage", copy.pk) == _month_name(
        "mailing_archivedmessage", now
    )
    # the links without database constraints still work both ways, and a deleted message clears them
    assert event.message == stored[0] and stored[0].archived_copies.get() == copy
    stored[0].delete()
    copy.refresh_from_db()
    assert copy.message_id is None and not MessageEvent.objects.filter(pk=event.pk).exists()


def test_the_archive_is_never_copied_twice_for_one_message():
    sub = SubaccountFactory()
    message = Message.objects.create(account=sub, from_email="a@example.test", to_email="b@example.test")
    archive.archive_sent([message], sent_at=timezone.now())
    archive.archive_sent([message], sent_at=timezone.now() + timedelta(seconds=5))  # a batch delivered again
    assert ArchivedMessage.objects.filter(message=message).count() == 1


def test_rows_beyond_the_prepared_months_wait_in_the_default_and_move_when_their_month_is_made():
    sub = SubaccountFactory()
    far = timezone.now() + timedelta(days=400)
    message = Message.objects.create(account=sub, from_email="a@example.test", to_email="b@example.test")
    Message.objects.filter(pk=message.pk).update(created_at=far)
    assert partitions.partition_of("mailing_message", message.pk) == "mailing_message_default"
    created = partitions.ensure_partitions(now=far, months_ahead=0)
    assert _month_name("mailing_message", far) in created
    assert partitions.partition_of("mailing_message", message.pk) == _month_name("mailing_message", far)
    assert Message.objects.get(pk=message.pk).to_email == "b@example.test"
    assert partitions.ensure_partitions(now=far, months_ahead=0) == []  # already there: nothing to do


def test_the_archive_purge_drops_whole_old_months_and_deletes_the_rest(settings):
    # given copies in a month long gone, in the month the cutoff falls in (older and newer than it), and now
    settings.ARCHIVE_RETENTION_DAYS = 30
    now = timezone.now()
    cutoff = now - timedelta(days=30)
    old_month = partitions.month_start(now, -6)
    partitions.ensure_partitions(now=old_month, months_ahead=6)  # the past months, as a live system has them
    sub = SubaccountFactory()
    gone = [_archived(sub, old_month + timedelta(days=d)) for d in (1, 2, 3)]
    boundary_old = _archived(sub, cutoff - timedelta(hours=1))
    boundary_new = _archived(sub, cutoff + timedelta(hours=1))
    fresh = _archived(sub, now)
    old_name = _month_name("mailing_archivedmessage", old_month)
    assert partitions.partition_of("mailing_archivedmessage", gone[0].pk) == old_name
    # when the purge runs
    purged = archive.purge_archive(now=now)
    # then the old month's partition is gone whole, the boundary month is trimmed row by row
    assert purged == 4
    assert old_name not in {p.name for p in partitions.months_of("mailing_archivedmessage")}
    assert set(ArchivedMessage.objects.values_list("pk", flat=True)) == {boundary_new.pk, fresh.pk}
    assert not ArchivedMessage.objects.filter(pk=boundary_old.pk).exists()
    # and messages' and events' months are untouched by the archive's retention
    assert _month_name("mailing_message", old_month) in {
        p.name for p in partitions.months_of("mailing_message")
    }


def test_ids_keep_counting_and_public_ids_are_still_found():
    sub = SubaccountFactory()
    first = Message.objects.create(account=sub, from_email="a@example.test", to_email="b@example.test")
    second = Message.objects.create(account=sub, from_email="a@example.test", to_email="c@example.test")
    assert second.pk > first.pk
    assert Message.objects.get(public_id=second.public_id) == second


def test_events_older_than_their_retention_go_a_whole_month_at_a_time(settings):
    # given events from March, from mid-August (100 days before 24 November) and from today
    settings.EVENT_RETENTION_DAYS = 90
    now = datetime(2026, 11, 24, 12, tzinfo=UTC)
    partitions.ensure_partitions(now=datetime(2026, 3, 1, tzinfo=UTC), months_ahead=8)
    sub = SubaccountFactory()
    message = Message.objects.create(account=sub, from_email="a@example.test", to_email="b@example.test")
    march = [MessageEvent.objects.create(message=message, account=sub, kind="open", created_at=datetime(2026, 3, d, tzinfo=UTC))
             for d in (1, 31)]  # fmt: skip
    august = MessageEvent.objects.create(
        message=message, account=sub, kind="send", created_at=datetime(2026, 8, 16, tzinfo=UTC)
    )
    today = MessageEvent.objects.create(message=message, account=sub, kind="open", created_at=now)
    # when the purge runs (the cutoff is 26 August)
    purged = outcomes.purge_old_events(now=now)
    # then March to July went as whole months; August, only partly past the cutoff, waits whole
    assert purged == 2
    assert set(MessageEvent.objects.values_list("pk", flat=True)) == {august.pk, today.pk}
    assert not {"mailing_messageevent_2026_03", "mailing_messageevent_2026_07"} & {
        p.name for p in partitions.months_of("mailing_messageevent")
    }
    assert not MessageEvent.objects.filter(pk__in=[e.pk for e in march]).exists()
