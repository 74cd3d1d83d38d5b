"""Reads shaped for pages. Each starts from the current account and costs a fixed number of queries."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.core.paginator import Page, Paginator
from django.db.models import (
    BigIntegerField,
    BooleanField,
    Count,
    ExpressionWrapper,
    F,
    FilteredRelation,
    IntegerField,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from . import reports, reputation
from .alerts import DEFAULT_ALERT_THRESHOLDS, thresholds_for
from .models import Account, AuditEvent, Invitation, LimitAlert, Membership, Usage
from .quota import hour_start, month_start

SUBACCOUNT_SORTS = {
    "name": "name",
    "-name": "-name",
    "id": "public_id",
    "-id": "-public_id",
    "created": "created_at",
    "-created": "-created_at",
    "status": "status",
    "-status": "-status",
    "monthly_limit": "monthly_limit",
    "-monthly_limit": "-monthly_limit",
    "usage": "sent_this_month",
    "-usage": "-sent_this_month",
}


def _sent_in(window: str, start: datetime) -> Subquery:
    return Subquery(
        Usage.objects.filter(
            account=OuterRef("pk"), billed_to=OuterRef("billing_owner"), window=window, start=start
        ).values("sent")[:1],
        output_field=IntegerField(),
    )


def with_usage(
    queryset: QuerySet[Account], *, now: datetime | None = None, billed_to: Account | None = None
) -> QuerySet[Account]:
    """Annotate this month's and this hour's sends (from the Usage summary, never from messages).

    This month's count is a LEFT JOIN to the month's Usage row (one per account and bill: the unique
    window), not a subquery per account: sorting 100,000 subaccounts by it is then one hash join and a
    top-N sort, where a correlated subquery ran 100,000 index look-ups. The month's row is the counter the
    reservation already keeps exact, so the accept path pays nothing for the sort (no second counter on
    the account row, which every send would then lock as well). `billed_to`, when every account of
    `queryset` is billed to it (a master's subaccounts), turns the join into a range of the billing index."""
    bill = Value(billed_to.pk) if billed_to else Coalesce(F("parent_id"), F("pk"))
    queryset = queryset.annotate(
        billing_owner=Coalesce(F("parent_id"), F("pk")),
        month_usage=FilteredRelation(
            "usage",
            condition=Q(
                usage__window=Usage.Window.MONTH,
                usage__start=month_start(now),
                usage__billed_to=bill,
            ),
        ),
    )
    return queryset.annotate(
        sent_this_month=Coalesce(F("month_usage__sent"), Value(0)),
        sent_this_hour=Coalesce(_sent_in(Usage.Window.HOUR, hour_start(now)), Value(0)),
    )


def subaccounts_for_master(
    master: Account, *, query: str = "", status: str = "", sort: str = "name", now: datetime | None = None
) -> QuerySet[Account]:
    """The master's subaccounts for its list page: searched by name, id or contact email, filtered by
    status, sorted, with usage and invite state annotated, so a page costs the same queries at any size."""
    subaccounts = _matching(master, query=query, status=status)
    # Django marks an unusable password with a leading "!": an owner with a real one has accepted.
    owner_has_password = Membership.objects.filter(
        account=OuterRef("pk"), role=Membership.Role.OWNER
    ).exclude(user__password__startswith=UNUSABLE_PASSWORD_PREFIX)
    pending_invite = Invitation.objects.filter(
        account=OuterRef("pk"),
        accepted_at__isnull=True,
        replaced_at__isnull=True,
        expires_at__gt=timezone.now(),
    )
    owner = Membership.objects.filter(account=OuterRef("pk"), role=Membership.Role.OWNER).values("user_id")[
        :1
    ]
    # The invite's state as scalar subqueries, not EXISTS: PostgreSQL runs these for the page's rows
    # only (after the sort and LIMIT), where an EXISTS became a hash of every owner and invitation of
    # every agency, built on each request.
    subaccounts = with_usage(subaccounts, now=now, billed_to=master).annotate(
        owner_id=Subquery(owner, output_field=IntegerField()),
        accepted_owner=Subquery(owner_has_password.values("pk")[:1], output_field=IntegerField()),
        pending_invite_id=Subquery(pending_invite.values("pk")[:1], output_field=IntegerField()),
    )
    subaccounts = subaccounts.annotate(
        invite_accepted=ExpressionWrapper(Q(accepted_owner__isnull=False), output_field=BooleanField()),
        invite_pending=ExpressionWrapper(Q(pending_invite_id__isnull=False), output_field=BooleanField()),
    )
    return subaccounts.order_by(SUBACCOUNT_SORTS.get(sort, "name"), "pk")


def _matching(master: Account, *, query: str, status: str) -> QuerySet[Account]:
    subaccounts = Account.objects.subaccounts_of(master)
    if query:
        subaccounts = subaccounts.filter(
            Q(name__icontains=query) | Q(public_id__icontains=query) | Q(contact_email__icontains=query)
        )
    if status in Account.Status.values:
        subaccounts = subaccounts.filter(status=status)
    return subaccounts


def subaccounts_page(
    master: Account,
    *,
    query: str = "",
    status: str = "",
    sort: str = "name",
    number: str | int | None = 1,
    per_page: int = 25,
    now: datetime | None = None,
) -> Page:
    """One page of `subaccounts_for_master`, its rows in order: the page's ids are found on a narrow
    query (the id and the sort key), then only those rows are read whole and annotated. Sorting 100,000
    full rows with their usage to show 25 of them was most of the list's time when sorted by usage."""
    ordered = _matching(master, query=query, status=status)
    if sort.lstrip("-") == "usage":
        ordered = with_usage(ordered, now=now, billed_to=master)
    ids = ordered.order_by(SUBACCOUNT_SORTS.get(sort, "name"), "pk").values_list("pk", flat=True)
    page = Paginator(ids, per_page).get_page(number)
    rows = subaccounts_for_master(master, query=query, status=status, sort=sort, now=now).in_bulk(
        list(page.object_list)
    )
    page.object_list = [rows[pk] for pk in page.object_list if pk in rows]
    return page


def subaccount_of(master: Account, pk: int) -> Account:
    """One of the master's subaccounts, annotated like a list row. Raises Account.DoesNotExist."""
    return subaccounts_for_master(master).get(pk=pk)


def audit_events_for_account(account: Account) -> QuerySet[AuditEvent]:
    """An account's own trail; for a master, the whole agency's (its subaccounts' too, deleted ones included)."""
    events = AuditEvent.objects.select_related("actor", "real_actor")
    if account.is_master:
        return events.filter(Q(master=account) | Q(account=account))
    return events.filter(account=account)


def master_overview(
    master: Account, *, now: datetime | None = None, month_days: list[dict] | None = None
) -> dict:
    """The master's overview page: one aggregate query per widget, whatever the number of subaccounts.
    `month_days`: the agency's figures for each day of this month so far, when the caller has them
    already (the page's own range covers the month), so today's hours are not read twice."""
    start = month_start(now)
    month_usage = Usage.objects.filter(billed_to=master, window=Usage.Window.MONTH, start=start)
    # Counting `sent`, not `id`: both read from the billing index alone (index-only), no table rows.
    totals = month_usage.aggregate(
        total_sent=Coalesce(Sum("sent"), 0), senders=Count("sent", filter=Q(sent__gt=0))
    )
    subaccounts = Account.objects.subaccounts_of(master).aggregate(
        total=Count("id"),
        active=Count("id", filter=Q(status=Account.Status.ACTIVE)),
        paused=Count("id", filter=Q(status=Account.Status.PAUSED)),
        closed=Count("id", filter=Q(status=Account.Status.CLOSED)),
    )
    # The month's days from their daily rollup (today's from its hours): not every hour of every sender.
    if month_days is None:
        month_days = reports.agency_daily(
            master, reports.DateRange(first=start.date(), last=reports.today_utc(now))
        )
    month_so_far = reports.totals(month_days)
    engagement = {"opened": month_so_far["opened"], "clicked": month_so_far["clicked"]}
    lowest = min(master.alert_thresholds or DEFAULT_ALERT_THRESHOLDS)
    subaccount_usage = month_usage.filter(account__parent=master).annotate(
        percent=F("sent") * 100 / F("account__monthly_limit")
    )
    # Nobody is near a limit who has sent less than the lowest threshold of the smallest limit: only the
    # month rows from there up (a range of the billing index, by sent) are joined to their limits, not
    # every subaccount's (a hash of 100,000 rows, most of them far from any limit).
    least_limit = Account.objects.subaccounts_of(master).aggregate(least=Min("monthly_limit"))["least"] or 0
    # The ten nearest found on (account, sent) alone, which the billing index carries, then their rows:
    # the wide Usage and Account rows are read for ten subaccounts, not for all of them.
    nearest = (
        # whole numbers (sent * 100 >= limit * threshold): the same test without 100,000 numeric divisions
        subaccount_usage.alias(
            used=Cast("sent", BigIntegerField()) * 100,
            at_threshold=Cast("account__monthly_limit", BigIntegerField()) * lowest,
        )
        .filter(sent__gte=-(-least_limit * lowest // 100), used__gte=F("at_threshold"))
        .order_by("-percent", "account_id")
        .values("account_id")[:10]
    )
    near_limit = (
        subaccount_usage.filter(account_id__in=Subquery(nearest))
        .select_related("account")
        .order_by("-percent", "account_id")
    )
    return {
        "month": start,
        "sent": totals["total_sent"],
        "senders": totals["senders"],
        "engagement": engagement,
        "subaccounts": subaccounts,
        "near_limit": list(near_limit),
        "lowest_threshold": lowest,
        "alerts": list(
            LimitAlert.objects.filter(account__parent=master)
            .select_related("account")
            .order_by("-created_at")[:8]
        ),
        "events": list(audit_events_for_account(master)[:8]),
    }


def daily_sent(account: Account, *, days: int = 30, now: datetime | None = None) -> list[dict]:
    """The account's figures per UTC day over the last `days` days (today included), from its hourly
    Usage windows (one aggregate query; days without sending are 0 for the chart)."""
    return reports.daily_figures(Usage.objects.filter(account=account), reports.last_days(days, now=now))


def subaccount_page(master: Account, pk: int, *, now: datetime | None = None) -> dict:
    """The master's page for one subaccount (the drill-down), in a fixed number of queries whatever the
    agency's size: the subaccount annotated like a list row, its last 30 days day by day with their
    totals, its reputation and the rates that would pause it, its alert thresholds and its latest
    activity, this month's outcomes. Raises Account.DoesNotExist for anything but one of `master`'s subaccounts."""
    subaccount = subaccount_of(master, pk)
    subaccount.parent = master  # thresholds and auto-pause limits fall back to the agency's: no query
    span = reports.last_days(reputation.REPUTATION_DAYS, now=now)
    daily = reports.daily_figures(Usage.objects.filter(account=subaccount), span)
    reputation.attach_health([subaccount], now=now)
    return {
        "sub": subaccount,
        "outcomes": outcomes_this_month(subaccount, now=now),
        "span": span,
        "daily": daily,
        "totals": reports.totals(daily),
        "auto_pause": {
            "limits": {name: f"{rate:g}" for name, rate in reputation.limits_for(subaccount).items()},
            "own": bool(subaccount.auto_pause_rates),
        },
        "thresholds": sorted({*thresholds_for(subaccount), 100}),
        "events": list(audit_events_for_account(subaccount)[:6]),
    }


def outcomes_this_month(account: Account, *, now: datetime | None = None) -> dict[str, int]:
    """This month's delivered, bounced, complained, rejected (and the rest of reports.FIGURES) for the
    usage widgets: one aggregate over the hourly Usage windows."""
    totals = Usage.objects.filter(
        account=account, window=Usage.Window.HOUR, start__gte=month_start(now)
    ).aggregate(**reports.SUMS)
    return {key: value or 0 for key, value in totals.items()}


def sending_stats(accounts: list[Account], *, now: datetime | None = None) -> dict[int, dict]:
    """For each account: `total` (all months), `monthly` (this month), `weekly` (since Monday, UTC),
    `hourly` (this hour) sends and `first` (the hour of its first send), in one aggregate over Usage
    (the hour windows give the week; the month windows the rest). Accounts that never sent are absent."""
    now = now or timezone.now()
    week_start = (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    rows = (
        Usage.objects.filter(account_id__in=[account.pk for account in accounts])
        .values("account_id")
        .annotate(
            total=Sum("sent", filter=Q(window=Usage.Window.MONTH)),
            monthly=Sum("sent", filter=Q(window=Usage.Window.MONTH, start=month_start(now))),
            weekly=Sum("sent", filter=Q(window=Usage.Window.HOUR, start__gte=week_start)),
            hourly=Sum("sent", filter=Q(window=Usage.Window.HOUR, start=hour_start(now))),
            first=Min("start", filter=Q(window=Usage.Window.HOUR, sent__gt=0)),
        )
    )
    found = {row["account_id"]: row for row in rows}
    periods = outcome_stats(list(found), now=now) if found else {}
    for account_id, row in found.items():
        row["outcomes"] = periods.get(account_id, {})
    return found


# What happened to mail after it was accepted, as Usage counts it per hour.
OUTCOME_COUNTERS = ("rejected", "hard_bounced", "soft_bounced", "complained", "unsubs", "opens", "unique_opens",
                    "clicks", "unique_clicks")  # fmt: skip
STATS_PERIODS = {"today": 0, "last_7_days": 7, "last_30_days": 30, "last_60_days": 60, "last_90_days": 90,
                 "all_time": None}  # fmt: skip


def outcome_stats(
    account_ids: list[int], *, now: datetime | None = None
) -> dict[int, dict[str, dict[str, int]]]:
    """For each account: {period: {counter: n}} over the hourly Usage windows, for the periods Mandrill's
    stats objects have (today since midnight UTC, the last 7/30/60/90 days, all time). One aggregate."""
    now = now or timezone.now()
    midnight = now.astimezone(timezone.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    aggregates = {}
    for period, days in STATS_PERIODS.items():
        since = Q() if days is None else Q(start__gte=midnight if days == 0 else now - timedelta(days=days))
        for counter in OUTCOME_COUNTERS:
            aggregates[f"{period}__{counter}"] = Coalesce(Sum(counter, filter=since), 0)
    rows = (
        Usage.objects.filter(account_id__in=account_ids, window=Usage.Window.HOUR)
        .values("account_id")
        .annotate(**aggregates)
    )
    found: dict[int, dict[str, dict[str, int]]] = {}
    for row in rows:
        periods = found.setdefault(row["account_id"], {period: {} for period in STATS_PERIODS})
        for name, value in row.items():
            if "__" in name:
                period, counter = name.split("__")
                periods[period][counter] = value
    return found


def subaccounts_by_prefix(master: Account, prefix: str = "") -> QuerySet[Account]:
    """The master's subaccounts whose id or name starts with `prefix` (all when empty), by id:
    what a program listing them (`subaccounts/list`) expects."""
    subaccounts = Account.objects.subaccounts_of(master).order_by("public_id")
    if prefix:
        subaccounts = subaccounts.filter(Q(public_id__startswith=prefix) | Q(name__istartswith=prefix))
    return subaccounts


def limit_warning(account: Account, *, now: datetime | None = None) -> dict | None:
    """What the account's own dashboard says about its monthly limit once usage has passed the lowest
    alert threshold that applies to it (its own, else its master's, else the default): the percentage
    used (rounded down), whether the limit is reached, and when it renews (the next month, UTC).
    `account` carries `sent_this_month` (with_usage). None below the threshold."""
    used, limit = account.sent_this_month, account.monthly_limit
    percent = used * 100 // limit if limit else 0
    lowest = min(thresholds_for(account))
    if percent < lowest:
        return None
    start = month_start(now)
    renews = (start + timedelta(days=32)).replace(day=1)
    return {"percent": percent, "used": used, "limit": limit, "reached": used >= limit, "renews": renews}


def auto_paused_subaccounts(master: Account, *, limit: int = 5) -> list[Account]:
    """The master's subaccounts paused automatically and not yet resumed, most recent first (a banner's
    worth: one query, bounded)."""
    paused = (
        Account.objects.subaccounts_of(master).filter(status=Account.Status.PAUSED).exclude(pause_reason="")
    )
    return list(paused.order_by("-paused_at", "pk")[:limit])
