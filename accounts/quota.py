"""The quota meter: an account's allowance per calendar month and per hour (UTC), counted in Usage.

Reservation is one conditional UPDATE per window, `sent = sent + n WHERE sent <= limit - n`, hourly then
monthly, in the caller's transaction. PostgreSQL re-checks the condition on the row it locks, so
concurrent senders can never push a window past its limit: no read-then-write, no Python lock.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .errors import QuotaExceeded
from .models import Account, Usage
from .selectors import hour_start, month_start

HOURLY_REASON = "hourly-quota-exhausted"
MONTHLY_REASON = "monthly-limit-reached"


def _windows(account: Account, now: datetime) -> list[tuple[str, datetime, int | None, str]]:
    return [
        (Usage.Window.HOUR, hour_start(now), account.hourly_limit, HOURLY_REASON),
        (Usage.Window.MONTH, month_start(now), account.monthly_limit, MONTHLY_REASON),
    ]


def reserve_quota(*, account: Account, n: int, now: datetime | None = None) -> None:
    """Count `n` sends for `account` if they fit in this hour's and this month's allowance, else count
    nothing and raise QuotaExceeded (reason: Mandrill's words). The limits are read from `account`, so
    pass a fresh row: a lowered limit applies to the next send. A subaccount's usage is billed to its
    master (Usage.billed_to)."""
    if n <= 0:
        return
    now = now or timezone.now()
    windows = _windows(account, now)
    label = str(account)
    # The window rows exist after this; racing creators do not fail.
    Usage.objects.bulk_create(
        [
            Usage(
                account=account,
                billed_to_id=account.billing_account_id,
                account_label=label,
                window=w,
                start=s,
            )
            for w, s, _, _ in windows
        ],
        ignore_conflicts=True,
    )
    with transaction.atomic():  # a savepoint: the hourly count is undone when the month refuses
        for window, start, limit, reason in windows:
            counter = Usage.objects.filter(
                account=account, billed_to_id=account.billing_account_id, window=window, start=start
            )
            if limit is not None:
                counter = counter.filter(sent__lte=limit - n)
            if counter.update(sent=F("sent") + n) != 1:
                what = "hourly" if window == Usage.Window.HOUR else "monthly"
                raise QuotaExceeded(
                    f"{account.name} has reached its {what} limit of {limit} emails; "
                    f"these {n} would go over it.",
                    reason=reason,
                )


def count_outcome(*, account: Account, outcome: str, n: int, now: datetime | None = None) -> None:
    """Count `n` rejected or failed emails in the account's hourly window, for the dashboards' charts
    (they never count message rows). Runs outside the refused send's transaction."""
    if n <= 0:
        return
    assert outcome in ("rejected", "failed")
    start = hour_start(now)
    row = {
        "account": account,
        "billed_to_id": account.billing_account_id,
        "window": Usage.Window.HOUR,
        "start": start,
    }
    Usage.objects.bulk_create([Usage(account_label=str(account), **row)], ignore_conflicts=True)
    Usage.objects.filter(**row).update(**{outcome: F(outcome) + n})


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
