"""Who may do what inside an account. Services call these after fetching inside the tenant."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import PermissionDenied
from .models import Account, Membership, User


@dataclass(frozen=True)
class ApiCaller:
    """A program acting with one account's API key. It may do what the account's admins may do, on
    that account only; the audit trail names the key instead of a person."""

    account: Account
    label: str

    @property
    def email(self) -> str:  # what the audit trail shows as the actor
        return self.label

    @property
    def pk(self) -> None:
        return None


@dataclass(frozen=True)
class Operator:
    """One of the service's own staff acting from the admin. The lifecycle services accept them as an
    admin of any account (they are the service's operators: support, abuse, unpaid bills), and the audit
    trail names the person and says they acted as an operator."""

    user: User

    def __post_init__(self) -> None:
        if not (self.user.is_active and self.user.is_staff):
            raise PermissionDenied("Only the service's operators can act from the admin.")

    @property
    def email(self) -> str:  # what the audit trail shows as the actor
        return f"{self.user.email} (operator)"

    @property
    def pk(self) -> int:
        return self.user.pk


_RANK = {Membership.Role.VIEWER: 0, Membership.Role.ADMIN: 1, Membership.Role.OWNER: 2}


def role_of(user: User | ApiCaller | Operator, account: Account) -> str | None:
    if isinstance(user, ApiCaller):
        return Membership.Role.ADMIN if user.account.pk == account.pk else None
    if isinstance(user, Operator):
        return Membership.Role.ADMIN
    membership = Membership.objects.filter(user=user, account=account).only("role").first()
    return membership.role if membership else None


def require_role(actor: User | ApiCaller | Operator, account: Account, minimum: str) -> None:
    """Raise PermissionDenied unless `actor` is a member of `account` with at least `minimum`."""
    role = role_of(actor, account)
    if role is None or _RANK[role] < _RANK[minimum]:
        needed = "an owner" if minimum == Membership.Role.OWNER else "an owner or admin"
        raise PermissionDenied(f"Only {needed} of {account.name} can do that.")


def require_not_impersonating(real_actor: User | None, what: str) -> None:
    """Sensitive actions belong to the account's own people, never to an agency visiting as them."""
    if real_actor is not None:
        raise PermissionDenied(f"{what} is not allowed while you are logged in as someone else.")
