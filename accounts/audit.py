"""The audit trail: one row per thing that happened to an account."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from .models import Account, AuditEvent, User

# Set per request by CurrentAccountMiddleware: services record where an action came from without
# every call site threading the request through.
client_ip: ContextVar[str | None] = ContextVar("client_ip", default=None)


def record(
    *,
    actor: User | None,
    account: Account,
    action: str,
    real_actor: User | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    ip_address: str | None = None,
) -> AuditEvent:
    """Write an AuditEvent. `real_actor` is the agency user behind an impersonation, if any.
    The master is stored too, so the agency's trail outlives a deleted subaccount."""
    master_id = account.parent_id if account.is_subaccount else (account.pk if account.is_master else None)
    person = actor if isinstance(actor, User) else getattr(actor, "user", None)  # an Operator's person
    return AuditEvent.objects.create(
        actor=person,
        actor_label=actor.email if actor else "system",
        real_actor=real_actor,
        real_actor_label=real_actor.email if real_actor else "",
        account=account,
        account_label=str(account),
        master_id=master_id,
        action=action,
        before=before or {},
        after=after or {},
        ip_address=ip_address or client_ip.get(),
    )


def diff(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the fields that changed, as (before, after)."""
    changed = [key for key in after if before.get(key) != after[key]]
    return {key: before.get(key) for key in changed}, {key: after[key] for key in changed}
