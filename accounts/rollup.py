"""The daily rollup: each bill's hourly Usage windows added up per closed UTC day (DailyUsage), so the
overview's chart over 90 days reads 90 rows instead of every hour every subaccount sent in.

Why a rollup after the fact and not a day counter bumped on every send: the accept path stays two
conditional UPDATEs (the hour and the month), with no third hot row to lock. The open day (today, UTC)
is never rolled up, so readers take it from its hours.

Exactness: a day is marked (UsageRollup) in the same transaction as its rows are written, and readers use
the rows only for marked days. The few writes that reach a closed day's hour afterwards (a cancelled
scheduled send giving its quota back, an outcome recorded with an earlier time) go through quota.py,
which calls `keep_in_step` in the same transaction as the hour's write. Rollup and late writers meet on
a per-day lock (a PostgreSQL transaction advisory lock: the rollup's is exclusive and taken before it
reads the hours, a writer's is shared and taken after its hourly write), so a late write is counted
exactly once: by the rollup if it committed first, else added to the day's row. SQLite has one writer at
a time, which gives the same order without the lock.

Today's closed hours are folded into the trailing figures every hour, under the same kind of lock (on
today), so the overview's top reads only the hours since the last fold: the open hour's senders, not
every account that sent today. Writes to the open hour need nothing (it is never folded; the fold leaves
FOLD_GRACE after an hour closes, for a send counted into it as it closed to commit).

Days are UTC days. A page whose days start at another zone's midnight cannot use these rows (a UTC day
row cannot be split at a local midnight): `covers(span_start)` says whether a range's days line up, and
readers fall back to the hours when they do not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db import connection, transaction
from django.db.models import Case, DateField, F, PositiveSmallIntegerField, Sum, Value, When
from django.db.models.functions import TruncDate
from django.utils import timezone

from .models import DailyUsage, TrailingUsage, Usage, UsageRollup

# Every counter of an hourly Usage window, rolled up as it is.
COUNTERS = (
    "sent", "rejected", "failed", "delivered", "hard_bounced", "soft_bounced", "complained",
    "opens", "unique_opens", "clicks", "unique_clicks", "unsubs",
)  # fmt: skip
# The presets whose per-account figures are kept over their closed days (reports.PRESET_DAYS).
TRAILING_DAYS = (7, 30, 90)
# How far back the periodic rollup looks on its first run (older ranges are read from their hours).
LOOKBACK_DAYS = 400
# How long after an hour closes its rows are folded into the trailing figures: a write counted into the
# hour as it closed (a transaction of milliseconds) has long committed by then.
FOLD_GRACE = timedelta(minutes=5)
# The first key of the two-key advisory locks, so these never collide with another feature's locks.
LOCK_NAMESPACE = 0x55534147  # "USAG"


def today_utc(now: datetime | None = None) -> date:
    return (now or timezone.now()).astimezone(timezone.UTC).date()


def covers(span_start: datetime) -> bool:
    """Whether days starting at `span_start`'s midnight are UTC days, which the day rows count."""
    return span_start.utcoffset() == timedelta(0)


def _lock_days(days: list[date], *, shared: bool) -> None:
    if connection.vendor != "postgresql":
        return  # SQLite: one writer at a time already orders the rollup and late writers
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    with connection.cursor() as cursor:
        for day in sorted(days):  # always in the same order: two rollups never deadlock
            cursor.execute(f"SELECT {function}(%s, %s)", [LOCK_NAMESPACE, day.toordinal()])


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.UTC)


def _open_hour(now: datetime | None = None) -> datetime:
    """The start of the hour being counted now: its rows are never folded."""
    return (now or timezone.now()).astimezone(timezone.UTC).replace(minute=0, second=0, microsecond=0)


@transaction.atomic(durable=True)
def roll_up_closed_days(*, now: datetime | None = None, lookback_days: int = LOOKBACK_DAYS) -> int:
    """Roll up every closed UTC day of the last `lookback_days` not rolled up yet, for every bill at once
    (one INSERT … SELECT over their hours), and mark them; then bring the trailing figures up to the
    last closed hour. Returns how many days it marked; 0 when there was nothing to do, so running it
    again (or twice at once) changes nothing."""
    now = now or timezone.now()
    today = today_utc(now)
    first = today - timedelta(days=lookback_days)
    wanted = [first + timedelta(days=n) for n in range(lookback_days)]
    _lock_days(
        [today - timedelta(days=n) for n in range(max(lookback_days, *TRAILING_DAYS) + 1)], shared=False
    )
    done = set(UsageRollup.objects.filter(day__gte=first, day__lt=today).values_list("day", flat=True))
    pending = [day for day in wanted if day not in done]
    if pending:
        _roll_up_days(pending, today)
    _build_trailing(today)
    _fold_closed_hours(today, until=max(_open_hour(now - FOLD_GRACE), _day_start(today)))
    return len(pending)


def _roll_up_days(pending: list[date], today: date) -> None:
    # Rows left by an interrupted run cannot exist (rows and marks commit together); this keeps the
    # rollup idempotent even so, and replaces the partial row the hourly fold kept while the day was today.
    DailyUsage.objects.filter(day__in=pending).delete()
    hours = (
        Usage.objects.filter(
            window=Usage.Window.HOUR, start__gte=_day_start(pending[0]), start__lt=_day_start(today)
        )
        .annotate(day=TruncDate("start", tzinfo=timezone.UTC))
        .filter(day__in=pending)
        .values("billed_to_id", "day")
        .annotate(**{f"total_{name}": Sum(name) for name in COUNTERS})
        .order_by()
    )
    select_sql, params = hours.query.sql_with_params()
    columns = ", ".join(connection.ops.quote_name(name) for name in ("billed_to_id", "day", *COUNTERS))
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {DailyUsage._meta.db_table} ({columns}) {select_sql}", params)  # nosec B608: only our model's names; values are parameters
    UsageRollup.objects.bulk_create([UsageRollup(day=day) for day in pending])


def group_label():
    """How hourly rows group into one account: by account, and deleted ones by their kept label."""
    return Case(When(account_id__isnull=True, then=F("account_label")), default=Value(""))


def _build_trailing(today: date) -> None:
    """Each account's figures over the closed days of every preset range ending today, once per day."""
    through = today - timedelta(days=1)
    if UsageRollup.objects.filter(day=through, trailing_built=True).exists():
        return
    TrailingUsage.objects.all().delete()  # earlier days' ranges: only the latest is read
    DailyUsage.objects.filter(day=today).delete()  # folded afresh from midnight, with the trailing figures
    columns = ["account_id", "billed_to_id", "account_label", "days", "through", *COUNTERS]
    quoted = ", ".join(connection.ops.quote_name(name) for name in columns)
    for days in TRAILING_DAYS:
        hours = (
            Usage.objects.filter(
                window=Usage.Window.HOUR,
                start__gte=_day_start(today - timedelta(days=days - 1)),
                start__lt=_day_start(today),
            )
            .annotate(
                group_label=group_label(),
                preset=Value(days, output_field=PositiveSmallIntegerField()),
                through_day=Value(through, output_field=DateField()),
            )
            .values("account_id", "billed_to_id", "group_label", "preset", "through_day")
            .annotate(**{f"total_{name}": Sum(name) for name in COUNTERS})
            .order_by()
        )
        select_sql, params = hours.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {TrailingUsage._meta.db_table} ({quoted}) {select_sql}", params)  # nosec B608: only our model's names; values are parameters
    UsageRollup.objects.update_or_create(
        day=through, defaults={"trailing_built": True, "hours_folded_until": _day_start(today)}
    )


def _fold_closed_hours(today: date, *, until: datetime) -> None:
    """Add today's hours from the last fold up to `until` to every account's trailing figures, in place
    (an UPDATE … FROM for the accounts that have a row for a preset, an INSERT for those that do not),
    and to each bill's row for today (one upsert).
    The caller holds today's lock exclusively, so late writers to those hours wait and then add to the
    figures themselves (keep_in_step)."""
    mark = UsageRollup.objects.filter(day=today - timedelta(days=1), trailing_built=True).first()
    folded = mark and (mark.hours_folded_until or _day_start(today))
    if not mark or folded >= until:
        return
    folding = Usage.objects.filter(window=Usage.Window.HOUR, start__gte=folded, start__lt=until)
    hours = (
        folding.annotate(group_label=group_label())
        .values("account_id", "billed_to_id", "group_label")
        .annotate(**{f"total_{name}": Sum(name) for name in COUNTERS})
        .order_by()
    )
    hours_sql, params = hours.query.sql_with_params()
    table, q = TrailingUsage._meta.db_table, connection.ops.quote_name
    # An account's row is found by its id, a deleted account's by its kept label: two conditions, each
    # a plain equality the planner can hash or index (an OR of the two would compare every pair of rows).
    matches = (
        "t.billed_to_id = h.billed_to_id AND t.account_id = h.account_id",
        "t.billed_to_id = h.billed_to_id AND t.account_id IS NULL AND h.account_id IS NULL"
        " AND t.account_label = h.group_label",
    )
    added = ", ".join(f"{q(name)} = t.{q(name)} + h.total_{name}" for name in COUNTERS)
    columns = ", ".join(
        q(name) for name in ("account_id", "billed_to_id", "account_label", "days", "through", *COUNTERS)
    )
    presets = " UNION ALL ".join(f"SELECT {int(days)} AS days" for days in TRAILING_DAYS)
    missing = " AND ".join(
        f"NOT EXISTS (SELECT 1 FROM {table} AS t WHERE t.days = p.days AND t.through = %s AND {match})"  # nosec B608
        for match in matches
    )
    with connection.cursor() as cursor:
        # nosec B608 (all): only our models' names and compiled queries; every value is a parameter
        for match in matches:
            cursor.execute(
                f"UPDATE {table} AS t SET {added} FROM ({hours_sql}) AS h"  # nosec B608
                f" WHERE t.through = %s AND {match}",
                [*params, mark.day],
            )
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT h.account_id, h.billed_to_id, h.group_label,"  # nosec B608
            f" p.days, %s, {', '.join(f'h.total_{name}' for name in COUNTERS)} FROM ({hours_sql}) AS h"
            f" CROSS JOIN ({presets}) AS p WHERE {missing}",
            [mark.day, *params, mark.day, mark.day],
        )
        # Today's row of each bill, which readers add to the hours since the fold; the rollup replaces it
        # with the whole day's once the day closes.
        by_bill = (
            folding.values("billed_to_id")
            .annotate(**{f"total_{name}": Sum(name) for name in COUNTERS})
            .order_by()
        )
        bill_sql, bill_params = by_bill.query.sql_with_params()
        day_table = DailyUsage._meta.db_table
        day_columns = ", ".join(q(name) for name in ("billed_to_id", "day", *COUNTERS))
        cursor.execute(
            f"INSERT INTO {day_table} ({day_columns}) SELECT b.billed_to_id, %s,"  # nosec B608
            f" {', '.join(f'b.total_{name}' for name in COUNTERS)} FROM ({bill_sql}) AS b WHERE true"
            f" ON CONFLICT (billed_to_id, day) DO UPDATE SET"
            f" {', '.join(f'{q(name)} = {day_table}.{q(name)} + excluded.{q(name)}' for name in COUNTERS)}",
            [today, *bill_params],
        )
    UsageRollup.objects.filter(pk=mark.pk).update(hours_folded_until=until)


@dataclass(frozen=True)
class Trailing:
    """How far the trailing figures for ranges ending today reach: the closed days through `through`,
    and today's hours before `hours_until`."""

    through: date
    hours_until: datetime


def trailing_for(today: date) -> Trailing | None:
    """The trailing figures' reach, if they were built for ranges ending `today` (one query); else None."""
    through = today - timedelta(days=1)
    mark = UsageRollup.objects.filter(day=through, trailing_built=True).values("hours_folded_until").first()
    if mark is None:
        return None
    return Trailing(through=through, hours_until=mark["hours_folded_until"] or _day_start(today))


def keep_in_step(*, account_id: int, billed_to_id: int, start: datetime, changes: dict[str, int]) -> None:
    """Apply `changes` (counter: delta, negative to give back) made to an account's hourly window
    starting at `start` to whatever already counted that hour: its day's row and the account's trailing
    ranges that count that day (for an hour of today, once it was folded in). The caller must call this
    in the same transaction as, and after, its write to the hour (see the module's note on exactness).
    A write to the open hour costs nothing here."""
    day = start.astimezone(timezone.UTC).date()
    changes = {name: n for name, n in changes.items() if n}
    today = today_utc()
    if not changes or day > today or start >= _open_hour():
        return  # the open hour is read from its rows
    _lock_days([day], shared=True)
    if day == today:
        reach = trailing_for(today)
        if reach is None or start >= reach.hours_until:
            return  # the fold, when it comes, reads the hour as it is now
        through, presets = reach.through, TRAILING_DAYS
    else:
        if not UsageRollup.objects.filter(day=day).exists():
            return  # the rollup, when it comes, reads the hour as it is now
        through = (
            UsageRollup.objects.filter(trailing_built=True)
            .order_by("-day")
            .values_list("day", flat=True)
            .first()
        )
        presets = [
            days for days in TRAILING_DAYS if through and through - timedelta(days=days - 2) <= day <= through
        ]
    bump = {name: F(name) + n for name, n in changes.items()}
    _add_to(DailyUsage, {"billed_to_id": billed_to_id, "day": day}, bump)
    for days in presets:
        trailing = {"account_id": account_id, "billed_to_id": billed_to_id, "days": days, "through": through}
        _add_to(TrailingUsage, trailing, bump)


def _add_to(model, row: dict, bump: dict) -> None:
    """Apply `bump` to the one row of `model` that `row` names, creating it first when the bill or account
    had nothing else there (racing creators do not fail: both models allow one such row)."""
    if not model.objects.filter(**row).update(**bump):
        model.objects.bulk_create([model(**row)], ignore_conflicts=True)
        model.objects.filter(**row).update(**bump)


def day_rows_reach(first: date, last: date) -> tuple[set[date], datetime | None]:
    """For days from `first` to `last`: those rolled up, whose day rows can be read, and, when today is
    among them, the instant today's row counts hours up to (None: today has no row yet). One query."""
    today = today_utc()
    marks = UsageRollup.objects.filter(day__gte=min(first, today - timedelta(days=1)), day__lte=last)
    rolled, folded_until = set(), None
    for day, trailing_built, hours_folded_until in marks.values_list(
        "day", "trailing_built", "hours_folded_until"
    ):
        if day >= first:
            rolled.add(day)
        if day == today - timedelta(days=1) and trailing_built and first <= today <= last:
            folded_until = hours_folded_until
    return rolled, folded_until
