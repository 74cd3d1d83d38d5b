"""The suppression list (Mandrill's rejects) and the allowlist, per account.

A hard bounce, a complaint or an unsubscribe adds an address for good; repeated soft bounces add it
until `expires_at`; people add and remove addresses by hand. A send to a suppressed address is rejected
with the reason Mandrill uses (`hard-bounce`, `soft-bounce`, `spam`, `unsub`, `custom`) and costs no
quota. An allowlisted address is never suppressed. The accept path asks once per call, not per recipient.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.audit import record
from accounts.csv_export import csv_lines
from accounts.errors import NotSuppressed, ValidationError
from accounts.models import Account, Membership, User
from accounts.permissions import require_role
from accounts.reports import day_start, parse_day

from ..checks import is_valid_address
from ..models import AllowlistEntry, Suppression

MAX_LIST = 1000


def _clean(email: str) -> str:
    email = (email or "").strip().lower()
    if not email or len(email) > 254 or "@" not in email:
        raise ValidationError("Give one email address.", field="email")
    return email


def suppressed_among(account: Account, emails: list[str], *, now: datetime | None = None) -> dict[str, str]:
    """{address (lower case): reason} for the recipients `account` must not send to: one query.

    Every accept asks this, so the query is written once as SQL (_SUPPRESSED_SQL) rather than built by
    the ORM on each call: compiling the ORM's version cost about ten times its round trip."""
    now = now or timezone.now()
    lowered = sorted({email.lower() for email in emails})
    if not lowered:
        return {}
    placeholders = ", ".join(["%s"] * len(lowered))
    expires = Suppression._meta.get_field("expires_at").get_db_prep_value(now, connection)
    with connection.cursor() as cursor:
        cursor.execute(_suppressed_sql().format(emails=placeholders), [account.pk, *lowered, expires])
        return dict(cursor.fetchall())


@functools.cache
def _suppressed_sql() -> str:
    """The addresses on the list, not expired and not allowlisted; `{emails}` is filled per call with
    one placeholder per address. Names come from the models, so the SQL follows the schema."""
    quote = connection.ops.quote_name
    suppressions, allowlist = quote(Suppression._meta.db_table), quote(AllowlistEntry._meta.db_table)
    email, reason, account = (
        quote(Suppression._meta.get_field(f).column) for f in ("email", "reason", "account")
    )
    expires_at = quote(Suppression._meta.get_field("expires_at").column)
    allowed_email = quote(AllowlistEntry._meta.get_field("email").column)
    allowed_account = quote(AllowlistEntry._meta.get_field("account").column)
    return (
        f"SELECT s.{email}, s.{reason} FROM {suppressions} s WHERE s.{account} = %s AND s.{email} IN ({{emails}})"  # nosec B608: quoted model names; values are parameters
        f" AND (s.{expires_at} IS NULL OR s.{expires_at} > %s)"
        f" AND NOT EXISTS (SELECT 1 FROM {allowlist} a WHERE a.{allowed_account} = s.{account}"
        f" AND a.{allowed_email} = s.{email})"
    )


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


# --- the suppressions page: whose list, filters, removal and addition by a person, CSV ----------------


def list_owner(account: Account, subaccount_id: int | None) -> Account:
    """Whose list a page shows: the account's own, or (a master only) one of its subaccounts'. Raises
    Account.DoesNotExist for anything else (a sibling, another agency's subaccount): the page's 404."""
    if subaccount_id is None or subaccount_id == account.pk:
        return account
    if not account.is_master:
        raise Account.DoesNotExist("Only a master sees another account's list.")
    return Account.objects.subaccounts_of(account).get(pk=subaccount_id)


EXPIRY_CHOICES = [
    ("", "In force"),
    ("permanent", "Permanent"),
    ("expiring", "Expires later"),
    ("expired", "Expired"),
    ("all", "All"),
]


@dataclass(frozen=True)
class SuppressionFilters:
    email: str = ""
    reason: str = ""
    date_from: date | None = None
    date_to: date | None = None
    expiry: str = ""

    @classmethod
    def from_query(cls, query) -> SuppressionFilters:
        reason = query.get("reason", "")
        expiry = query.get("expiry", "")
        return cls(
            email=(query.get("q") or "").strip().lower()[:254],
            reason=reason if reason in Suppression.Reason.values else "",
            date_from=parse_day(query.get("date_from")),
            date_to=parse_day(query.get("date_to")),
            expiry=expiry if expiry in dict(EXPIRY_CHOICES) else "",
        )

    @property
    def any(self) -> bool:
        return bool(self.email or self.reason or self.date_from or self.date_to or self.expiry)


def filtered_suppressions(owner: Account, filters: SuppressionFilters) -> QuerySet[Suppression]:
    """`owner`'s list as the page filters it: address contains, reason, added between (UTC days), and
    in force (the default), permanent, expiring later, expired or all. Newest event first."""
    now = timezone.now()
    found = Suppression.objects.filter(account=owner)
    if filters.email:
        found = found.filter(email__contains=filters.email)
    if filters.reason:
        found = found.filter(reason=filters.reason)
    if filters.date_from:
        found = found.filter(created_at__gte=day_start(filters.date_from))
    if filters.date_to:
        found = found.filter(created_at__lt=day_start(filters.date_to + timedelta(days=1)))
    found = {
        "": found.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now)),
        "permanent": found.filter(expires_at__isnull=True),
        "expiring": found.filter(expires_at__gt=now),
        "expired": found.filter(expires_at__lte=now),
        "all": found,
    }[filters.expiry]
    return found.order_by("-last_event_at", "-pk")


CSV_COLUMNS = ["email", "reason", "detail", "added_at", "last_event_at", "expires_at"]


def suppressions_csv(owner: Account, filters: SuppressionFilters) -> Iterator[str]:
    """The filtered list as CSV lines, streamed (a list may hold hundreds of thousands of addresses); a
    bounce's detail is a stranger's text, so formula cells are defused (accounts.csv_export)."""
    rows = (
        [
            entry.email, entry.reason, entry.detail, entry.created_at.isoformat(), entry.last_event_at.isoformat(),
            entry.expires_at.isoformat() if entry.expires_at else "",
        ]
        for entry in filtered_suppressions(owner, filters).iterator(chunk_size=2000)
    )  # fmt: skip
    return csv_lines(CSV_COLUMNS, rows)


def _visible_to(account: Account) -> Q:
    """The lists a person of `account` manages: its own and, for a master, its subaccounts'."""
    if account.is_master:
        return Q(account=account) | Q(account__parent=account, account__kind=Account.Kind.SUBACCOUNT)
    return Q(account=account)


def entry_visible_to(account: Account, suppression_id: int) -> Suppression:
    """One entry of a list `account` manages. Raises Suppression.DoesNotExist for anyone else's."""
    return Suppression.objects.select_related("account").filter(_visible_to(account)).get(pk=suppression_id)


@transaction.atomic(durable=True)
def remove_suppression(
    *, actor: User, account: Account, suppression_id: int, real_actor: User | None = None
) -> Suppression:
    """A person lifts one entry of a list `account` manages (its own, or a master's subaccount's): mail
    to the address is accepted again. Raises Suppression.DoesNotExist (no such entry in those lists),
    PermissionDenied (a viewer)."""
    entry = (
        Suppression.objects.select_for_update(of=("self",))
        .select_related("account")
        .filter(_visible_to(account))
        .get(pk=suppression_id)
    )
    require_role(actor, account, Membership.Role.ADMIN)
    entry.delete()
    record(
        actor=actor, real_actor=real_actor, account=entry.account, action="suppression.removed",
        before={"email": entry.email, "reason": entry.reason, "detail": entry.detail[:200]},
    )  # fmt: skip
    return entry


@transaction.atomic(durable=True)
def add_suppression(
    *, actor: User, account: Account, owner: Account, email: str, comment: str = "",
    real_actor: User | None = None,
) -> bool:  # fmt: skip
    """A person adds an address to `owner`'s list by hand (reason `custom`). Returns False when the
    allowlist keeps it off. Raises PermissionDenied (a viewer), ValidationError (not one address)."""
    require_role(actor, account, Membership.Role.ADMIN)
    added = suppress(account=owner, email=email, reason=Suppression.Reason.CUSTOM, detail=comment[:255])
    if added:
        record(
            actor=actor, real_actor=real_actor, account=owner, action="suppression.added",
            after={"email": _clean(email), "reason": Suppression.Reason.CUSTOM},
        )  # fmt: skip
    return added
