"""Log in as: an agency's owners and admins enter one of their subaccounts' dashboards.

django-hijack does the session switch; this module decides who may, audits start and end, and ends an
impersonation by itself after IMPERSONATION_MAX_MINUTES.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, login
from django.contrib.auth.signals import user_logged_out
from django.utils import timezone
from hijack import signals

from .audit import record
from .models import Account, Membership, User

STARTED_AT_KEY = "impersonation_started_at"
SUBACCOUNT_KEY = "impersonation_subaccount_id"


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


def real_user(request) -> User | None:
    """The agency user behind an impersonation, or None when the user is themselves."""
    history = request.session.get("hijack_history") or []
    if not history:
        return None
    return User.objects.filter(pk=history[-1]).first()


def impersonation_context(request) -> dict:
    """What base.html needs for the banner."""
    user = getattr(request, "user", None)
    if not (user and getattr(user, "is_hijacked", False)):
        return {"impersonating": False}
    started = _started_at(request)
    return {
        "impersonating": True,
        "impersonator": real_user(request),
        "impersonation_ends_at": started + timedelta(minutes=settings.IMPERSONATION_MAX_MINUTES)
        if started
        else None,
    }


def _started_at(request) -> datetime | None:
    raw = request.session.get(STARTED_AT_KEY)
    return datetime.fromisoformat(raw) if raw else None


def impersonation_expired(request) -> bool:
    started = _started_at(request)
    return started is not None and timezone.now() - started > timedelta(
        minutes=settings.IMPERSONATION_MAX_MINUTES
    )


def end_impersonation(request) -> User | None:
    """Return the browser to the agency user, as hijack's release view does (used when time runs out).
    Returns the user who was being impersonated."""
    history = request.session.get("hijack_history") or []
    if not history:
        return None
    # request.user is lazy and reads the session: pin it down before login() rewrites the session.
    hijacked = User.objects.get(pk=request.user.pk)
    hijacker = User.objects.filter(pk=history.pop()).first()
    if hijacker is None:
        request.session.flush()
        return hijacked
    backend = request.session[BACKEND_SESSION_KEY]
    with signals.no_update_last_login():
        login(request, hijacker, backend=backend)
    request.session["hijack_history"] = history
    signals.hijack_ended.send(
        sender=None, request=request, hijacker=hijacker, hijacked=hijacked, expired=True
    )
    return hijacker


def _on_started(sender, request, hijacker, hijacked, **kwargs) -> None:
    request.session[STARTED_AT_KEY] = timezone.now().isoformat()
    membership = Membership.objects.select_related("account").get(user=hijacked)
    request.session[SUBACCOUNT_KEY] = membership.account_id
    record(
        actor=hijacked,
        real_actor=hijacker,
        account=membership.account,
        action="impersonation.started",
        after={"by": hijacker.email},
    )


def _on_ended(sender, request, hijacker, hijacked, expired: bool = False, **kwargs) -> None:
    request.session.pop(STARTED_AT_KEY, None)
    subaccount_id = request.session.pop(SUBACCOUNT_KEY, None)
    membership = Membership.objects.select_related("account").filter(user=hijacked).first()
    account = membership.account if membership else Account.objects.filter(pk=subaccount_id).first()
    if account is not None:
        record(
            actor=hijacked,
            real_actor=hijacker,
            account=account,
            action="impersonation.expired" if expired else "impersonation.ended",
            after={"by": hijacker.email},
        )


def _on_logged_out(sender, request, user, **kwargs) -> None:
    """Logging out while impersonating ends the visit too: say so in the owner's trail."""
    if request is None or user is None or not request.session.get("hijack_history"):
        return
    hijacker = real_user(request)
    membership = Membership.objects.select_related("account").filter(user=user).first()
    if hijacker is not None and membership is not None:
        record(
            actor=user,
            real_actor=hijacker,
            account=membership.account,
            action="impersonation.ended",
            after={"by": hijacker.email, "how": "logout"},
        )


def connect_signals() -> None:
    signals.hijack_started.connect(_on_started, dispatch_uid="accounts.impersonation.started")
    signals.hijack_ended.connect(_on_ended, dispatch_uid="accounts.impersonation.ended")
    user_logged_out.connect(_on_logged_out, dispatch_uid="accounts.impersonation.logged_out")
