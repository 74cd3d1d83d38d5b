"""Who may do what inside an account. Services call these after fetching inside the tenant."""

from .errors import PermissionDenied
from .models import Account, Membership, User

_RANK = {Membership.Role.VIEWER: 0, Membership.Role.ADMIN: 1, Membership.Role.OWNER: 2}


def role_of(user: User, account: Account) -> str | None:
    membership = Membership.objects.filter(user=user, account=account).only("role").first()
    return membership.role if membership else None


def require_role(actor: User, account: Account, minimum: str) -> None:
    """Raise PermissionDenied unless `actor` is a member of `account` with at least `minimum`."""
    role = role_of(actor, account)
    if role is None or _RANK[role] < _RANK[minimum]:
        needed = "an owner" if minimum == Membership.Role.OWNER else "an owner or admin"
        raise PermissionDenied(f"Only {needed} of {account.name} can do that.")


def require_not_impersonating(real_actor: User | None, what: str) -> None:
    """Sensitive actions belong to the account's own people, never to an agency visiting as them."""
    if real_actor is not None:
        raise PermissionDenied(f"{what} is not allowed while you are logged in as someone else.")
