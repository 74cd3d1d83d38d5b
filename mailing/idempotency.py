"""Idempotency keys: a client that timed out may send the same call again with the same key, and gets
the first answer instead of a second copy of every message (within IDEMPOTENCY_HOURS).

The key is claimed inside the accept transaction, before the quota is reserved, and the answer is
written in that same transaction: either the messages and the answer exist, or neither does. A call
that was refused (over quota, unsigned) stored nothing, so its repeat is simply decided again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.errors import ValidationError
from accounts.models import Account
from accounts.validation import is_storable

from .models import IdempotentCall
from .outgoing import OutgoingMessage, RecipientResult

MAX_KEY_LENGTH = 255


class RepeatedCall(Exception):
    def __init__(self, answer: list[RecipientResult]) -> None:
        super().__init__("repeated idempotency key")
        self.answer = answer


def clean_key(key: str | None) -> str | None:
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not is_storable(key):
        raise ValidationError(
            f"An idempotency key is 1 to {MAX_KEY_LENGTH} characters, such as a UUID.",
            field="idempotency_key",
        )
    return key


def fingerprint(message: OutgoingMessage) -> str:
    """The request, reduced to a hash: the same key with another message is the client's mistake."""
    canonical = json.dumps(asdict(message), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _fresh_since(now: datetime) -> datetime:
    return now - timedelta(hours=settings.IDEMPOTENCY_HOURS)


def _answer_of(call: IdempotentCall, print_: str) -> list[RecipientResult]:
    if call.fingerprint != print_:
        raise ValidationError(
            "This idempotency key was already used for a different message. Use a new key for a new send.",
            field="idempotency_key",
        )
    return [RecipientResult(**result) for result in call.answer]


def previous_answer(*, account: Account, key: str, message: OutgoingMessage, now: datetime) -> list | None:
    """The answer already given to this key, if any (the cheap path for a retry, before any work)."""
    call = IdempotentCall.objects.filter(account=account, key=key, created_at__gte=_fresh_since(now)).first()
    return _answer_of(call, fingerprint(message)) if call else None


def claim(*, account: Account, key: str, message: OutgoingMessage, now: datetime) -> IdempotentCall:
    """Take the key for this call, inside the caller's transaction. If a concurrent call with the same key
    committed first, raise RepeatedCall with its answer (our insert waited for it on the unique index).
    A key older than IDEMPOTENCY_HOURS is taken over."""
    print_ = fingerprint(message)
    try:
        with transaction.atomic():
            return IdempotentCall.objects.create(account=account, key=key, fingerprint=print_, created_at=now)
    except IntegrityError:
        existing = IdempotentCall.objects.select_for_update().get(account=account, key=key)
    if existing.created_at >= _fresh_since(now):
        raise RepeatedCall(_answer_of(existing, print_))
    existing.fingerprint, existing.created_at, existing.answer = print_, now, []
    existing.save(update_fields=["fingerprint", "created_at", "answer"])
    return existing


def record_answer(call: IdempotentCall, answer: list[RecipientResult]) -> None:
    call.answer = [asdict(result) for result in answer]
    call.save(update_fields=["answer"])


def purge_idempotent_calls(*, now: datetime | None = None) -> int:
    """Forget keys older than IDEMPOTENCY_HOURS; returns how many."""
    deleted, _ = IdempotentCall.objects.filter(created_at__lt=_fresh_since(now or timezone.now())).delete()
    return deleted
