"""The agency's sending over time: a range of UTC days (the last 7, 30 or 90, or any from-to), the daily
figures for a chart, the subaccounts that sent most, and the same figures as CSV. Everything is read
from the Usage summary, never from messages, so a 90-day range costs the same queries at 10 or 100,000
subaccounts: the agency's days from their daily rollup where it exists (accounts/rollup.py), the rest
(today, and days not rolled up yet) from the hourly windows."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from itertools import batched

from django.db import connection, transaction
from django.db.models import Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from . import rollup
from .csv_export import csv_lines
from .errors import ValidationError
from .models import Account, DailyUsage, TrailingUsage, Usage

PRESET_DAYS = {"7": 7, "30": 30, "90": 90}
DEFAULT_PRESET = "30"
MAX_RANGE_DAYS = 366  # a year: past that, a chart by day says nothing and the query reads too much
OLDEST_YEAR = 2000

# What a day (or a range) counts, in the order the chart, the tables and the CSV show them.
FIGURES = (
    "sent",
    "delivered",
    "bounced",
    "complained",
    "rejected",
    "failed",
    "opened",
    "clicked",
    "unsubscribed",
)
# Each figure as a sum of the hourly Usage counters: the one definition the charts, widgets and exports use.
SUMS = {
    "sent": Coalesce(Sum("sent"), 0),
    "delivered": Coalesce(Sum("delivered"), 0),
    "bounced": Coalesce(Sum("hard_bounced"), 0) + Coalesce(Sum("soft_bounced"), 0),
    "complained": Coalesce(Sum("complained"), 0),
    "rejected": Coalesce(Sum("rejected"), 0),
    "failed": Coalesce(Sum("failed"), 0),
    # what recipients did: messages first opened, first clicked (the chart's lines), and unsubscribes
    "opened": Coalesce(Sum("unique_opens"), 0),
    "clicked": Coalesce(Sum("unique_clicks"), 0),
    "unsubscribed": Coalesce(Sum("unsubs"), 0),
}


def parse_day(value: str | None) -> date | None:
    """A filter's day as typed (YYYY-MM-DD), or None when empty or not a date."""
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def day_start(day: date, zone: tzinfo | None = None) -> datetime:
    """Midnight of `day` in `zone`, by default the reader's (the zone their setting activated for this
    request; UTC outside a request), so a day typed into a filter is the day the page's dates show. A
    day ends at the next day's midnight, which stays right across summer time."""
    return datetime.combine(day, time.min, tzinfo=zone or timezone.get_current_timezone())


@dataclass(frozen=True)
class DateRange:
    """UTC days from `first` to `last`, both included; `preset` is "7", "30", "90" or "custom"."""

    first: date
    last: date
    preset: str = "custom"

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time.min, tzinfo=timezone.UTC)

    @property
    def end(self) -> datetime:
        """The first instant after the range."""
        return self.start + timedelta(days=self.days)


def today_utc(now: datetime | None = None) -> date:
    return (now or timezone.now()).astimezone(timezone.UTC).date()


def last_days(days: int, *, now: datetime | None = None, preset: str = "custom") -> DateRange:
    today = today_utc(now)
    return DateRange(first=today - timedelta(days=days - 1), last=today, preset=preset)


def date_range(
    *,
    preset: str = "",
    date_from: date | None = None,
    date_to: date | None = None,
    now: datetime | None = None,
) -> DateRange:
    """The range a page asked for: a preset (the last 7, 30 or 90 days, today included) or a custom
    from-to. Raises ValidationError (with the field at fault) for a custom range that is missing an end,
    runs backwards, ends in the future or spans more than MAX_RANGE_DAYS."""
    if preset in PRESET_DAYS:
        return last_days(PRESET_DAYS[preset], now=now, preset=preset)
    if preset != "custom":
        return last_days(PRESET_DAYS[DEFAULT_PRESET], now=now, preset=DEFAULT_PRESET)
    today = today_utc(now)
    if date_from is None:
        raise ValidationError("Choose the first day.", field="date_from")
    if date_to is None:
        raise ValidationError("Choose the last day.", field="date_to")
    if date_from.year < OLDEST_YEAR:
        raise ValidationError(f"Choose a day in {OLDEST_YEAR} or later.", field="date_from")
    if date_to > today:
        raise ValidationError("The last day cannot be in the future.", field="date_to")
    if date_from > date_to:
        raise ValidationError("The first day must come before the last.", field="date_from")
    span = DateRange(first=date_from, last=date_to)
    if span.days > MAX_RANGE_DAYS:
        raise ValidationError(f"Choose at most {MAX_RANGE_DAYS} days.", field="date_to")
    return span


def hours_in(rows: QuerySet[Usage], span: DateRange) -> QuerySet[Usage]:
    """The hourly windows of `rows` inside the range: a range on `start`, so the index is used."""
    return rows.filter(window=Usage.Window.HOUR, start__gte=span.start, start__lt=span.end)


def _hours_by_day(rows: QuerySet[Usage]) -> dict[date, dict]:
    return {
        row["day"]: row
        for row in rows.annotate(day=TruncDate("start", tzinfo=timezone.UTC))
        .values("day")
        .annotate(**SUMS)
        .order_by()
    }


def daily_figures(rows: QuerySet[Usage], span: DateRange) -> list[dict]:
    """One dict per day of the range (`day` as ISO text, then FIGURES), days without sending at 0:
    one aggregate query over the hourly windows of `rows`."""
    return _days_of(span, _hours_by_day(hours_in(rows, span)))


def _days_of(span: DateRange, by_day: dict[date, dict]) -> list[dict]:
    days = []
    for n in range(span.days):
        day = span.first + timedelta(days=n)
        row = by_day.get(day, {})
        days.append({"day": day.isoformat(), **{name: row.get(name, 0) for name in FIGURES}})
    return days


def totals(days: list[dict]) -> dict[str, int]:
    """The range's figures, added up from its days (no second query)."""
    return {name: sum(day[name] for day in days) for name in FIGURES}


def agency_daily(master: Account, span: DateRange) -> list[dict]:
    """Everything billed to the agency (its own sending, its subaccounts', deleted and renewed ones for
    the days they were its own), day by day: rolled-up days from their day rows, today from its row
    (the hours folded in so far) plus the hours since, other days from their hours. Three queries
    whatever the range; the same figures either way."""
    hours = Usage.objects.filter(billed_to=master)
    if not rollup.covers(span.start):
        return daily_figures(hours, span)  # days that do not start at UTC midnight: only hours can say
    rolled, today_folded_until = rollup.day_rows_reach(span.first, span.last)
    today = today_utc()
    with_rows = rolled | ({today} if today_folded_until else set())
    by_day = {
        row["day"]: row
        for row in DailyUsage.objects.filter(billed_to=master, day__in=with_rows)
        .values("day")
        .annotate(**SUMS)
        .order_by()
    }
    in_hours = Q()
    days = {span.first + timedelta(days=n) for n in range(span.days)}
    for first, last in _runs(sorted(days - with_rows)):
        in_hours |= Q(start__gte=_midnight(first), start__lt=_midnight(last + timedelta(days=1)))
    if today_folded_until:
        in_hours |= Q(start__gte=today_folded_until, start__lt=_midnight(today + timedelta(days=1)))
    if in_hours:
        for day, row in _hours_by_day(hours.filter(in_hours, window=Usage.Window.HOUR)).items():
            before = by_day.get(day, {})
            by_day[day] = {name: before.get(name, 0) + row[name] for name in FIGURES}
    return _days_of(span, by_day)


def range_and_month(master: Account, span: DateRange) -> tuple[list[dict], list[dict] | None]:
    """`agency_daily` for the range and, when the range ends today, for this month so far too, read
    together (today's hours once); else the month is None, for the caller to read as it does."""
    today = today_utc()
    month_first = today.replace(day=1)
    if span.last != today:
        return agency_daily(master, span), None
    both = agency_daily(master, DateRange(first=min(span.first, month_first), last=today))
    first, month = span.first.isoformat(), month_first.isoformat()
    return [day for day in both if day["day"] >= first], [day for day in both if day["day"] >= month]


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.UTC)


def _runs(days: list[date]) -> list[tuple[date, date]]:
    """Sorted days as runs of consecutive days, (first, last) each: a range on `start` per run."""
    runs: list[tuple[date, date]] = []
    for day in days:
        if runs and runs[-1][1] + timedelta(days=1) == day:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def _by_subaccount(master: Account, span: DateRange):
    """The range's figures per subaccount billed to the agency (the agency's own sending left out),
    biggest sender first. Grouped on the Usage rows alone (no join: names are looked up afterwards for
    the rows shown); deleted subaccounts, whose rows lost their account, are told apart by their kept label."""
    return (
        hours_in(Usage.objects.filter(billed_to=master), span)
        .exclude(account_id=master.pk)
        .annotate(deleted_label=rollup.group_label())
        .values("account_id", "deleted_label")
        .annotate(**SUMS)
        .order_by("-sent", "account_id", "deleted_label")
    )


def _named(rows: list[dict], master: Account) -> list[dict]:
    """`rows` with each subaccount's name, id and state (one query for all of them)."""
    accounts = {
        account["pk"]: account
        for account in Account.objects.filter(
            pk__in=[row["account_id"] for row in rows if row["account_id"]]
        ).values("pk", "name", "public_id", "parent_id")
    }
    named = []
    for row in rows:
        account = accounts.get(row["account_id"], {})
        named.append(
            row
            | {
                "name": account.get("name") or row["deleted_label"] or "Deleted subaccount",
                "public_id": account.get("public_id", ""),
                "state": _state(account, master),
            }
        )
    return named


def _state(account: dict, master: Account) -> str:
    """Still the agency's ("current": its page can be opened), renewed away, or deleted."""
    if account.get("parent_id") == master.pk:
        return "current"
    return "renewed" if account else "deleted"


def top_subaccounts(master: Account, span: DateRange, *, limit: int = 10) -> list[dict]:
    """The subaccounts that sent most in the range (three queries at most: whether the preset's
    trailing figures are built, the figures, then the names)."""
    reach = _trailing_reach(span)
    if reach is None:
        rows = list(_by_subaccount(master, span).filter(sent__gt=0)[:limit])
    else:
        rows = list(_by_subaccount_from_trailing(master, span, reach, limit=limit))
    return _named(rows, master)


def _trailing_reach(span: DateRange) -> rollup.Trailing | None:
    """For a preset range ending today, how far its per-account figures (TrailingUsage) reach, when the
    rollup has built them since the last midnight (UTC); else None, and the range is read from its hours."""
    if span.preset not in PRESET_DAYS or span.last != today_utc() or span.days not in rollup.TRAILING_DAYS:
        return None
    return rollup.trailing_for(span.last)


COUNTER_FIGURES = {
    "sent": ("sent",),
    "delivered": ("delivered",),
    "bounced": ("hard_bounced", "soft_bounced"),
    "complained": ("complained",),
    "rejected": ("rejected",),
    "failed": ("failed",),
    "opened": ("unique_opens",),
    "clicked": ("unique_clicks",),
    "unsubscribed": ("unsubs",),
}  # FIGURES from the counters they add up, as SUMS defines them


def _by_subaccount_from_trailing(
    master: Account, span: DateRange, reach: rollup.Trailing, *, limit: int | None
):
    """`_by_subaccount` for a preset range ending today: each account's figures from TrailingUsage (its
    closed days and today's hours folded in so far) plus its hours since the last fold, added up in one
    query.

    With a `limit` (the top), the ranking is made on `sent` alone, and only among the accounts that can
    be in it: the trailing top `limit` and those that sent since the fold, in the hour or so since (an
    account that did not keeps its trailing rank, so nobody else can pass them); the other figures are
    then added up for the winners only. Without one (the CSV), every account's figures, in the same order."""
    counters = [counter for names in COUNTER_FIGURES.values() for counter in names]
    q = connection.ops.quote_name
    today_hours = (
        Usage.objects.filter(
            billed_to=master, window=Usage.Window.HOUR, start__gte=reach.hours_until, start__lt=span.end
        )
        .exclude(account_id=master.pk)
        .annotate(deleted_label=rollup.group_label())
        .order_by()
    )
    trailing = (
        TrailingUsage.objects.filter(billed_to=master, days=span.days, through=reach.through)
        .exclude(account_id=master.pk)
        .order_by()
    )
    summed = ", ".join(f"SUM({q(name)}) AS {q(name)}" for name in counters)
    listed = ", ".join(q(name) for name in counters)
    hours_sql, hours_params = today_hours.values(
        "account_id", "deleted_label", *counters
    ).query.sql_with_params()
    rows_sql, rows_params = trailing.values("account_id", "account_label", *counters).query.sql_with_params()

    def both(hours_filter: str = "", rows_filter: str = "") -> str:
        return (
            f"SELECT account_id, deleted_label, {summed} FROM ("  # nosec B608: our compiled queries and names
            f"SELECT account_id, deleted_label, {listed} FROM ({hours_sql}) h{hours_filter}"
            f" UNION ALL SELECT account_id, account_label, {listed} FROM ({rows_sql}) t{rows_filter}"
            f") parts GROUP BY account_id, deleted_label"
        )

    order = f" ORDER BY {q('sent')} DESC, account_id, deleted_label"
    if limit is None:
        sql = both() + order
        params = [*hours_params, *rows_params]
    else:
        sql, params = _top_from_trailing(
            recent=today_hours, kept=trailing, hours=(hours_sql, hours_params), rows=(rows_sql, rows_params),
            counters=counters, limit=limit,
        )  # fmt: skip
    # nosec B608 (above): built from our models' compiled queries and names; every value is a parameter.
    # The whole agency (a CSV) is read through a server-side cursor on PostgreSQL, a chunk at a time.
    if limit is None:
        yield from _figure_rows(connection.chunked_cursor(), sql, params)
        return
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # The planner's cost for this query passes jit_above_cost, and compiling it took ~60 ms of a
            # query of ~200 (measured at 100,000 subaccounts): a dashboard query gains nothing from JIT.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
        rows = list(_figure_rows(connection.cursor(), sql, params))
    yield from rows


def _top_from_trailing(*, recent, kept, hours, rows, counters: list[str], limit: int) -> tuple[str, list]:
    """The top `limit` of a range from TrailingUsage (`kept`) and the hours since its last fold
    (`recent`), as one statement, then the winners' every figure.

    Only accounts that can still be in the top are added up. The kept top `limit`'s lowest figure is a
    floor for the final top (those accounts keep at least what they have), so an account whose kept
    figure plus the most anyone sent since stays below it cannot get in: the candidates are the kept
    rows from that figure up (a range of the by-sent index, with their recent hours) and the recent
    senders without a kept row whose recent hours alone reach the floor. With the open hour's few
    hundred a sender against 90 days' thousands, that is a few dozen rows instead of every recent
    sender. Live accounts match on their id, deleted ones on their kept label, in separate branches: an
    OR between the two would defeat the indexes. `hours` and `rows` are the recent hours' and the kept
    rows' compiled queries, with every counter; the statement's values are all parameters."""
    q = connection.ops.quote_name
    sent = q("sent")
    recent_sql, recent_params = (
        recent.values("account_id", "deleted_label").annotate(sent=Sum("sent")).query.sql_with_params()
    )
    kept_sql, kept_params = kept.values("account_id", "account_label", "sent").query.sql_with_params()
    hours_sql, hours_params = hours
    rows_sql, rows_params = rows
    live, gone = "w.account_id IS NOT NULL", "w.account_id IS NULL"
    added = ", ".join(f"x.{q(name)}" for name in counters)
    summed = ", ".join(f"SUM({q(name)}) AS {q(name)}" for name in counters)
    floor = "(SELECT floor FROM bar)"
    band = f"{floor} - (SELECT COALESCE(MAX({sent}), 0) FROM recent)"  # nosec B608: a CTE and a column of ours
    # nosec B608 (all below): our models' compiled queries, CTE names and column names only
    bar = (
        f"SELECT COALESCE(CASE WHEN COUNT(*) = {int(limit)} THEN MIN({sent}) END, 0) AS floor"  # nosec B608
        f" FROM (SELECT {sent} FROM kept ORDER BY {sent} DESC LIMIT {int(limit)}) top"
    )
    candidates = (
        f"SELECT k.account_id, k.account_label AS deleted_label, k.{sent} + COALESCE(r.{sent}, 0) AS {sent}"  # nosec B608
        f" FROM kept k LEFT JOIN recent r ON r.account_id = k.account_id"
        f" WHERE k.account_id IS NOT NULL AND k.{sent} >= {band}"
        f" UNION ALL SELECT k.account_id, k.account_label, k.{sent} + COALESCE(r.{sent}, 0)"
        f" FROM kept k LEFT JOIN recent r ON r.account_id IS NULL AND r.deleted_label = k.account_label"
        f" WHERE k.account_id IS NULL AND k.{sent} >= {band}"
        f" UNION ALL SELECT r.account_id, r.deleted_label, r.{sent} FROM recent r"
        f" WHERE r.account_id IS NOT NULL AND r.{sent} >= {floor}"
        f" AND NOT EXISTS (SELECT 1 FROM kept k WHERE k.account_id = r.account_id)"
        f" UNION ALL SELECT r.account_id, r.deleted_label, r.{sent} FROM recent r"
        f" WHERE r.account_id IS NULL AND r.{sent} >= {floor} AND NOT EXISTS"
        f" (SELECT 1 FROM kept k WHERE k.account_id IS NULL AND k.account_label = r.deleted_label)"
    )
    winners = (
        f"SELECT account_id, deleted_label FROM candidates WHERE {sent} > 0"  # nosec B608
        f" ORDER BY {sent} DESC, account_id, deleted_label LIMIT {int(limit)}"
    )
    parts = " UNION ALL ".join(
        f"SELECT w.account_id, w.deleted_label, {added} FROM winners w JOIN ({sql}) x ON {on} WHERE {which}"  # nosec B608
        for sql, on, which in (
            (hours_sql, "x.account_id = w.account_id", live),
            (hours_sql, "x.account_id IS NULL AND x.deleted_label = w.deleted_label", gone),
            (rows_sql, "x.account_id = w.account_id", live),
            (rows_sql, "x.account_id IS NULL AND x.account_label = w.deleted_label", gone),
        )
    )
    sql = (
        f"WITH recent AS MATERIALIZED ({recent_sql}), kept AS NOT MATERIALIZED ({kept_sql}),"  # nosec B608
        f" bar AS MATERIALIZED ({bar}), candidates AS ({candidates}), winners AS ({winners})"
        f" SELECT account_id, deleted_label, {summed} FROM ({parts}) parts"
        f" GROUP BY account_id, deleted_label ORDER BY {sent} DESC, account_id, deleted_label"
    )
    params = [*recent_params, *kept_params, *hours_params, *hours_params, *rows_params, *rows_params]
    return sql, params


def _figure_rows(cursor, sql: str, params: list) -> Iterator[dict]:
    """Each (account, deleted label) row of `sql` as FIGURES."""
    with cursor:
        cursor.execute(sql, params)
        columns = [column[0] for column in cursor.description]
        while chunk := cursor.fetchmany(2000):
            for values in chunk:
                row = dict(zip(columns, values, strict=True))
                yield {
                    "account_id": row["account_id"],
                    "deleted_label": row["deleted_label"],
                    **{
                        figure: sum(row[name] or 0 for name in names)
                        for figure, names in COUNTER_FIGURES.items()
                    },
                }


def daily_csv(master: Account, span: DateRange) -> Iterator[str]:
    """The agency's figures per day, as CSV lines."""
    rows = ([day["day"], *(day[name] for name in FIGURES)] for day in agency_daily(master, span))
    return csv_lines(["day", *FIGURES], rows)


def subaccounts_csv(master: Account, span: DateRange) -> Iterator[str]:
    """Every subaccount billed to the agency that counted anything in the range, with its figures, as CSV
    lines read in chunks (a range of 100,000 subaccounts is never held in memory at once)."""
    header = ["first_day", "last_day", "subaccount_id", "name", *FIGURES]
    reach = _trailing_reach(span)
    found = (
        _by_subaccount(master, span).iterator(chunk_size=2000)
        if reach is None
        else _by_subaccount_from_trailing(master, span, reach, limit=None)
    )
    chunks = batched(found, 2000)
    rows = (
        [
            span.first.isoformat(),
            span.last.isoformat(),
            row["public_id"],
            row["name"],
            *(row[name] for name in FIGURES),
        ]
        for chunk in chunks
        for row in _named(list(chunk), master)
    )
    return csv_lines(header, rows)
