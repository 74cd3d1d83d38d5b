"""Log in as: the rules. An agency's owners and admins may enter one of their subaccounts' dashboards,
for IMPERSONATION_MAX_MINUTES at most, and every visit is in the owner's audit trail.

This module knows no request: django-hijack does the session switch, and the edge that drives it
(signals, the time box's enforcement, the banner) is accounts/impersonation_session.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from .audit import record
from .models import Account, Membership, User


def refusal_reason(
    *, hijacker: User, hijacked: User | None, already_impersonating: bool = False
) -> str | None:
    """Why `hijacker` may not log in as `hijacked`, or None when they may."""
    if already_impersonating:
        return "You are already logged in as someone else. Go back to your account first."
    hijacker_membership = Membership.objects.select_related("account").filter(user=hijacker).first()
    if hijacker_membership is None or not hijacker_membership.account.is_master:
        return "Only an agency's staff can log in as a subaccount."
    if not hijacker_membership.can_manage:
        return "Only an owner or admin of your agency can log in as a subaccount."
    if hijacked is None:
        return "That subaccount has no owner to log in as."
    if hijacked.is_staff or hijacked.is_superuser:
        return "Operators' accounts cannot be logged in as."
    target = Membership.objects.select_related("account").filter(user=hijacked).first()
    if (
        target is None
        or target.role != Membership.Role.OWNER
        or target.account.kind != Account.Kind.SUBACCOUNT
        or target.account.parent_id != hijacker_membership.account_id
    ):
        return "You can only log in as the owner of one of your own subaccounts."
    if target.account.status == Account.Status.CLOSED:
        return f"{target.account.name} is closed. Reopen it to log in as its owner."
    if not hijacked.is_active:
        return "That subaccount's owner has been deactivated."
    if not hijacked.has_usable_password():
        return f"{target.account.name}'s owner has not accepted the invite yet. Resend the invite?"
    return None


def may_log_in_as(*, hijacker: User, hijacked: User) -> bool:
    """django-hijack's permission check (HIJACK_PERMISSION_CHECK)."""
    return refusal_reason(hijacker=hijacker, hijacked=hijacked) is None


def visit_ends_at(started_at: datetime) -> datetime:
    return started_at + timedelta(minutes=settings.IMPERSONATION_MAX_MINUTES)


def visit_has_expired(started_at: datetime | None, *, now: datetime | None = None) -> bool:
    return started_at is not None and (now or timezone.now()) > visit_ends_at(started_at)


def record_visit_started(*, hijacker: User, hijacked: User) -> Account:
    """Write the start of a visit into the owner's trail; returns the account visited."""
    account = Membership.objects.select_related("account").get(user=hijacked).account
    record(
        actor=hijacked, real_actor=hijacker, account=account, action="impersonation.started",
        after={"by": hijacker.email},
    )  # fmt: skip
    return account


def record_visit_ended(
    *, hijacker: User, hijacked: User, account_id: int | None = None, how: str = "released"
) -> None:
    """Write the end of a visit: `how` is released (the button back), expired (the time box) or logout.
    `account_id` finds the account when the owner's membership is gone (deleted meanwhile)."""
    membership = Membership.objects.select_related("account").filter(user=hijacked).first()
    account = membership.account if membership else Account.objects.filter(pk=account_id).first()
    if account is None:
        return
    after = {"by": hijacker.email} | ({"how": "logout"} if how == "logout" else {})
    action = "impersonation.expired" if how == "expired" else "impersonation.ended"
    record(actor=hijacked, real_actor=hijacker, account=account, action=action, after=after)
