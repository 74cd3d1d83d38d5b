"""`rejects/*` (the suppression list) and `allowlists/*` (with `whitelists/*`, the older name old clients
still call). A master's key manages a subaccount's rejects with `subaccount`; allowlists are the key's
own account's, as in Mandrill."""

from __future__ import annotations

from typing import Any

from accounts.models import Account

from ..deliverability import suppression
from ..sending import account_named
from .objects import allowlist_object, rejection_object
from .registry import api_call
from .wire import Call

EMAIL_CHARS = 254


def _list_owner(call: Call) -> Account:
    """Whose list: the key's account, or (a master's key) the subaccount it names."""
    subaccount_id = call.string("subaccount", max_length=255).strip()
    return account_named(account=call.account, subaccount_id=subaccount_id)


@api_call("rejects", "add")
def add_reject(call: Call) -> Any:
    email = call.string("email", required=True, max_length=EMAIL_CHARS)
    owner = _list_owner(call)
    added = suppression.suppress(
        account=owner,
        email=email,
        reason="custom",
        detail=call.string("comment", max_length=255),
        actor=call.caller,
    )
    return {"email": email, "added": added}


@api_call("rejects", "list")
def list_rejects(call: Call) -> Any:
    owner = _list_owner(call)
    include_expired = call.params.get("include_expired") is True
    found = suppression.suppressions_for(
        owner, email=call.string("email", max_length=EMAIL_CHARS), include_expired=include_expired
    )
    return [rejection_object(entry, owner) for entry in found[: suppression.MAX_LIST]]


@api_call("rejects", "delete")
def delete_reject(call: Call) -> Any:
    email = call.string("email", required=True, max_length=EMAIL_CHARS)
    owner = _list_owner(call)
    suppression.unsuppress(account=owner, email=email, actor=call.caller)
    return {"email": email, "deleted": True, "subaccount": owner.public_id if owner.is_subaccount else None}


def _add_allowed(call: Call) -> Any:
    email = call.string("email", required=True, max_length=EMAIL_CHARS)
    suppression.allow(
        account=call.account, email=email, detail=call.string("comment", max_length=255), actor=call.caller
    )
    return {"email": email, "added": True}


def _list_allowed(call: Call) -> Any:
    found = suppression.allowlist_for(call.account, email=call.string("email", max_length=EMAIL_CHARS))
    return [allowlist_object(entry) for entry in found[: suppression.MAX_LIST]]


def _delete_allowed(call: Call) -> Any:
    email = call.string("email", required=True, max_length=EMAIL_CHARS)
    return {
        "email": email,
        "deleted": suppression.disallow(account=call.account, email=email, actor=call.caller),
    }


for group in ("allowlists", "whitelists"):
    api_call(group, "add")(_add_allowed)
    api_call(group, "list")(_list_allowed)
    api_call(group, "delete")(_delete_allowed)
