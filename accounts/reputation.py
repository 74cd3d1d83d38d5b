"""Reputation and auto-pause, read from the Usage summary (never from messages or events).

**Reputation** (0 to 100, Mandrill's scale) over the last REPUTATION_DAYS: with D messages delivered or
hard-bounced, H hard bounces and C complaints, it is 100 - 50 * (H/D) / 5 % - 50 * (C/D) / 0.1 %, floored
at 0. An account at Mandrill's own limit on one of them (hard bounces under 5 %, complaints under 0.1 %;
docs/deliverability.md) stands at 50, at both limits at 0. Under MIN_SAMPLE sends there is too little to
judge: 100.

**Auto-pause**: a subaccount whose rates over the same window pass its master's limits (or its own
override; 5 % hard bounces and 0.1 % complaints by default) is paused through the pause service: its
mail is held, not lost; the agency is told once; resuming is the agency's decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from . import lifecycle
from .audit import record
from .models import Account, Membership, Usage, User
from .permissions import require_role
from .validation import clean_auto_pause_rates

REPUTATION_DAYS = 30
MIN_SAMPLE = 100
# Percent of sends (Mandrill's published limits), and the days they are measured over.
DEFAULT_RATES = {"hard_bounce": 5.0, "complaint": 0.1, "window_days": REPUTATION_DAYS}


@dataclass(frozen=True)
class Health:
    sent: int  # delivered or hard-bounced: what the rates are out of
    hard_bounces: int
    complaints: int

    @property
    def hard_bounce_rate(self) -> float:
        return 100 * self.hard_bounces / self.sent if self.sent else 0.0

    @property
    def complaint_rate(self) -> float:
        return 100 * self.complaints / self.sent if self.sent else 0.0

    @property
    def reputation(self) -> int:
        if self.sent < MIN_SAMPLE:
            return 100
        penalty = (
            50 * self.hard_bounce_rate / DEFAULT_RATES["hard_bounce"]
            + 50 * self.complaint_rate / DEFAULT_RATES["complaint"]
        )
        return max(0, round(100 - penalty))


def health_of(
    account_ids: list[int], *, now: datetime | None = None, days: int = REPUTATION_DAYS
) -> dict[int, Health]:
    """Each account's Health over the last `days`: one aggregate over the hourly Usage windows."""
    since = (now or timezone.now()) - timedelta(days=days)
    rows = (
        Usage.objects.filter(account_id__in=account_ids, window=Usage.Window.HOUR, start__gte=since)
        .values("account_id")
        .annotate(delivered=Sum("delivered"), hard=Sum("hard_bounced"), complained=Sum("complained"))
    )
    found = {
        row["account_id"]: Health(
            sent=(row["delivered"] or 0) + (row["hard"] or 0),
            hard_bounces=row["hard"] or 0,
            complaints=row["complained"] or 0,
        )
        for row in rows
    }
    return {account_id: found.get(account_id, Health(0, 0, 0)) for account_id in account_ids}


def limits_for(account: Account) -> dict[str, float]:
    """The rates (and window) that pause `account`: its override, else its master's, else the defaults,
    each key on its own (a subaccount may override the hard-bounce limit alone)."""
    own = account.auto_pause_rates or {}
    agency = (account.parent.auto_pause_rates or {}) if account.parent_id else {}
    return DEFAULT_RATES | agency | own


def reason_to_pause(account: Account, health: Health) -> str | None:
    if health.sent < MIN_SAMPLE:
        return None
    limits = limits_for(account)
    if health.hard_bounce_rate > limits["hard_bounce"]:
        return f"hard-bounce rate {health.hard_bounce_rate:.1f}% over the last {health.sent:,} sends (limit {limits['hard_bounce']:g}%)"
    if health.complaint_rate > limits["complaint"]:
        return f"complaint rate {health.complaint_rate:.2f}% over the last {health.sent:,} sends (limit {limits['complaint']:g}%)"
    return None


def check_auto_pause(account: Account) -> bool:
    """Pause a subaccount whose bounces or complaints passed its limits. Exactly once however many bounces
    race: the status is read on the locked row. Returns whether this call paused it."""
    if not account.is_subaccount:
        return False
    days = int(limits_for(account)["window_days"])
    reason = reason_to_pause(account, health_of([account.pk], days=days)[account.pk])
    if reason is None:
        return False
    return lifecycle.pause_automatically(subaccount_id=account.pk, reason=reason)


def attach_health(accounts: list[Account], *, now: datetime | None = None) -> list[Account]:
    """Put each account's 30-day Health on it (`account.health`) for a page: one query for the lot."""
    found = health_of([account.pk for account in accounts], now=now)
    for account in accounts:
        account.health = found[account.pk]
    return accounts


@transaction.atomic(durable=True)
def set_auto_pause_rates(
    *, actor: User, master: Account, rates: dict, subaccount_id: int | None = None,
    real_actor: User | None = None,
) -> Account:  # fmt: skip
    """Set the master's auto-pause limits for all its subaccounts or, with `subaccount_id`, one
    subaccount's override (keys left empty fall back to the master's; all empty removes the override).
    The next bounce or complaint is judged by them. Raises Account.DoesNotExist (not this master's),
    PermissionDenied (viewer), ValidationError (a limit out of bounds, naming its field)."""
    if subaccount_id is not None:
        account = Account.objects.subaccounts_of(master).select_for_update().get(pk=subaccount_id)
    else:
        account = Account.objects.select_for_update().get(pk=master.pk, kind=Account.Kind.MASTER)
    require_role(actor, master, Membership.Role.ADMIN)
    new = clean_auto_pause_rates(rates) or None
    before = account.auto_pause_rates
    if new == before:
        return account
    account.auto_pause_rates = new
    account.save(update_fields=["auto_pause_rates", "updated_at"])
    record(
        actor=actor, real_actor=real_actor, account=account, action="auto_pause.rates_changed",
        before={"auto_pause_rates": before}, after={"auto_pause_rates": new},
    )  # fmt: skip
    return account
