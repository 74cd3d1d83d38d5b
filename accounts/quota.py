"""The quota meter: an account's allowance per calendar month and per hour (UTC), counted in Usage.

Reservation is one conditional upsert per window (`sent = sent + n WHERE sent <= limit - n`, the row
created by the window's first send), hourly then monthly, in the caller's transaction (raw SQL for its
RETURNING: the month's new count tells the accept path whether an alert threshold was crossed without
another query). The database re-checks the condition on the row it locks, so concurrent senders can
never push a window past its limit: no read-then-write, no Python lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from . import rollup
from .errors import QuotaExceeded
from .models import Account, Usage

HOURLY_REASON = "hourly-quota-exhausted"
MONTHLY_REASON = "monthly-limit-reached"


def month_start(moment: datetime | None = None) -> datetime:
    """The first instant of `moment`'s calendar month in UTC: where its monthly Usage window starts."""
    moment = moment or timezone.now()
    return moment.astimezone(timezone.UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def hour_start(moment: datetime | None = None) -> datetime:
    """The first instant of `moment`'s hour in UTC: where its hourly Usage window starts."""
    moment = moment or timezone.now()
    return moment.astimezone(timezone.UTC).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class QuotaWindow:
    """One of the allowances a send must fit in: this hour's or this month's."""

    kind: str  # Usage.Window
    start: datetime
    limit: int | None  # None: no limit in this window
    reason: str  # Mandrill's word when a send does not fit


def quota_windows(account: Account, now: datetime) -> list[QuotaWindow]:
    """Hourly first: a burst is refused before it is counted against the month."""
    return [
        QuotaWindow(Usage.Window.HOUR, hour_start(now), account.hourly_limit, HOURLY_REASON),
        QuotaWindow(Usage.Window.MONTH, month_start(now), account.monthly_limit, MONTHLY_REASON),
    ]


# One statement whether or not the window's row exists yet: a first send of the hour or month creates it
# counted (if n fits at all), a later one adds to it if it stays within the limit. The database re-checks
# the ON CONFLICT condition on the row it locks, so concurrent first sends are exact too. Every counter
# column is listed: their defaults are Django's, not the database's.
RESERVE_SQL = (
    'INSERT INTO accounts_usage (account_id, billed_to_id, account_label, "window", start, {counters}) '  # nosec B608: our own column names; every value is a parameter
    "SELECT %(account)s, %(billed_to)s, %(label)s, %(window)s, %(start)s, {values} "
    "WHERE CAST(%(limit)s AS INTEGER) IS NULL OR %(n)s <= CAST(%(limit)s AS INTEGER) "
    'ON CONFLICT (account_id, billed_to_id, "window", start) DO UPDATE SET sent = accounts_usage.sent + %(n)s '
    "WHERE CAST(%(limit)s AS INTEGER) IS NULL OR accounts_usage.sent <= CAST(%(limit)s AS INTEGER) - %(n)s "
    "RETURNING sent"
).format(
    counters=", ".join(rollup.COUNTERS),
    values=", ".join("%(n)s" if name == "sent" else "0" for name in rollup.COUNTERS),
)


def _bump(account: Account, window: str, start: datetime, limit: int | None, n: int) -> int | None:
    """Add n to one window (created on its first send) if it stays within limit: the window's new count,
    or None if it would not fit. One statement: the row lock makes concurrent bumps queue up."""
    start_value = Usage._meta.get_field("start").get_db_prep_value(start, connection)  # as the ORM stores it
    params = {"n": n, "account": account.pk, "billed_to": account.billing_account_id, "window": window,
              "start": start_value, "limit": limit, "label": str(account)}  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(RESERVE_SQL, params)
        row = cursor.fetchone()
    return row[0] if row else None


def reserve_quota(*, account: Account, n: int, now: datetime | None = None) -> int:
    """Count `n` sends for `account` if they fit in this hour's and this month's allowance, and return
    the month's new count. Otherwise raise QuotaExceeded (reason: Mandrill's words); the caller's
    transaction must then roll back, which undoes an hourly count made before the month refused (the
    accept path's does). The limits are read from `account`, so pass a fresh row: a lowered limit
    applies to the next send. A subaccount's usage is billed to its master (Usage.billed_to).

    Two statements, one per window, whether or not the windows' rows exist yet."""
    now = now or timezone.now()
    month_count = 0
    for window in quota_windows(account, now):
        count = _bump(account, window.kind, window.start, window.limit, n) if n > 0 else 0
        if count is None:
            what = "hourly" if window.kind == Usage.Window.HOUR else "monthly"
            raise QuotaExceeded(
                f"{account.name} has reached its {what} limit of {window.limit} emails; "
                f"these {n} would go over it.",
                reason=window.reason,
            )
        if window.kind == Usage.Window.HOUR and n > 0:
            # Only a send counted at an earlier time (a backfill) reaches a closed day: a no-op otherwise.
            rollup.keep_in_step(
                account_id=account.pk,
                billed_to_id=account.billing_account_id,
                start=window.start,
                changes={"sent": n},
            )
        month_count = count
    return month_count


def release_quota(*, account: Account, n: int, counted_at: datetime) -> None:
    """Give back `n` sends counted at `counted_at` (a scheduled send cancelled before it left): the hour
    and the month they were counted in, whatever the time now. Never below zero. An hour in a day already
    rolled up gives its sends back in the day's row too, in the same transaction."""
    with transaction.atomic():
        for kind, start in (
            (Usage.Window.HOUR, hour_start(counted_at)),
            (Usage.Window.MONTH, month_start(counted_at)),
        ):
            given_back = Usage.objects.filter(
                account=account,
                billed_to_id=account.billing_account_id,
                window=kind,
                start=start,
                sent__gte=n,
            ).update(sent=F("sent") - n)
            if kind == Usage.Window.HOUR and given_back:
                rollup.keep_in_step(
                    account_id=account.pk,
                    billed_to_id=account.billing_account_id,
                    start=start,
                    changes={"sent": -n},
                )


OUTCOMES = (
    "rejected", "failed", "delivered", "hard_bounced", "soft_bounced", "complained",
    "opens", "unique_opens", "clicks", "unique_clicks", "unsubs",
)  # fmt: skip


def count_outcome(*, account: Account, outcome: str, n: int, now: datetime | None = None) -> None:
    """Count `n` emails with `outcome` in the account's hourly window, for the dashboards' charts and the
    reputation (they never count message or event rows). Runs outside the refused send's transaction."""
    count_outcomes(account=account, counts={outcome: n}, now=now)


def count_outcomes(*, account: Account, counts: dict[str, int], now: datetime | None = None) -> None:
    """`count_outcome` for several outcomes at once (an open that is also the message's first), in the
    same statement."""
    counts = {outcome: n for outcome, n in counts.items() if n > 0}
    if not counts:
        return
    unknown = set(counts) - set(OUTCOMES)
    if unknown:
        raise ValueError(f"Usage counts {', '.join(OUTCOMES)}, not {', '.join(sorted(unknown))}.")
    start = hour_start(now)
    row = {
        "account": account,
        "billed_to_id": account.billing_account_id,
        "window": Usage.Window.HOUR,
        "start": start,
    }
    bump = {outcome: F(outcome) + n for outcome, n in counts.items()}
    if start >= hour_start():
        _count_in_hour(account, row, bump)
        return
    # An outcome recorded with an earlier time may land in a day already rolled up: the hour and the
    # day's row change in one transaction.
    with transaction.atomic():
        _count_in_hour(account, row, bump)
        rollup.keep_in_step(
            account_id=account.pk, billed_to_id=account.billing_account_id, start=start, changes=counts
        )


def _count_in_hour(account: Account, row: dict, bump: dict) -> None:
    # The hour's row exists after its first count: one UPDATE then (the tracking endpoints count on every
    # hit); otherwise create it (racing creators do not fail) and count.
    if not Usage.objects.filter(**row).update(**bump):
        Usage.objects.bulk_create([Usage(account_label=str(account), **row)], ignore_conflicts=True)
        Usage.objects.filter(**row).update(**bump)


def sent_this_month(account: Account, now: datetime | None = None) -> int:
    row = (
        Usage.objects.filter(
            account=account,
            billed_to_id=account.billing_account_id,
            window=Usage.Window.MONTH,
            start=month_start(now),
        )
        .values_list("sent", flat=True)
        .first()
    )
    return row or 0
