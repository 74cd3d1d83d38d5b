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

Days are UTC days. A page whose days start at another zone's midnight cannot use these rows (a UTC day
row cannot be split at a local midnight): `covers(span_start)` says whether a range's days line up, and
readers fall back to the hours when they do not.
"""

from __future__ import annotations

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


@transaction.atomic(durable=True)
def roll_up_closed_days(*, now: datetime | None = None, lookback_days: int = LOOKBACK_DAYS) -> int:
    """Roll up every closed UTC day of the last `lookback_days` not rolled up yet, for every bill at once
    (one INSERT … SELECT over their hours), and mark them. Returns how many days it marked; 0 when there
    was nothing to do, so running it again (or twice at once) changes nothing."""
    today = today_utc(now)
    first = today - timedelta(days=lookback_days)
    wanted = [first + timedelta(days=n) for n in range(lookback_days)]
    _lock_days(
        [today - timedelta(days=n) for n in range(1, max(lookback_days, *TRAILING_DAYS) + 1)], shared=False
    )
    done = set(UsageRollup.objects.filter(day__gte=first, day__lt=today).values_list("day", flat=True))
    pending = [day for day in wanted if day not in done]
    if pending:
        _roll_up_days(pending, today)
    _build_trailing(today)
    return len(pending)


def _roll_up_days(pending: list[date], today: date) -> None:
    # Rows left by an interrupted run cannot exist (rows and marks commit together); this keeps the
    # rollup idempotent even so.
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


def _group_label():
    """How hourly rows group into one account: by account, and deleted ones by their kept label."""
    return Case(When(account_id__isnull=True, then=F("account_label")), default=Value(""))


def _build_trailing(today: date) -> None:
    """Each account's figures over the closed days of every preset range ending today, once per day."""
    through = today - timedelta(days=1)
    if UsageRollup.objects.filter(day=through, trailing_built=True).exists():
        return
    TrailingUsage.objects.all().delete()  # earlier days' ranges: only the latest is read
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
                group_label=_group_label(),
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
    UsageRollup.objects.update_or_create(day=through, defaults={"trailing_built": True})


def trailing_through(today: date) -> date | None:
    """The day TrailingUsage runs to, if it was built for ranges ending `today` (one query); else None."""
    through = today - timedelta(days=1)
    return through if UsageRollup.objects.filter(day=through, trailing_built=True).exists() else None


def keep_in_step(*, account_id: int, billed_to_id: int, start: datetime, changes: dict[str, int]) -> None:
    """Apply `changes` (counter: delta, negative to give back) made to an account's hourly window
    starting at `start` to its day's row and to the account's trailing ranges that count that day, when
    they are built. The caller must call this in the same transaction as, and after, its write to the
    hour (see the module's note on exactness)."""
    day = start.astimezone(timezone.UTC).date()
    changes = {name: n for name, n in changes.items() if n}
    if not changes or day >= today_utc():
        return  # the open day is read from its hours
    _lock_days([day], shared=True)
    if not UsageRollup.objects.filter(day=day).exists():
        return  # the rollup, when it comes, reads the hour as it is now
    row = {"billed_to_id": billed_to_id, "day": day}
    bump = {name: F(name) + n for name, n in changes.items()}
    if not DailyUsage.objects.filter(**row).update(**bump):
        # The bill had nothing else that day: its row is created now (racing creators do not fail).
        DailyUsage.objects.bulk_create([DailyUsage(**row)], ignore_conflicts=True)
        DailyUsage.objects.filter(**row).update(**bump)
    through = (
        UsageRollup.objects.filter(trailing_built=True).order_by("-day").values_list("day", flat=True).first()
    )
    for days in TRAILING_DAYS:
        if through is None or not through - timedelta(days=days - 2) <= day <= through:
            continue  # that range does not count this day
        trailing = {"account_id": account_id, "billed_to_id": billed_to_id, "days": days, "through": through}
        if not TrailingUsage.objects.filter(**trailing).update(**bump):
            # A second row for the account is harmless: readers add an account's rows up.
            TrailingUsage.objects.bulk_create([TrailingUsage(**trailing)])
            TrailingUsage.objects.filter(**trailing).update(**bump)


def rolled_up_days(first: date, last: date) -> set[date]:
    """The days from `first` to `last` whose day rows can be read (one query)."""
    return set(UsageRollup.objects.filter(day__gte=first, day__lte=last).values_list("day", flat=True))
