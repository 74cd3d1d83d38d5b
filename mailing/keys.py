"""API keys: a program's credential for one account. The secret is shown once; only its hash is kept."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.audit import record
from accounts.errors import DomainError, InvalidTransition, ValidationError
from accounts.models import Account, Membership, User
from accounts.permissions import require_not_impersonating, require_role
from accounts.tokens import hash_secret
from accounts.validation import UNSTORABLE_HELP, is_storable
from reseller.process_cache import TTLCache

from .models import ApiKey

KEY_PREFIX = "md-"
MAX_SECRET_LENGTH = 200


class InvalidKey(DomainError):
    """No live key has this secret, or its account may no longer use the API."""


# The keys this process found lately, by the secret's hash, each kept for API_KEY_CACHE_SECONDS: a
# program's every call would otherwise pay one query (and the ORM's compiling of it) to learn what it
# learnt a moment ago. The price is staleness, bounded by the TTL: a key revoked in another process, or
# its account closed, keeps working here for at most that many seconds (a revocation made in this
# process drops the entry at once). Only live keys are kept: a wrong secret always costs its query, and
# the endpoint throttles wrong secrets per address.
key_cache: TTLCache[ApiKey] = TTLCache(lambda: settings.API_KEY_CACHE_SECONDS)


def lookup_api_key(secret: object) -> ApiKey | None:
    """The live (not revoked) key with this secret, with its account, by the secret's hash: one
    indexed query, or none when this process found the key less than API_KEY_CACHE_SECONDS ago (so a
    revocation or a closed account takes effect within that many seconds). None for anything that is
    not such a secret."""
    if not isinstance(secret, str) or not secret or len(secret) > MAX_SECRET_LENGTH:
        return None
    key_hash = hash_secret(secret)
    api_key = key_cache.get(key_hash)
    if api_key is None:
        api_key = (
            ApiKey.objects.select_related("account", "account__parent")
            .filter(key_hash=key_hash, revoked_at__isnull=True)
            .first()
        )
        if api_key is not None:
            key_cache.put(key_hash, api_key)
    return api_key


def authenticate_key(secret: object) -> ApiKey:
    """The key a program presents, over HTTP or as an SMTP password. Raises InvalidKey when there is no
    such live key or its account is closed (a closed account's programs are shut out, not just its sends)."""
    api_key = lookup_api_key(secret)
    if api_key is None:
        raise InvalidKey("Invalid API key")
    if api_key.account.status == Account.Status.CLOSED:
        raise InvalidKey("This API key belongs to a closed account.")
    return api_key


def note_key_used(api_key: ApiKey) -> None:
    """Keep last_used_at to the minute: at most one write a minute per key, so it is never a hot row."""
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > timedelta(minutes=1):
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        key_cache.update(api_key.key_hash, lambda cached: setattr(cached, "last_used_at", now))


@transaction.atomic(durable=True)
def create_api_key(
    *, actor: User, account: Account, label: str, real_actor: User | None = None
) -> tuple[ApiKey, str]:
    """Make a key for `account` and return it with its secret (shown to the user once, never stored).
    Raises PermissionDenied (not an owner/admin, or impersonating) or ValidationError (label)."""
    require_not_impersonating(real_actor, "Creating an API key")
    require_role(actor, account, Membership.Role.ADMIN)
    label = (label or "").strip()
    if not is_storable(label):
        raise ValidationError(f"The label {UNSTORABLE_HELP}.", field="label")
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
    """Stop a key from working: at once in this process, within API_KEY_CACHE_SECONDS (5 s) in the
    others, which may hold it in their key cache. Raises ApiKey.DoesNotExist (not this account's),
    PermissionDenied, InvalidTransition (already revoked)."""
    api_key = ApiKey.objects.for_account(account).select_for_update().get(pk=key_id)
    require_role(actor, account, Membership.Role.ADMIN)
    if api_key.revoked_at is not None:
        raise InvalidTransition(f"The key “{api_key.label}” is already revoked.")
    api_key.revoked_at = timezone.now()
    api_key.save(update_fields=["revoked_at"])
    # This process stops at once; the others when their cached copy expires (API_KEY_CACHE_SECONDS).
    transaction.on_commit(lambda: key_cache.forget(api_key.key_hash))
    record(
        actor=actor, real_actor=real_actor, account=account, action="api_key.revoked",
        after={"label": api_key.label, "prefix": api_key.prefix},
    )  # fmt: skip
    return api_key
