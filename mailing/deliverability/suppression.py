"""The suppression list (Mandrill's rejects) and the allowlist, per account.

A hard bounce, a complaint or an unsubscribe adds an address for good; repeated soft bounces add it
until `expires_at`; people add and remove addresses by hand. A send to a suppressed address is rejected
with the reason Mandrill uses (`hard-bounce`, `soft-bounce`, `spam`, `unsub`, `custom`) and costs no
quota. An allowlisted address is never suppressed. The accept path asks once per call, not per recipient.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.audit import record
from accounts.errors import NotSuppressed, ValidationError
from accounts.models import Account

from ..checks import is_valid_address
from ..models import AllowlistEntry, Suppression

MAX_LIST = 1000


def _clean(email: str) -> str:
    email = (email or "").strip().lower()
    if not email or len(email) > 254 or "@" not in email:
        raise ValidationError("Give one email address.", field="email")
    return email


def suppressed_among(account: Account, emails: list[str], *, now: datetime | None = None) -> dict[str, str]:
    """{address (lower case): reason} for the recipients `account` must not send to: one query."""
    now = now or timezone.now()
    lowered = {email.lower() for email in emails}
    allowed = AllowlistEntry.objects.filter(account=account, email__in=lowered).values("email")
    rows = (
        Suppression.objects.filter(account=account, email__in=lowered)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .exclude(email__in=allowed)
        .values_list("email", "reason")
    )
    return dict(rows)


def is_allowlisted(account: Account, email: str) -> bool:
    return AllowlistEntry.objects.filter(account=account, email=email.lower()).exists()


@transaction.atomic
def suppress(
    *, account: Account, email: str, reason: str, detail: str = "", expires_at: datetime | None = None,
    actor=None,
) -> bool:  # fmt: skip
    """Add `email` (or refresh its entry). Returns False when the allowlist keeps it from being added.
    A permanent reason replaces a soft one; a new soft bounce never shortens a permanent entry."""
    email = _clean(email)
    if reason == Suppression.Reason.CUSTOM and not is_valid_address(email):
        raise ValidationError("Give one email address.", field="email")
    if is_allowlisted(account, email):
        return False
    now = timezone.now()
    entry, created = Suppression.objects.select_for_update().get_or_create(
        account=account,
        email=email,
        defaults={"reason": reason, "detail": detail[:1000], "expires_at": expires_at},
    )
    if not created:
        permanent = entry.expires_at is None and not entry.is_expired(now)
        if not (permanent and expires_at is not None):
            entry.reason, entry.expires_at = reason, expires_at
        entry.detail, entry.last_event_at = detail[:1000] or entry.detail, now
        entry.save(update_fields=["reason", "detail", "last_event_at", "expires_at"])
    if actor is not None:
        record(
            actor=actor, account=account, action="suppression.added", after={"email": email, "reason": reason}
        )
    return True


@transaction.atomic
def unsuppress(*, account: Account, email: str, actor=None) -> Suppression:
    """Remove `email` from the list; returns the entry as it was. Raises NotSuppressed."""
    email = _clean(email)
    entry = Suppression.objects.filter(account=account, email=email).first()
    if entry is None:
        raise NotSuppressed(email)
    entry.delete()
    if actor is not None:
        record(
            actor=actor,
            account=account,
            action="suppression.removed",
            before={"email": email, "reason": entry.reason},
        )
    return entry


def suppressions_for(
    account: Account, *, email: str = "", include_expired: bool = False
) -> QuerySet[Suppression]:
    found = Suppression.objects.filter(account=account)
    if email:
        found = found.filter(email__startswith=email.strip().lower())
    if not include_expired:
        found = found.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
    return found.order_by("-last_event_at", "-pk")


@transaction.atomic
def allow(*, account: Account, email: str, detail: str = "", actor=None) -> bool:
    """Allowlist `email` and lift any suppression of it. Returns whether it was newly added."""
    email = _clean(email)
    _, created = AllowlistEntry.objects.get_or_create(
        account=account, email=email, defaults={"detail": detail[:255]}
    )
    Suppression.objects.filter(account=account, email=email).delete()
    if actor is not None and created:
        record(actor=actor, account=account, action="allowlist.added", after={"email": email})
    return created


@transaction.atomic
def disallow(*, account: Account, email: str, actor=None) -> bool:
    email = _clean(email)
    deleted, _ = AllowlistEntry.objects.filter(account=account, email=email).delete()
    if actor is not None and deleted:
        record(actor=actor, account=account, action="allowlist.removed", before={"email": email})
    return bool(deleted)


def allowlist_for(account: Account, *, email: str = "") -> QuerySet[AllowlistEntry]:
    found = AllowlistEntry.objects.filter(account=account)
    if email:
        found = found.filter(email__startswith=email.strip().lower())
    return found.order_by("email")
