"""What each webhook is owed, and its delivery. A webhook keeps two cursors: the last MessageEvent id and
the last audit-trail id it has delivered. A run claims the webhook (a conditional UPDATE with a lease, so
one worker at a time posts to it, in order), reads the events after its cursors (its own account's, and
for a master that opted in its subaccounts'), posts them in batches of WEBHOOK_BATCH_SIZE, and moves the
cursors only when the receiver answered 2xx. A failed batch is kept and retried with exponential backoff
(30 s doubling, at most an hour); a webhook failing for WEBHOOK_DISABLE_AFTER_HOURS is disabled and its
account's admins are emailed once."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts import emails
from accounts.audit import record
from accounts.models import Account, AuditEvent, Membership, User
from accounts.permissions import ApiCaller, require_role

from ..models import MessageEvent, Webhook, WebhookAttempt
from . import payload, signing, transport
from .hooks import FORM_CONTENT_TYPE, events_json, shown_url

logger = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 30
LONGEST_RETRY_SECONDS = 3600


@dataclass(frozen=True)
class Report:
    delivered: int = 0  # events the receiver took in this run
    retry_in: float | None = None  # the batch failed: try again in this many seconds
    more: bool = False  # the run stopped with events still owed


@dataclass(frozen=True)
class Batch:
    events: list[dict]
    message_cursor: int
    account_cursor: int


def _lease() -> timedelta:
    return timedelta(
        seconds=settings.WEBHOOK_TIMEOUT_SECONDS * 2 * (settings.WEBHOOK_BATCHES_PER_RUN + 1) + 30
    )


def backoff_seconds(attempts: int) -> int:
    return min(FIRST_RETRY_SECONDS * 2 ** max(attempts - 1, 0), LONGEST_RETRY_SECONDS)


def _senders(webhook: Webhook):
    """The accounts whose message events this webhook gets: its own, and a master's subaccounts when it
    opted in (a subaccount's webhook never sees a sibling's)."""
    if webhook.include_subaccounts and webhook.account.is_master:
        return Account.objects.filter(Q(pk=webhook.account_id) | Q(parent_id=webhook.account_id)).values("pk")
    return [webhook.account_id]


def next_batch(webhook: Webhook, *, now: datetime) -> Batch:
    """The next events owed, oldest first, at most WEBHOOK_BATCH_SIZE, and the cursors after them. Events
    younger than WEBHOOK_SETTLE_SECONDS wait: an earlier id may belong to a transaction not yet committed."""
    size = settings.WEBHOOK_BATCH_SIZE
    settled = now - timedelta(seconds=settings.WEBHOOK_SETTLE_SECONDS)
    kinds = [kind for kind in webhook.events if kind in payload.MESSAGE_EVENTS]
    actions = [payload.ACCOUNT_EVENT_ACTIONS[e] for e in webhook.events if e in payload.ACCOUNT_EVENT_ACTIONS]
    message_events = []
    if kinds:
        message_events = list(
            MessageEvent.objects.filter(
                account_id__in=_senders(webhook), kind__in=kinds, pk__gt=webhook.message_cursor,
                created_at__lte=settled,
            )
            .select_related("message", "message__account")  # the envelope; bodies are not on the row
            .order_by("pk")[:size]
        )  # fmt: skip
    account_events = []
    if actions and webhook.account.is_master:
        account_events = list(
            AuditEvent.objects.filter(
                master_id=webhook.account_id, action__in=actions, pk__gt=webhook.account_cursor,
                created_at__lte=settled,
            ).select_related("account").order_by("pk")[:size]
        )  # fmt: skip
    # One batch in time order across both streams; each cursor moves past what the batch includes.
    merged = sorted(
        [(e.created_at, 0, e.pk, e) for e in message_events]
        + [(a.created_at, 1, a.pk, a) for a in account_events],
        key=lambda item: item[:3],
    )[:size]
    chosen_messages = [item[3] for item in merged if item[1] == 0]
    chosen_accounts = [item[3] for item in merged if item[1] == 1]
    engagement = payload.engagement_of(chosen_messages) if chosen_messages else {}
    events = [
        payload.message_event(item[3], engagement.get(item[3].message_id))
        if item[1] == 0
        else payload.account_event(item[3])
        for item in merged
    ]
    return Batch(
        events=events,
        message_cursor=chosen_messages[-1].pk if chosen_messages else webhook.message_cursor,
        account_cursor=chosen_accounts[-1].pk if chosen_accounts else webhook.account_cursor,
    )


def post_events(webhook: Webhook, events: list[dict], *, key: str | None = None) -> transport.Outcome:
    """POST one batch exactly as Mandrill does: form-encoded `mandrill_events`, signed over the URL as
    registered; `user:pass@` in the URL also goes as Basic auth (transport does that)."""
    fields = {"mandrill_events": events_json(events)}
    return transport.send(
        "POST",
        webhook.url,
        body=urlencode(fields).encode("ascii"),
        headers={
            "Content-Type": FORM_CONTENT_TYPE,
            "X-Mandrill-Signature": signing.signature(
                key=key or webhook.auth_key, url=webhook.url, fields=fields
            ),
        },
    )


def _claim(webhook_id: int, now: datetime) -> Webhook | None:
    """Take the webhook for this run, if it is enabled, due, and no other run holds it."""
    claimed = (
        Webhook.objects.filter(pk=webhook_id, disabled_at__isnull=True)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(claimed_until=now + _lease())
    )
    if not claimed:
        return None
    return Webhook.objects.select_related("account").get(pk=webhook_id)


def deliver(webhook_id: int) -> Report:
    """Post what the webhook is owed, batch by batch, until it is up to date, a batch fails, or
    WEBHOOK_BATCHES_PER_RUN batches have gone (then `more`: the task hands over to a new one)."""
    webhook = _claim(webhook_id, timezone.now())
    if webhook is None:
        return Report()
    delivered = 0
    try:
        for _ in range(settings.WEBHOOK_BATCHES_PER_RUN):
            batch = next_batch(webhook, now=timezone.now())
            if not batch.events:
                return Report(delivered=delivered)
            outcome = post_events(webhook, batch.events)
            if not outcome.ok:
                return Report(delivered=delivered, retry_in=_failed(webhook, outcome, len(batch.events)))
            _succeeded(webhook, batch, outcome)
            delivered += len(batch.events)
        return Report(delivered=delivered, more=bool(next_batch(webhook, now=timezone.now()).events))
    finally:
        Webhook.objects.filter(pk=webhook_id).update(claimed_until=None)


def _attempt(webhook: Webhook, outcome: transport.Outcome, *, events: int, kind: str = "batch") -> None:
    WebhookAttempt.objects.create(
        webhook=webhook, kind=kind, events=events, status_code=outcome.status, error=outcome.error,
        duration_ms=outcome.duration_ms,
    )  # fmt: skip


@transaction.atomic
def _succeeded(webhook: Webhook, batch: Batch, outcome: transport.Outcome) -> None:
    now = timezone.now()
    Webhook.objects.filter(pk=webhook.pk).update(
        message_cursor=batch.message_cursor, account_cursor=batch.account_cursor, last_sent_at=now,
        batches_sent=F("batches_sent") + 1, events_sent=F("events_sent") + len(batch.events), last_error="",
        failing_since=None, attempts=0, next_attempt_at=None, claimed_until=now + _lease(),
    )  # fmt: skip
    webhook.message_cursor, webhook.account_cursor = batch.message_cursor, batch.account_cursor
    _attempt(webhook, outcome, events=len(batch.events))


@transaction.atomic
def _failed(webhook: Webhook, outcome: transport.Outcome, events: int) -> float | None:
    """Keep the batch; retry later, or disable the webhook after a day of failures. Returns the delay of
    the next attempt (None once disabled)."""
    now = timezone.now()
    webhook = Webhook.objects.select_for_update().select_related("account").get(pk=webhook.pk)
    webhook.failing_since = webhook.failing_since or now
    webhook.attempts += 1
    webhook.last_error = outcome.error[:500]
    _attempt(webhook, outcome, events=events)
    if now - webhook.failing_since >= timedelta(hours=settings.WEBHOOK_DISABLE_AFTER_HOURS):
        webhook.disabled_at = now
        webhook.next_attempt_at = None
        webhook.save(
            update_fields=["failing_since", "attempts", "last_error", "disabled_at", "next_attempt_at"]
        )
        record(actor=None, account=webhook.account, action="webhook.disabled",
               after={"url": shown_url(webhook.url), "last_error": webhook.last_error})  # fmt: skip
        transaction.on_commit(lambda: send_disabled_notice(webhook))
        logger.warning("Webhook %s disabled after failing since %s", webhook.pk, webhook.failing_since)
        return None
    delay = backoff_seconds(webhook.attempts)
    webhook.next_attempt_at = now + timedelta(seconds=delay)
    webhook.save(update_fields=["failing_since", "attempts", "last_error", "next_attempt_at"])
    return delay


def send_disabled_notice(webhook: Webhook) -> None:
    """One email to the account's owners and admins (once: only the run that disables it sends it)."""
    to = emails.agency_admin_emails(webhook.account)
    if not to:
        return
    subject = "A webhook was turned off after a day of failures"
    context = {
        "webhook": webhook, "webhook_url": shown_url(webhook.url), "account": webhook.account, "subject": subject, "site_url": emails.site_url(),
        "url": emails.absolute(reverse("mailing:webhook_list")), "hours": settings.WEBHOOK_DISABLE_AFTER_HOURS,
    }  # fmt: skip
    message = EmailMultiAlternatives(
        subject=subject, body=render_to_string("email/webhook_disabled.txt", context), to=to
    )
    message.attach_alternative(render_to_string("email/webhook_disabled.html", context), "text/html")
    message.send()


def webhooks_watching(account_ids: set[int]) -> list[int]:
    """The enabled webhooks that get message events of these accounts (their own, or their master's
    that include subaccounts)."""
    parents = Account.objects.filter(pk__in=account_ids, parent__isnull=False).values("parent_id")
    return list(
        Webhook.objects.filter(disabled_at__isnull=True)
        .filter(Q(account_id__in=account_ids) | Q(account_id__in=parents, include_subaccounts=True))
        .values_list("pk", flat=True)
    )


def due_webhooks() -> list[int]:
    """Enabled webhooks whose retry is due (or that wait for none) and that no run holds: the sweep's."""
    now = timezone.now()
    return list(
        Webhook.objects.filter(disabled_at__isnull=True)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .values_list("pk", flat=True)
    )


def send_test_batch(*, actor: User | ApiCaller, account: Account, webhook_id: int) -> transport.Outcome:
    """POST a sample batch (one made-up event of each chosen message kind, as Mandrill's test does), signed
    with the webhook's key. Recorded among the attempts; cursors and counters do not move. Raises
    Webhook.DoesNotExist, PermissionDenied."""
    webhook = Webhook.objects.for_account(account).get(pk=webhook_id)
    require_role(actor, account, Membership.Role.ADMIN)
    events = payload.test_events(
        kinds=webhook.events, subaccount=account.public_id if account.is_subaccount else None,
        now_ts=int(timezone.now().timestamp()),
    )  # fmt: skip
    outcome = post_events(webhook, events)
    _attempt(webhook, outcome, events=len(events), kind="test")
    return outcome


def purge_attempts(*, now: datetime | None = None) -> int:
    """Delivery bookkeeping older than WEBHOOK_ATTEMPT_RETENTION_DAYS goes."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.WEBHOOK_ATTEMPT_RETENTION_DAYS)
    deleted, _ = WebhookAttempt.objects.filter(created_at__lt=cutoff).delete()
    return deleted
