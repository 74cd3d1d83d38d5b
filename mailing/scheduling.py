"""Scheduled sends (`send_at`): counted against the quota when accepted (so one that was accepted is
never refused later, and never more than the allowance is promised), stored `scheduled`, released by a
periodic task when their time comes (mailing.delivery.release_scheduled), and cancellable until then,
which gives the quota back."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import QuerySet

from accounts.models import Account
from accounts.quota import release_quota

from .models import Message


def scheduled_for(account: Account, *, to: str = "") -> QuerySet[Message]:
    """The account's scheduled messages (a master's include its subaccounts'), soonest first."""
    found = Message.objects.for_account(account).filter(status=Message.Status.SCHEDULED)
    if to:
        found = found.filter(to_email__iexact=to)
    return found.select_related("account").order_by("send_at", "pk")


def _scheduled(account: Account, public_id: str) -> Message:
    """One of the account's scheduled messages, locked. Raises Message.DoesNotExist (unknown, another
    tenant's, or already on its way)."""
    return (
        Message.objects.for_account(account)
        .select_for_update(of=("self",))
        .select_related("account", "account__parent")
        .get(public_id=public_id, status=Message.Status.SCHEDULED)
    )


@transaction.atomic(durable=True)
def cancel_scheduled(*, account: Account, public_id: str) -> Message:
    """Cancel one scheduled message before it leaves; its quota is given back to the hour and month it
    was counted in. Returns the message as it was (its row is gone)."""
    message = _scheduled(account, public_id)
    release_quota(account=message.account, n=1, counted_at=message.created_at)
    message.delete()
    return message


@transaction.atomic(durable=True)
def reschedule(*, account: Account, public_id: str, send_at: datetime) -> Message:
    """Move a scheduled message; a time in the past sends it at the next release (within a minute)."""
    message = _scheduled(account, public_id)
    message.send_at = message.next_attempt_at = send_at
    message.save(update_fields=["send_at", "next_attempt_at"])
    return message
