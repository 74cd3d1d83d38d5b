"""`subaccounts/*`: a master's programs manage its customers through the same services as its staff."""

from __future__ import annotations

from typing import Any

from accounts import lifecycle
from accounts.errors import PermissionDenied, UnknownSubaccount
from accounts.models import Account
from accounts.reputation import health_of
from accounts.selectors import sending_stats, subaccounts_by_prefix
from accounts.validation import EMAIL_MAX_LENGTH, NAME_MAX_LENGTH, NOTES_MAX_LENGTH

from .objects import subaccount_object
from .registry import api_call
from .wire import Call

LIST_LIMIT = 1000


def _master_of(call: Call) -> Account:
    if not call.account.is_master:
        raise PermissionDenied("Only a master account's API keys can manage subaccounts.")
    return call.account


def _named_subaccount(call: Call) -> Account:
    """The subaccount the call's `id` names, among the key's master's. Raises UnknownSubaccount."""
    public_id = call.string("id", required=True, max_length=NAME_MAX_LENGTH)
    subaccount = Account.objects.subaccounts_of(_master_of(call)).filter(public_id=public_id).first()
    if subaccount is None:
        raise UnknownSubaccount(public_id)
    return subaccount


def _subaccount_answer(subaccount: Account, *, detailed: bool = False) -> dict:
    """The subaccount as it is now (after the service's change), with its sending stats."""
    subaccount.refresh_from_db()
    health = health_of([subaccount.pk])[subaccount.pk]
    return subaccount_object(
        subaccount,
        sending_stats([subaccount]).get(subaccount.pk),
        detailed=detailed,
        reputation=health.reputation,
    )


@api_call("subaccounts", "list")
def list_subaccounts(call: Call) -> Any:
    master = _master_of(call)
    prefix = call.string("q", max_length=NAME_MAX_LENGTH)
    subaccounts = list(subaccounts_by_prefix(master, prefix)[:LIST_LIMIT])
    stats = sending_stats(subaccounts)
    health = health_of([account.pk for account in subaccounts])
    return [
        subaccount_object(account, stats.get(account.pk), reputation=health[account.pk].reputation)
        for account in subaccounts
    ]


@api_call("subaccounts", "add")
def add(call: Call) -> Any:
    public_id = call.string("id", required=True, max_length=NAME_MAX_LENGTH)
    subaccount = lifecycle.create_subaccount(
        actor=call.caller,
        master=_master_of(call),
        public_id=public_id,
        name=call.string("name", max_length=NAME_MAX_LENGTH) or public_id,
        notes=call.string("notes", max_length=NOTES_MAX_LENGTH),
        hourly_limit=call.integer("custom_quota", minimum=1),
        monthly_limit=call.integer("monthly_quota", minimum=1),
        contact_email=call.string("owner_email", max_length=EMAIL_MAX_LENGTH) or None,
    )
    return _subaccount_answer(subaccount)


@api_call("subaccounts", "info")
def info(call: Call) -> Any:
    return _subaccount_answer(_named_subaccount(call), detailed=True)


# Mandrill's parameter → our field, and how long a string may be (None: a whole number).
UPDATABLE = {
    "name": ("name", NAME_MAX_LENGTH),
    "notes": ("notes", NOTES_MAX_LENGTH),
    "owner_email": ("contact_email", EMAIL_MAX_LENGTH),
    "custom_quota": ("hourly_limit", None),
    "monthly_quota": ("monthly_limit", None),
}


@api_call("subaccounts", "update")
def update(call: Call) -> Any:
    subaccount = _named_subaccount(call)
    changes = {
        field: call.string(param, max_length=length) if length else call.integer(param, minimum=1)
        for param, (field, length) in UPDATABLE.items()
        if call.has(param)
    }
    if changes:
        lifecycle.update_subaccount(
            actor=call.caller, master=call.account, subaccount_id=subaccount.pk, changes=changes
        )
    return _subaccount_answer(subaccount)


@api_call("subaccounts", "delete")
def delete(call: Call) -> Any:
    subaccount = _named_subaccount(call)
    answer = _subaccount_answer(subaccount)
    lifecycle.delete_subaccount(actor=call.caller, master=call.account, subaccount_id=subaccount.pk)
    return answer


def _apply(call: Call, service, **options) -> Account:
    """Run one lifecycle service on the named subaccount, as the key (the audit trail names it)."""
    subaccount = _named_subaccount(call)
    service(actor=call.caller, master=call.account, subaccount_id=subaccount.pk, **options)
    return subaccount


@api_call("subaccounts", "pause")
def pause(call: Call) -> Any:
    # Pausing a paused subaccount is not an error in Mandrill: `if_needed` decides that under the lock.
    return _subaccount_answer(_apply(call, lifecycle.pause_subaccount, if_needed=True))


@api_call("subaccounts", "resume")
def resume(call: Call) -> Any:
    return _subaccount_answer(_apply(call, lifecycle.resume_subaccount, if_needed=True))
