"""Near-limit alerts: when a subaccount's usage crosses a threshold of its monthly limit, its master's
owners and admins get one email per threshold per month. The LimitAlert row (unique per account, month
and threshold) is the guarantee: whoever inserts it sends the email, however many sends race."""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F

from . import emails
from .audit import record
from .models import Account, LimitAlert, Membership, Usage, User
from .permissions import require_role
from .quota import month_start, sent_this_month
from .validation import clean_thresholds

DEFAULT_ALERT_THRESHOLDS = [80, 95]


def thresholds_for(account: Account) -> list[int]:
    """The thresholds that apply to an account: its own override, else its master's, else the default.
    100 % is not listed: it always alerts."""
    own = account.alert_thresholds
    if own:
        return own
    if account.parent_id and account.parent.alert_thresholds:
        return account.parent.alert_thresholds
    return DEFAULT_ALERT_THRESHOLDS


def crossed_thresholds(account: Account, used: int) -> list[int]:
    thresholds = sorted({*thresholds_for(account), 100})
    return [t for t in thresholds if used * 100 >= t * account.monthly_limit]


def crossed_now(account: Account, *, before: int, after: int) -> bool:
    """Whether going from `before` to `after` sends this month passed one of the account's thresholds."""
    if not account.is_subaccount or after <= before:
        return False
    thresholds = {*thresholds_for(account), 100}
    return any(before * 100 < t * account.monthly_limit <= after * 100 for t in thresholds)


def check_limit_alerts(*, account: Account, now: datetime | None = None) -> list[LimitAlert]:
    """Record and announce the thresholds this subaccount has crossed this month and not yet announced."""
    if not account.is_subaccount:
        return []
    account = Account.objects.select_related("parent").get(pk=account.pk)
    used = sent_this_month(account, now)
    month = month_start(now).date()
    created = []
    for threshold in crossed_thresholds(account, used):
        try:
            with transaction.atomic():
                alert = LimitAlert.objects.create(
                    account=account, month=month, threshold=threshold, usage_at_alert=used,
                    limit_at_alert=account.monthly_limit,
                )  # fmt: skip
        except IntegrityError:
            continue  # announced already (perhaps by a concurrent send)
        created.append(alert)
        # In the trail, where the agency's webhooks read it (`account.limit_alert`).
        record(actor=None, account=account, action="limit.alert",
               after={"threshold": threshold, "usage": used, "limit": account.monthly_limit,
                      "month": month.isoformat()})  # fmt: skip
    if created:
        top = max(created, key=lambda alert: alert.threshold)
        transaction.on_commit(lambda: emails.send_limit_alert(account=account, alert=top))
    return created


def scan_limit_alerts(*, now: datetime | None = None) -> int:
    """The periodic catch-up: subaccounts past their lowest threshold this month (say after a quota was
    lowered below their usage) get their alerts. Returns how many alerts were made."""
    candidates = (
        Usage.objects.filter(
            window=Usage.Window.MONTH,
            start=month_start(now),
            account__kind=Account.Kind.SUBACCOUNT,
            billed_to=F("account__parent"),
        )
        .filter(sent__gte=F("account__monthly_limit") * 0.01)
        .values_list("account_id", flat=True)
    )
    made = 0
    for account_id in candidates.iterator():
        with transaction.atomic():
            made += len(
                check_limit_alerts(account=Account(pk=account_id, kind=Account.Kind.SUBACCOUNT), now=now)
            )
    return made


@transaction.atomic(durable=True)
def set_alert_thresholds(
    *,
    actor: User,
    master: Account,
    thresholds: str | list[int] | None,
    subaccount_id: int | None = None,
    real_actor: User | None = None,
) -> Account:
    """Set the master's default near-limit alert thresholds or, with `subaccount_id`, one subaccount's
    override (empty thresholds on a subaccount: back to the master's). 100 % always alerts too.
    Raises Account.DoesNotExist (not this master's), PermissionDenied (viewer), ValidationError."""
    if subaccount_id is not None:
        account = Account.objects.subaccounts_of(master).select_for_update().get(pk=subaccount_id)
    else:
        account = Account.objects.select_for_update().get(pk=master.pk, kind=Account.Kind.MASTER)
    require_role(actor, master, Membership.Role.ADMIN)
    cleared = subaccount_id is not None and not str(thresholds or "").strip("[], ")
    new = None if cleared else clean_thresholds(thresholds)
    before = account.alert_thresholds
    if new == before:
        return account
    account.alert_thresholds = new
    account.save(update_fields=["alert_thresholds", "updated_at"])
    record(
        actor=actor,
        real_actor=real_actor,
        account=account,
        action="alerts.thresholds_changed",
        before={"alert_thresholds": before},
        after={"alert_thresholds": new},
    )
    return account
