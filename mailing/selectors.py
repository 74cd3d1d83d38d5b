"""Reads of messages and the archive, shaped for pages; each starts from the current account."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import Account

from .models import ArchivedMessage, Message


@dataclass(frozen=True)
class MessageFilters:
    status: str = ""
    recipient: str = ""
    tag: str = ""
    date_from: date | None = None
    date_to: date | None = None

    @classmethod
    def from_query(cls, query) -> MessageFilters:
        return cls(
            status=query.get("status", "") if query.get("status") in Message.Status.values else "",
            recipient=query.get("recipient", "").strip()[:254],
            tag=query.get("tag", "").strip()[:50],
            date_from=_date(query.get("date_from")),
            date_to=_date(query.get("date_to")),
        )


def has_tag(tag: str) -> Q:
    """Messages carrying `tag`: JSON containment on PostgreSQL (indexable), a text match on SQLite,
    which has no JSON containment (the embedded set-up only)."""
    if connection.vendor == "postgresql":
        return Q(tags__contains=[tag])
    return Q(tags__icontains=json.dumps(tag))


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.UTC)


def messages_for(account: Account, filters: MessageFilters) -> QuerySet[Message]:
    """The account's messages, newest first (a master's include its subaccounts')."""
    found = (
        Message.objects.for_account(account).select_related("account").defer("text", "html", "attachments")
    )
    if filters.status:
        found = found.filter(status=filters.status)
    if filters.recipient:
        found = found.filter(to_email__icontains=filters.recipient)
    if filters.tag:
        found = found.filter(has_tag(filters.tag))
    if filters.date_from:
        found = found.filter(created_at__gte=_day_start(filters.date_from))
    if filters.date_to:
        found = found.filter(created_at__lt=_day_start(filters.date_to) + timedelta(days=1))
    return found.order_by("-created_at", "-id")


def message_of(account: Account, public_id: str) -> Message:
    """One of the account's messages. Raises Message.DoesNotExist for anyone else's."""
    return Message.objects.for_account(account).select_related("account").get(public_id=public_id)


def archive_for(
    account: Account, *, query: str = "", date_from: date | None = None, date_to: date | None = None
):
    """Archived copies of the account's own mail (never its master's other customers'), searched in
    subject, sender and recipient."""
    found = ArchivedMessage.objects.filter(account=account).defer("text", "html")
    for term in query.split()[:5]:
        found = found.filter(
            Q(subject__icontains=term) | Q(from_email__icontains=term) | Q(to_email__icontains=term)
        )
    if date_from:
        found = found.filter(sent_at__gte=_day_start(date_from))
    if date_to:
        found = found.filter(sent_at__lt=_day_start(date_to) + timedelta(days=1))
    return found.order_by("-sent_at", "-id")
