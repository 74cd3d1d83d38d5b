"""Reads of messages and the archive, shaped for pages; each starts from the current account."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncHour
from django.utils import timezone

from accounts.errors import ValidationError
from accounts.models import Account
from accounts.validation import clean_search

from .models import Message, MessageEvent


@dataclass(frozen=True)
class MessageFilters:
    status: str = ""
    recipient: str = ""
    tag: str = ""
    date_from: date | None = None
    date_to: date | None = None
    errors: dict[str, str] = field(default_factory=dict)  # filter → why it was ignored

    @classmethod
    def from_query(cls, query) -> MessageFilters:
        recipient, recipient_error = clean_search(query.get("recipient"), max_length=254)
        tag, tag_error = clean_search(query.get("tag"), max_length=50)
        errors = {
            name: error for name, error in (("recipient", recipient_error), ("tag", tag_error)) if error
        }
        return cls(
            status=query.get("status", "") if query.get("status") in Message.Status.values else "",
            recipient=recipient,
            tag=tag,
            date_from=_date(query.get("date_from")),
            date_to=_date(query.get("date_to")),
            errors=errors,
        )


def list_contains(field: str, value: str) -> Q:
    """Rows whose JSON list `field` holds `value`: containment on PostgreSQL (indexable), a text match
    on SQLite, which has no JSON containment (the embedded set-up only)."""
    if connection.vendor == "postgresql":
        return Q(**{f"{field}__contains": [value]})
    return Q(**{f"{field}__icontains": json.dumps(value)})


def has_tag(tag: str) -> Q:
    """Messages carrying `tag`."""
    return list_contains("tags", tag)


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def day_start(day: date) -> datetime:
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
        found = found.filter(created_at__gte=day_start(filters.date_from))
    if filters.date_to:
        found = found.filter(created_at__lt=day_start(filters.date_to) + timedelta(days=1))
    return found.order_by("-created_at", "-id")


def message_of(account: Account, public_id: str) -> Message:
    """One of the account's messages. Raises Message.DoesNotExist for anyone else's."""
    return Message.objects.for_account(account).select_related("account").get(public_id=public_id)


def tracking_events_of(message: Message) -> list[MessageEvent]:
    """The message's opens and clicks, oldest first (messages/info's details)."""
    return list(message.events.filter(kind__in=[MessageEvent.Kind.OPEN, MessageEvent.Kind.CLICK]))


def _recipient(value: str) -> Q:
    """A full address, or (without an @) every address at that domain, as Mandrill's email:gmail.com."""
    return Q(to_email__iexact=value) if "@" in value else Q(to_email__iendswith=f"@{value.lstrip('@')}")


def has_metadata(name: str, value: str) -> Q:
    """Messages whose metadata has `name` = `value` (u_name:value): JSON containment on PostgreSQL,
    served by a GIN index; a text match on SQLite (the embedded set-up only)."""
    if connection.vendor == "postgresql":
        return Q(metadata__contains={name: value})
    return Q(metadata__icontains=json.dumps({name: value})[1:-1])


# The fields of Mandrill's search language we answer, and the lookup each becomes (u_<name> is metadata).
SEARCH_FIELDS = {
    "email": _recipient,
    "to": _recipient,
    "full_email": lambda value: Q(to_email__iexact=value),
    "template": lambda value: Q(template=value),
    "sender": lambda value: Q(from_email__iexact=value),
    "from_email": lambda value: Q(from_email__iexact=value),
    "subject": lambda value: Q(subject__icontains=value),
    "subaccount": lambda value: Q(account__public_id=value),
    "tags": has_tag,
    "state": lambda value: Q(status=value),
}


def matching_messages(
    account: Account,
    *,
    query: str = "",
    date_from: datetime,
    date_to: datetime,
    tags: list[str] | None = None,
    senders: list[str] | None = None,
) -> QuerySet[Message]:
    """`messages/search`: the account's messages (a master's include its subaccounts') sent in
    [date_from, date_to), matching every term of `query` (a bare word searches subject, recipient and
    sender; `field:value` one field; `u_name:value` metadata), any of `tags` and any of `senders`.
    Raises ValidationError for a field we do not search."""
    found = (
        Message.objects.for_account(account)
        .select_related("account")
        .filter(created_at__gte=date_from, created_at__lt=date_to)
    )
    query = query.strip()
    for term in query.split() if query != "*" else []:
        name, _, value = term.partition(":")
        if not value:
            found = found.filter(
                Q(subject__icontains=term) | Q(to_email__icontains=term) | Q(from_email__icontains=term)
            )
        elif name in SEARCH_FIELDS:
            found = found.filter(SEARCH_FIELDS[name](value))
        elif name.startswith("u_") and len(name) > 2:
            found = found.filter(has_metadata(name[2:], value))
        else:
            raise ValidationError(
                f"Unsupported search field {name!r}: use {', '.join(sorted(SEARCH_FIELDS))} or u_<metadata name>",
                field="query",
            )
    if tags is not None:
        any_tag = Q()
        for tag in tags:
            any_tag |= has_tag(tag)
        found = found.filter(any_tag)
    if senders is not None:
        found = found.filter(from_email__in=senders)
    return found


def search_time_series(found: QuerySet[Message]) -> list[dict]:
    """Hourly counts of a search's messages, by what became of them (Mandrill's time-series rows)."""
    rows = (
        found.order_by()
        .annotate(hour=TruncHour("created_at", tzinfo=timezone.UTC))
        .values("hour")
        .annotate(
            sent=Count("pk", filter=~Q(status=Message.Status.REJECTED)),
            rejects=Count("pk", filter=Q(status=Message.Status.REJECTED)),
            bounces=Count("pk", filter=Q(status__in=[Message.Status.FAILED, Message.Status.BOUNCED])),
        )
        .order_by("hour")
    )
    return list(rows)
