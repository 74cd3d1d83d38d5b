"""API keys: a program's credential for one account. The secret is shown once; only its hash is kept."""

from __future__ import annotations

import secrets

from django.db import transaction
from django.utils import timezone

from accounts.audit import record
from accounts.errors import InvalidTransition, ValidationError
from accounts.models import Account, Membership, User
from accounts.permissions import require_not_impersonating, require_role
from accounts.tokens import hash_secret

from .models import ApiKey

KEY_PREFIX = "md-"


@transaction.atomic(durable=True)
def create_api_key(
    *, actor: User, account: Account, label: str, real_actor: User | None = None
) -> tuple[ApiKey, str]:
    """Make a key for `account` and return it with its secret (shown to the user once, never stored).
    Raises PermissionDenied (not an owner/admin, or impersonating) or ValidationError (label)."""
    require_not_impersonating(real_actor, "Creating an API key")
    require_role(actor, account, Membership.Role.ADMIN)
    label = (label or "").strip()
    if not label or len(label) > 100:
        raise ValidationError(
            "Give the key a label of at most 100 characters, e.g. “Shop production”.", field="label"
        )
    secret = KEY_PREFIX + secrets.token_urlsafe(24)
    api_key = ApiKey.objects.create(
        account=account, label=label, prefix=secret[:10], key_hash=hash_secret(secret)
    )
    record(
        actor=actor,
        account=account,
        action="api_key.created",
        after={"label": label, "prefix": api_key.prefix},
    )
    return api_key, secret


@transaction.atomic(durable=True)
def revoke_api_key(*, actor: User, account: Account, key_id: int, real_actor: User | None = None) -> ApiKey:
    """Stop a key from working, at once. Raises ApiKey.DoesNotExist (not this account's), PermissionDenied,
    InvalidTransition (already revoked)."""
    api_key = ApiKey.objects.for_account(account).select_for_update().get(pk=key_id)
    require_role(actor, account, Membership.Role.ADMIN)
    if api_key.revoked_at is not None:
        raise InvalidTransition(f"The key “{api_key.label}” is already revoked.")
    api_key.revoked_at = timezone.now()
    api_key.save(update_fields=["revoked_at"])
    record(
        actor=actor, real_actor=real_actor, account=account, action="api_key.revoked",
        after={"label": api_key.label, "prefix": api_key.prefix},
    )  # fmt: skip
    return api_key
