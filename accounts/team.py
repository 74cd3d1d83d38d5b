"""An account's team: who may log in to it, and with which role (DESIGN.md, "the team").

An agency's owners invite staff as owners, admins or viewers; its admins invite admins and viewers;
viewers only look. A customer's (subaccount's) owner and admins manage their own team the same way,
except that a subaccount has exactly one owner: the login its contact email names. Invitations are the
subaccount owners' (accounts/invites.py): a new member gets a login without a password and a link to
set one. Every change locks the account's row first, so two owners demoting each other at once cannot
leave the account without one.
"""

from __future__ import annotations

from allauth.account.models import EmailAddress
from django.db import IntegrityError, transaction

from . import invites
from .audit import record
from .errors import InvalidTransition, PermissionDenied, ValidationError
from .models import Account, Membership, User
from .permissions import require_role
from .validation import clean_contact_email

Role = Membership.Role


def team_of(account: Account) -> list[Membership]:
    """The account's members, owners first, with whether each has accepted their invite."""
    order = {Role.OWNER: 0, Role.ADMIN: 1, Role.VIEWER: 2}
    members = Membership.objects.filter(account=account).select_related("user")
    return sorted(members, key=lambda m: (order[m.role], m.user.email))


def roles_grantable_by(actor_role: str | None, account: Account) -> list[str]:
    """The roles `actor_role` may give in `account` (for the page's choices; the services decide)."""
    if actor_role == Role.OWNER and not account.is_subaccount:
        return [Role.OWNER, Role.ADMIN, Role.VIEWER]
    if actor_role in (Role.OWNER, Role.ADMIN):
        return [Role.ADMIN, Role.VIEWER]
    return []


def _lock(account: Account) -> Account:
    return Account.objects.select_for_update().get(pk=account.pk)


def _actor_role(actor: User, account: Account) -> str:
    require_role(actor, account, Role.ADMIN)
    return Membership.objects.get(user=actor, account=account).role


def _require_may_grant(actor_role: str, account: Account, role: str) -> None:
    if role not in Role.values:
        raise ValidationError("Choose owner, admin or viewer.", field="role")
    if role not in roles_grantable_by(actor_role, account):
        if account.is_subaccount and role == Role.OWNER:
            raise PermissionDenied("This account has one owner: the login its contact email names.")
        raise PermissionDenied("Only an owner can make someone an owner.")


def _require_may_touch(actor_role: str, target: Membership) -> None:
    if target.role == Role.OWNER and actor_role != Role.OWNER:
        raise PermissionDenied("Only an owner can change or remove an owner.")
    if target.account.is_subaccount and target.role == Role.OWNER:
        raise PermissionDenied("The owner of this account is its contact: they cannot be changed here.")


def _require_another_owner(account: Account, target: Membership) -> None:
    if (
        target.role == Role.OWNER
        and not account.memberships.filter(role=Role.OWNER).exclude(pk=target.pk).exists()
    ):
        raise PermissionDenied(
            f"{target.user.email} is the last owner of {account.name}: make someone else an owner first."
        )


@transaction.atomic(durable=True)
def invite_member(
    *, actor: User, account: Account, email: str, role: str, real_actor: User | None = None
) -> Membership:
    """Give `email` a login in `account` with `role` and send them an invite to set their password.
    Raises PermissionDenied (a viewer; an admin granting owner; an owner for a subaccount),
    ValidationError (a bad address, or one that already has a login: a login belongs to one account)."""
    account = _lock(account)
    actor_role = _actor_role(actor, account)
    _require_may_grant(actor_role, account, role)
    email = clean_contact_email(email)
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationError(
            "This address already has a login here; each person needs an address of their own.", field="email"
        )
    try:
        with transaction.atomic():
            user = User.objects.create_user(email=email)
            membership = Membership.objects.create(user=user, account=account, role=role)
    except IntegrityError:  # a concurrent invite took the address between the check and the insert
        raise ValidationError("This address was just given a login.", field="email") from None
    EmailAddress.objects.create(user=user, email=email, primary=True, verified=False)
    invites.issue_invitation(account=account, user=user)
    record(
        actor=actor,
        real_actor=real_actor,
        account=account,
        action="team.invited",
        after={"email": email, "role": role},
    )
    return membership


@transaction.atomic(durable=True)
def change_role(
    *, actor: User, account: Account, membership_id: int, role: str, real_actor: User | None = None
) -> Membership:
    """Give a member another role. Raises Membership.DoesNotExist (not this account's member),
    PermissionDenied (see invite_member; an admin touching an owner; the last owner demoted),
    ValidationError (no such role)."""
    account = _lock(account)
    target = Membership.objects.select_related("user", "account").get(account=account, pk=membership_id)
    actor_role = _actor_role(actor, account)
    _require_may_touch(actor_role, target)
    _require_may_grant(actor_role, account, role)
    if target.role == role:
        return target
    if role != Role.OWNER:
        _require_another_owner(account, target)
    before = target.role
    target.role = role
    target.save(update_fields=["role"])
    record(actor=actor, real_actor=real_actor, account=account, action="team.role_changed",
           before={"email": target.user.email, "role": before}, after={"email": target.user.email, "role": role})  # fmt: skip
    return target


@transaction.atomic(durable=True)
def remove_member(
    *, actor: User, account: Account, membership_id: int, real_actor: User | None = None
) -> None:
    """Take a member's access away; their login goes with it (a login belongs to one account).
    Raises Membership.DoesNotExist, PermissionDenied (an admin removing an owner; the last owner)."""
    account = _lock(account)
    target = Membership.objects.select_related("user", "account").get(account=account, pk=membership_id)
    actor_role = _actor_role(actor, account)
    _require_may_touch(actor_role, target)
    _require_another_owner(account, target)
    user = target.user
    record(actor=actor, real_actor=real_actor, account=account,
           action="team.removed", before={"email": user.email, "role": target.role})  # fmt: skip
    target.delete()
    if not Membership.objects.filter(user=user).exists():
        user.delete()


@transaction.atomic(durable=True)
def resend_member_invite(
    *, actor: User, account: Account, membership_id: int, real_actor: User | None = None
) -> Membership:
    """Send a member who has not set a password yet a fresh invite (the old link then says it was
    replaced). Raises Membership.DoesNotExist, PermissionDenied (a viewer; an admin for an owner),
    InvalidTransition (they have accepted already)."""
    account = _lock(account)
    target = Membership.objects.select_related("user", "account").get(account=account, pk=membership_id)
    actor_role = _actor_role(actor, account)
    _require_may_touch(actor_role, target)
    if target.user.has_usable_password():
        raise InvalidTransition(f"{target.user.email} has accepted their invite already.")
    invites.issue_invitation(account=account, user=target.user)
    record(actor=actor, real_actor=real_actor, account=account, action="invite.resent",
           after={"email": target.user.email})  # fmt: skip
    return target
