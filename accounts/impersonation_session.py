"""Log in as: the web edge. django-hijack switches the session; this module reacts to its signals,
keeps the visit's start in the session, ends a visit whose time is up, and gives base.html its banner.
The rules (who may, for how long, what is audited) are accounts/impersonation.py's.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth import BACKEND_SESSION_KEY, login
from django.contrib.auth.signals import user_logged_out
from django.utils import timezone
from hijack import signals

from . import impersonation
from .models import User

STARTED_AT_KEY = "impersonation_started_at"
SUBACCOUNT_KEY = "impersonation_subaccount_id"


def is_impersonating(request) -> bool:
    return bool(request.session.get("hijack_history"))


def real_user(request) -> User | None:
    """The agency user behind an impersonation, or None when the user is themselves."""
    history = request.session.get("hijack_history") or []
    if not history:
        return None
    return User.objects.filter(pk=history[-1]).first()


def _started_at(request) -> datetime | None:
    raw = request.session.get(STARTED_AT_KEY)
    return datetime.fromisoformat(raw) if raw else None


def impersonation_context(request) -> dict:
    """What base.html needs for the banner."""
    user = getattr(request, "user", None)
    if not (user and getattr(user, "is_hijacked", False)):
        return {"impersonating": False}
    started = _started_at(request)
    return {
        "impersonating": True,
        "impersonator": real_user(request),
        "impersonation_ends_at": impersonation.visit_ends_at(started) if started else None,
    }


def impersonation_expired(request) -> bool:
    return impersonation.visit_has_expired(_started_at(request))


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
    account = impersonation.record_visit_started(hijacker=hijacker, hijacked=hijacked)
    request.session[STARTED_AT_KEY] = timezone.now().isoformat()
    request.session[SUBACCOUNT_KEY] = account.pk


def _on_ended(sender, request, hijacker, hijacked, expired: bool = False, **kwargs) -> None:
    request.session.pop(STARTED_AT_KEY, None)
    account_id = request.session.pop(SUBACCOUNT_KEY, None)
    impersonation.record_visit_ended(
        hijacker=hijacker, hijacked=hijacked, account_id=account_id, how="expired" if expired else "released"
    )


def _on_logged_out(sender, request, user, **kwargs) -> None:
    """Logging out while impersonating ends the visit too: say so in the owner's trail."""
    if request is None or user is None or not is_impersonating(request):
        return
    hijacker = real_user(request)
    if hijacker is not None:
        impersonation.record_visit_ended(hijacker=hijacker, hijacked=user, how="logout")


def connect_signals() -> None:
    signals.hijack_started.connect(_on_started, dispatch_uid="accounts.impersonation.started")
    signals.hijack_ended.connect(_on_ended, dispatch_uid="accounts.impersonation.ended")
    user_logged_out.connect(_on_logged_out, dispatch_uid="accounts.impersonation.logged_out")
