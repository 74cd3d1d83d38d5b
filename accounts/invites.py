"""Invitations: how a subaccount's owner gets their first password.

The token exists only in the email; the database keeps its SHA-256. An invitation is bound to the
address it was sent to, valid INVITE_VALID_HOURS, replaced by a resend, and consumed by one conditional
UPDATE so that two tabs (or two people) cannot both use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import timezone

from . import emails
from .audit import record
from .errors import ValidationError
from .models import Account, Invitation, User
from .tokens import hash_secret, new_secret


class InviteState(StrEnum):
    VALID = "valid"
    UNKNOWN = "unknown"  # garbage, tampered, or never issued
    EXPIRED = "expired"
    USED = "used"
    REPLACED = "replaced"


class InviteNotUsable(Exception):
    def __init__(self, state: InviteState) -> None:
        super().__init__(state.value)
        self.state = state


@dataclass(frozen=True)
class InviteLookup:
    state: InviteState
    invitation: Invitation | None = None


def issue_invitation(*, account: Account, user: User) -> str:
    """Replace any open invitation of `user` with a new one and send it after commit. Returns the token
    (callers only need it in tests: it is not stored). Must run inside the caller's transaction."""
    now = timezone.now()
    Invitation.objects.filter(user=user, accepted_at__isnull=True, replaced_at__isnull=True).update(
        replaced_at=now
    )
    token = new_secret()
    Invitation.objects.create(
        account=account,
        user=user,
        email=user.email,
        token_hash=hash_secret(token),
        expires_at=now + timedelta(hours=settings.INVITE_VALID_HOURS),
    )
    transaction.on_commit(lambda: emails.send_invite(account=account, email=user.email, token=token))
    return token


def look_up(token: str) -> InviteLookup:
    """What a link's token is worth, for the page that shows it. Never says whose it is."""
    if not token or len(token) > 128:
        return InviteLookup(InviteState.UNKNOWN)
    invitation = (
        Invitation.objects.select_related("account", "user").filter(token_hash=hash_secret(token)).first()
    )
    if invitation is None:
        return InviteLookup(InviteState.UNKNOWN)
    # A password set another way (a reset link sent meanwhile) uses the invite up: it must not set it again.
    if invitation.accepted_at is not None or invitation.user.has_usable_password():
        return InviteLookup(InviteState.USED, invitation)
    if invitation.replaced_at is not None or invitation.email != invitation.user.email:
        return InviteLookup(InviteState.REPLACED, invitation)
    if invitation.expires_at <= timezone.now():
        return InviteLookup(InviteState.EXPIRED, invitation)
    return InviteLookup(InviteState.VALID, invitation)


@transaction.atomic(durable=True)
def accept_invite(*, token: str, password: str) -> User:
    """Consume the invitation, set the owner's password and mark their address verified.
    Raises InviteNotUsable (with the reason) or ValidationError (a weak password: the link stays usable)."""
    lookup = look_up(token)
    if lookup.state is not InviteState.VALID:
        raise InviteNotUsable(lookup.state)
    user = lookup.invitation.user
    try:
        password_validation.validate_password(password, user)
    except DjangoValidationError as exc:
        raise ValidationError(" ".join(exc.messages), field="password1") from exc
    now = timezone.now()
    consumed = Invitation.objects.filter(
        pk=lookup.invitation.pk, accepted_at__isnull=True, replaced_at__isnull=True, expires_at__gt=now
    ).update(accepted_at=now)
    if consumed != 1:  # another tab got there first
        raise InviteNotUsable(InviteState.USED)
    user.set_password(password)
    user.save(update_fields=["password"])
    EmailAddress.objects.update_or_create(
        user=user, email=user.email, defaults={"verified": True, "primary": True}
    )
    record(
        actor=user, account=lookup.invitation.account, action="invite.accepted", after={"email": user.email}
    )
    return user
