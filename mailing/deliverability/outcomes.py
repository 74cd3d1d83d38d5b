"""What became of a message after it left: delivered, bounced (hard or soft) or complained about. Each
outcome is an event on the message, a counter in the account's hourly Usage (what dashboards and the
reputation read), and, for the recipient's sake, a suppression: a hard bounce or a complaint at once,
soft bounces after SOFT_BOUNCES_TO_SUPPRESS in SOFT_BOUNCE_WINDOW_DAYS, for that many days."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts import reputation
from accounts.quota import count_outcome

from .. import partitions
from ..models import Message, MessageEvent
from ..webhooks.tasks import events_recorded
from . import suppression

Kind = MessageEvent.Kind
# The event, the Usage counter it moves, and the suppression reason it gives (None: none at once).
OUTCOME_OF = {
    Kind.HARD_BOUNCE: ("hard_bounced", "hard-bounce"),
    Kind.SOFT_BOUNCE: ("soft_bounced", None),
    Kind.SPAM: ("complained", "spam"),
}


def record_delivered(messages: list[Message], *, at: datetime) -> None:
    """The relay took these: a `send` event each and the accounts' delivered counters (one query each)."""
    if not messages:
        return
    _add_send_events(messages, at=at)
    by_account = Counter(m.account_id for m in messages)
    events_recorded(by_account.keys())
    accounts = {m.account_id: m.account for m in messages}
    for account_id, n in by_account.items():
        count_outcome(account=accounts[account_id], outcome="delivered", n=n, now=at)


def _add_send_events(messages: list[Message], *, at: datetime) -> None:
    """A `send` event per message. On PostgreSQL, one INSERT over two arrays (the messages and their
    accounts), in their order: making and preparing a batch's fifty rows for bulk_create cost more than
    the rest of recording it."""
    if connection.vendor != "postgresql":
        MessageEvent.objects.bulk_create(
            MessageEvent(message=m, account_id=m.account_id, kind=Kind.SEND, created_at=at) for m in messages
        )
        return
    quote = connection.ops.quote_name
    columns = ", ".join(
        quote(MessageEvent._meta.get_field(name).column)
        for name in ("message", "account", "kind", "created_at", "diagnostic", "data")
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(MessageEvent._meta.db_table)} ({columns}) "  # nosec B608: our model's names
            "SELECT message_id, account_id, %s, %s, '', '{}'::jsonb "
            "FROM unnest(%s::bigint[], %s::bigint[]) WITH ORDINALITY AS sent(message_id, account_id, n) ORDER BY n",
            [Kind.SEND.value, at, [m.pk for m in messages], [m.account_id for m in messages]],
        )


def record_rejected(messages: list[Message], *, reason: str, at: datetime) -> None:
    """These stored messages were rejected after all (held too long): a `reject` event each and the
    accounts' rejected counters."""
    if not messages:
        return
    MessageEvent.objects.bulk_create(
        MessageEvent(
            message=m,
            account_id=m.account_id,
            kind=Kind.REJECT,
            created_at=at,
            diagnostic=reason,
            data={"reason": reason},
        )
        for m in messages
    )
    by_account = Counter(m.account_id for m in messages)
    accounts = {m.account_id: m.account for m in messages}
    for account_id, n in by_account.items():
        count_outcome(account=accounts[account_id], outcome="rejected", n=n, now=at)


def record_deferral(message: Message, *, diagnostic: str, retry_at: datetime) -> MessageEvent:
    """A delivery attempt failed for now (a 4xx, or the relay out of reach) and will be tried again at
    `retry_at`: a `deferral` event per attempt (Mandrill's), no counter (a deferral is not an outcome)."""
    return MessageEvent.objects.create(
        message=message, account_id=message.account_id, kind=Kind.DEFERRAL, diagnostic=diagnostic[:1000],
        data={"attempt": message.attempts, "retry_at": retry_at.isoformat()},
    )  # fmt: skip


@transaction.atomic
def record_bounce(
    message: Message, *, kind: str, diagnostic: str, data: dict | None = None
) -> MessageEvent | None:
    """A hard or soft bounce, or a complaint, for `message`. A report for the same message and kind that
    came before (receivers resend DSNs) changes nothing and returns None."""
    message = (
        Message.objects.select_for_update(of=("self",))
        .select_related("account", "account__parent")
        .get(pk=message.pk)
    )
    if MessageEvent.objects.filter(message=message, kind=kind).exists():
        return None
    now = timezone.now()
    event = MessageEvent.objects.create(
        message=message, account_id=message.account_id, kind=kind, created_at=now, diagnostic=diagnostic[:1000],
        data=data or {},
    )  # fmt: skip
    events_recorded({message.account_id})
    counter, reason = OUTCOME_OF[kind]
    if kind == Kind.HARD_BOUNCE:
        message.status = Message.Status.BOUNCED
        message.last_error = diagnostic[:2000]
        message.save(update_fields=["status", "last_error"])
    count_outcome(account=message.account, outcome=counter, n=1, now=now)
    if reason:
        suppression.suppress(
            account=message.account, email=message.to_email, reason=reason, detail=diagnostic
        )
    elif kind == Kind.SOFT_BOUNCE and _soft_bounces_lately(message, now) >= settings.SOFT_BOUNCES_TO_SUPPRESS:
        suppression.suppress(
            account=message.account, email=message.to_email, reason="soft-bounce", detail=diagnostic,
            expires_at=now + timedelta(days=settings.SOFT_BOUNCE_WINDOW_DAYS),
        )  # fmt: skip
    if kind in (Kind.HARD_BOUNCE, Kind.SPAM):
        account = message.account
        transaction.on_commit(lambda: reputation.check_auto_pause(account))
    return event


def _soft_bounces_lately(message: Message, now: datetime) -> int:
    since = now - timedelta(days=settings.SOFT_BOUNCE_WINDOW_DAYS)
    return MessageEvent.objects.filter(
        account_id=message.account_id, kind=Kind.SOFT_BOUNCE, created_at__gte=since,
        message__to_email__iexact=message.to_email,
    ).count()  # fmt: skip


def purge_old_events(*, now: datetime | None = None) -> int:
    """Events are kept at least EVENT_RETENTION_DAYS (the timeline, messages/info; webhooks only read the
    last minutes). On PostgreSQL whole months older than that are dropped as partitions, so a month's
    events go at once, with no rows to vacuum; on SQLite the old rows are deleted. How many went."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.EVENT_RETENTION_DAYS)
    if partitions.enabled():
        return partitions.drop_months_before(MessageEvent._meta.db_table, cutoff)
    deleted, _ = MessageEvent.objects.filter(created_at__lt=cutoff).delete()
    return deleted
