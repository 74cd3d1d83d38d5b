"""Reads of messages and the archive, shaped for pages; each starts from the current account."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncHour
from django.utils import timezone

from accounts.csv_export import csv_lines
from accounts.errors import ValidationError
from accounts.models import Account
from accounts.reports import day_start, parse_day
from accounts.validation import clean_search

from .models import ApiKey, Message, MessageEvent, SenderDomain

# The message list's sort keys (the column and its direction), each a whitelisted ordering that ends in a
# unique key, so pages never overlap. Anything else in ?sort= is ignored.
MESSAGE_SORTS = {
    "-created": ("-created_at", "-id"),
    "created": ("created_at", "id"),
    "recipient": ("to_email", "-created_at", "-id"),
    "-recipient": ("-to_email", "-created_at", "-id"),
    "status": ("status", "-created_at", "-id"),
    "-status": ("-status", "-created_at", "-id"),
    "subaccount": ("account__name", "-created_at", "-id"),
    "-subaccount": ("-account__name", "-created_at", "-id"),
}
DEFAULT_MESSAGE_SORT = "-created"


@dataclass(frozen=True)
class MessageFilters:
    status: str = ""
    recipient: str = ""
    tag: str = ""
    subaccount: str = ""  # a master's subaccount, by its id (public_id)
    date_from: date | None = None
    date_to: date | None = None
    sort: str = DEFAULT_MESSAGE_SORT
    errors: dict[str, str] = field(default_factory=dict)  # filter → why it was ignored

    @classmethod
    def from_query(cls, query) -> MessageFilters:
        recipient, recipient_error = clean_search(query.get("recipient"), max_length=254)
        tag, tag_error = clean_search(query.get("tag"), max_length=50)
        subaccount, subaccount_error = clean_search(query.get("subaccount"), max_length=255)
        errors = {
            name: error
            for name, error in (
                ("recipient", recipient_error),
                ("tag", tag_error),
                ("subaccount", subaccount_error),
            )
            if error
        }
        date_from, date_to = parse_day(query.get("date_from")), parse_day(query.get("date_to"))
        for name in ("date_from", "date_to"):
            if query.get(name) and parse_day(query.get(name)) is None:
                errors[name] = "Not a date: use the calendar (year-month-day)."
        if date_from and date_to and date_from > date_to:
            errors["date_from"] = "The first day must come before the last: the dates are ignored."
            date_from = date_to = None
        sort = query.get("sort", "")
        return cls(
            status=query.get("status", "") if query.get("status") in Message.Status.values else "",
            recipient=recipient,
            tag=tag,
            subaccount=subaccount,
            date_from=date_from,
            date_to=date_to,
            sort=sort if sort in MESSAGE_SORTS else DEFAULT_MESSAGE_SORT,
            errors=errors,
        )

    @property
    def any(self) -> bool:
        """Whether anything narrows the list (the sort does not)."""
        return bool(
            self.status or self.recipient or self.tag or self.subaccount or self.date_from or self.date_to
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


def messages_for(account: Account, filters: MessageFilters) -> QuerySet[Message]:
    """The account's messages (a master's include its subaccounts'), filtered and in the filters' order
    (newest first unless a whitelisted sort says otherwise)."""
    found = Message.objects.for_account(account).select_related("account")
    if filters.subaccount and account.is_master:
        # Still inside the agency: an id that is not one of its subaccounts finds nothing.
        found = found.filter(
            account_id__in=Account.objects.subaccounts_of(account)
            .filter(public_id=filters.subaccount)
            .values("pk")
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
        found = found.filter(created_at__lt=day_start(filters.date_to + timedelta(days=1)))
    return found.order_by(*MESSAGE_SORTS[filters.sort])


TOTAL_CAP = 10_000  # counting up to here is cheap (an index range, at most this many entries)


@dataclass(frozen=True)
class Total:
    """How many messages a list holds, as far as it is cheap to know: `exact` up to TOTAL_CAP; past it
    the planner's `estimate` on PostgreSQL (shown as "about"), else only "more than TOTAL_CAP"."""

    count: int
    exact: bool
    estimate: int | None = None


def capped_count(rows: QuerySet, cap: int) -> int:
    """How many rows `rows` holds, counted no further than `cap` + 1: one query reading at most that many
    rows, so `> cap` is known without counting a million."""
    return rows.order_by()[: cap + 1].count()


def total_of(found: QuerySet[Message], *, cap: int = TOTAL_CAP) -> Total:
    """Count `found` without ever counting a million rows: a count capped at `cap` + 1 (capped_count),
    and past the cap the planner's row estimate (EXPLAIN, no rows read)."""
    counted = capped_count(found, cap)
    if counted <= cap:
        return Total(count=counted, exact=True)
    return Total(count=cap, exact=False, estimate=_planner_estimate(found))


def _planner_estimate(found: QuerySet[Message]) -> int | None:
    """PostgreSQL's estimate of the rows `found` returns, from its statistics (pg_class, pg_statistic).
    Only worth showing above the cap, and only with "about": it can be off by a factor for narrow filters."""
    if connection.vendor != "postgresql":
        return None
    plan = json.loads(found.order_by().explain(format="json"))
    rows = plan[0]["Plan"]["Plan Rows"]
    return int(rows) if rows > TOTAL_CAP else None


MESSAGE_CSV_COLUMNS = {
    "created_at": "created_at",
    "message_id": "public_id",
    "subaccount_id": "account__public_id",
    "account": "account__name",
    "from_email": "from_email",
    "to_email": "to_email",
    "subject": "subject",
    "status": "status",
    "reason": "reject_reason",
    "tags": "tags",
}


def messages_csv(account: Account, filters: MessageFilters, *, chunk_size: int = 2000) -> Iterator[str]:
    """The filtered list as CSV lines, in the list's order, read in chunks (a server-side cursor on
    PostgreSQL): a million messages are streamed, never held in memory at once. Cells a spreadsheet would
    run as formulas are neutralised (accounts.csv_export)."""
    rows = (
        messages_for(account, filters)
        .values_list(*MESSAGE_CSV_COLUMNS.values())
        .iterator(chunk_size=chunk_size)
    )
    lines = (
        [created.astimezone(timezone.UTC).isoformat(), *middle, ", ".join(map(str, tags or []))]
        for created, *middle, tags in rows
    )
    return csv_lines(MESSAGE_CSV_COLUMNS, lines)


def message_of(account: Account, public_id: str) -> Message:
    """One of the account's messages. Raises Message.DoesNotExist for anyone else's."""
    return Message.objects.for_account(account).select_related("account", "content").get(public_id=public_id)


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


def subaccount_sending(master: Account, pk: int) -> dict:
    """What the master's page for one subaccount shows of its sending: its latest messages, its API keys
    and the domains it may send from (its own, and the agency's shared with it), read-only, in a fixed
    number of queries. Raises Account.DoesNotExist for anything but one of `master`'s subaccounts."""
    subaccount = Account.objects.subaccounts_of(master).get(pk=pk)
    subaccount.parent = master
    return {
        "sub": subaccount,
        "latest": list(messages_for(subaccount, MessageFilters())[:10]),
        "keys": list(ApiKey.objects.for_account(subaccount)),
        "own_domains": list(SenderDomain.objects.for_account(subaccount)),
        "shared_domains": list(SenderDomain.objects.usable_by(subaccount).exclude(account=subaccount)),
    }
