"""The archive: copies of sent mail (each pointing at its message's stored body), kept ARCHIVE_RETENTION_DAYS for the account to search and read.

Whether a message is archived is decided when it is accepted (the account's setting then); the copy is
written when it is sent, and purged by a periodic task when its time is up.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from accounts.models import Account
from accounts.reports import day_start

from . import partitions
from .models import ArchivedMessage, Message


def archive_sent(messages: list[Message], *, sent_at: datetime) -> None:
    """Keep a copy of each message (sent just now); a copy already kept (a batch delivered again after a
    crash) is not duplicated. Delivery claims each message before sending it, so no two workers archive
    the same one at once."""
    kept = set(
        ArchivedMessage.objects.filter(message_id__in=[m.pk for m in messages]).values_list(
            "message_id", flat=True
        )
    )
    copies = [_archived_copy(message, sent_at) for message in messages if message.pk not in kept]
    if copies:
        ArchivedMessage.objects.bulk_create(copies)


def _archived_copy(message: Message, sent_at: datetime) -> ArchivedMessage:
    return ArchivedMessage(
        account_id=message.account_id,
        message=message,
        from_email=message.from_email,
        to_email=message.to_email,
        subject=message.subject,
        content_id=message.content_id,  # the message's body, not a copy of it
        sent_at=sent_at,
    )


def archive_for(
    account: Account, *, query: str = "", date_from: date | None = None, date_to: date | None = None
):
    """Archived copies of the account's own mail (never its master's other customers'), searched in
    subject, sender and recipient."""
    found = ArchivedMessage.objects.filter(account=account)
    for term in query.split()[:5]:
        found = found.filter(
            Q(subject__icontains=term) | Q(from_email__icontains=term) | Q(to_email__icontains=term)
        )
    if date_from:
        found = found.filter(sent_at__gte=day_start(date_from))
    if date_to:
        found = found.filter(sent_at__lt=day_start(date_to + timedelta(days=1)))
    return found.order_by("-sent_at", "-id")


def archived_message_of(account: Account, pk: int) -> ArchivedMessage:
    """One of the account's own archived copies. Raises ArchivedMessage.DoesNotExist for anyone else's."""
    return ArchivedMessage.objects.select_related("content").get(account=account, pk=pk)


def purge_archive(*, now: datetime | None = None) -> int:
    """Delete the copies older than the retention period; returns how many went. Whole months go as one
    DROP of their partition (PostgreSQL); the rest of the oldest month kept, row by row."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.ARCHIVE_RETENTION_DAYS)
    dropped = partitions.drop_months_before(ArchivedMessage._meta.db_table, cutoff)
    deleted, _ = ArchivedMessage.objects.filter(sent_at__lt=cutoff).delete()
    return dropped + deleted
