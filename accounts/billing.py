"""The master's bill: its subaccounts' usage is its own. Reads the Usage summary only (never messages).

Every Usage row carries `billed_to`, fixed when the send was counted, so a subaccount that was later
deleted (its rows keep their label) or renewed as a standalone account (its later rows are billed to
itself) still appears on the master's bill for exactly the months it sent as the master's.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime

from django.db.models import Count, Sum
from django.utils import timezone

from .csv_export import safe_cell
from .models import Account, Usage


@dataclass(frozen=True)
class BillLine:
    account_id: int | None
    public_id: str
    name: str
    state: str  # "own sending", "active", "paused", "closed", "deleted", "renewed"
    sent: int


@dataclass(frozen=True)
class Bill:
    """One month of the master's bill: the totals over every account, and one page of its lines."""

    month: date
    lines: list[BillLine]
    total: int
    accounts: int
    page: int = 1
    has_next: bool = False


@dataclass(frozen=True)
class MonthSummary:
    month: date
    sent: int
    accounts: int


def _monthly_window_start(month: date) -> datetime:
    """Where the monthly Usage window of the billed month (a date) starts."""
    return datetime(month.year, month.month, 1, tzinfo=timezone.UTC)


def parse_month(value: str | None) -> date:
    """'2026-11' → date(2026, 11, 1); anything else → the current month (UTC)."""
    today = timezone.now().astimezone(timezone.UTC).date()
    try:
        year, month = (int(part) for part in (value or "").split("-", 1))
        return date(year, month, 1)
    except (TypeError, ValueError):
        return today.replace(day=1)


def months_billed(master: Account, *, limit: int = 24) -> list[MonthSummary]:
    """The months with usage on the master's bill, newest first: one aggregate query."""
    rows = (
        Usage.objects.filter(billed_to=master, window=Usage.Window.MONTH)
        .values("start")
        .annotate(sent=Sum("sent"), accounts=Count("id"))
        .order_by("-start")[:limit]
    )
    return [
        MonthSummary(month=row["start"].date(), sent=row["sent"], accounts=row["accounts"]) for row in rows
    ]


def _state(row: dict, master: Account) -> str:
    if row["account_id"] is None:
        return "deleted"
    if row["account_id"] == master.pk:
        return "own sending"
    if row["account__parent_id"] != master.pk:
        return "renewed"
    return row["account__status"]


def _bill_rows(master: Account, month: date):
    return (
        Usage.objects.filter(billed_to=master, window=Usage.Window.MONTH, start=_monthly_window_start(month))
        .values(
            "account_id",
            "account_label",
            "account__public_id",
            "account__name",
            "account__status",
            "account__parent_id",
            "sent",
        )
        .order_by("-sent", "account_label", "id")
    )


def _line(row: dict, master: Account) -> BillLine:
    return BillLine(
        account_id=row["account_id"],
        public_id=row["account__public_id"] or "",
        name=row["account__name"] or row["account_label"],
        state=_state(row, master),
        sent=row["sent"],
    )


def bill_for_month(master: Account, month: date, *, page: int = 1, per_page: int = 100) -> Bill:
    """The month's totals (one aggregate) and one page of lines, biggest first (its own sending included):
    a bill of 100,000 subaccounts costs the same to show as one of ten."""
    rows = Usage.objects.filter(
        billed_to=master, window=Usage.Window.MONTH, start=_monthly_window_start(month)
    )
    totals = rows.aggregate(total=Sum("sent"), accounts=Count("id"))
    page = max(page, 1)
    window = list(_bill_rows(master, month)[(page - 1) * per_page : page * per_page + 1])
    return Bill(
        month=month,
        lines=[_line(row, master) for row in window[:per_page]],
        total=totals["total"] or 0,
        accounts=totals["accounts"],
        page=page,
        has_next=len(window) > per_page,
    )


def bill_csv(master: Account, month: date) -> str:
    """The month's whole bill as CSV, one row per account, for re-billing customers."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["month", "subaccount_id", "name", "state", "emails_sent"])
    label = month.strftime("%Y-%m")
    total = 0
    for row in _bill_rows(master, month).iterator(chunk_size=5000):
        line = _line(row, master)
        total += line.sent
        writer.writerow([label, safe_cell(line.public_id), safe_cell(line.name), line.state, line.sent])
    writer.writerow([label, "", "Total", "", total])
    return out.getvalue()
