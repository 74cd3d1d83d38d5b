"""Delivery: from queued to sent (or failed), exactly once per claim.

A delivery run claims its messages with one conditional UPDATE (`status = 'queued'` → `sending`, with a
claim token), so two workers never send the same message. It sends them over one connection of the
`delivery` mailer, archives a copy where archiving was on at acceptance, retries temporary failures with
exponential backoff and marks permanent ones failed.
"""

from __future__ import annotations

import logging
import smtplib
import time
import uuid
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import mailers
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Account
from accounts.quota import count_outcome
from reseller import metrics

from . import archive
from .deliverability import outcomes, signing
from .mime import MimeBuilder, RelayMessage
from .models import Message, MessageEvent
from .outgoing import PAUSED_REASON

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8


@dataclass
class DeliveryReport:
    sent: int = 0
    retry: int = 0
    failed: int = 0
    retry_in: int | None = None  # seconds until the earliest retry


def claim(message_ids: list[int], *, now: datetime | None = None) -> list[Message]:
    """Take the still-queued messages among `message_ids` for this run; others have gone elsewhere."""
    now = now or timezone.now()
    token = uuid.uuid4()
    Message.objects.filter(pk__in=message_ids, status=Message.Status.QUEUED).update(
        status=Message.Status.SENDING, claim=token, claimed_at=now, attempts=F("attempts") + 1
    )
    return list(
        Message.objects.filter(claim=token, status=Message.Status.SENDING)
        .select_related("account")
        .prefetch_related("content")  # each body read (and its JSON decoded) once, however many share it
        .order_by("pk")
    )


def is_permanent(exc: Exception) -> bool:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code >= 500
    return isinstance(exc, ValueError | UnicodeError)  # a message that can never be built or encoded


def backoff_seconds(attempts: int) -> int:
    return min(30 * 2 ** max(attempts - 1, 0), 3600)


def deliver(message_ids: list[int], *, now: datetime | None = None) -> DeliveryReport:
    """Claim and send; every claimed message ends this call sent, queued for a retry, or failed."""
    with metrics.time_delivery():
        return _deliver(message_ids, now=now)


def _deliver(message_ids: list[int], *, now: datetime | None) -> DeliveryReport:
    report = DeliveryReport()
    messages = claim(message_ids, now=now)
    if not messages:
        return report
    try:
        relay = Relay(settings.DELIVERY_RELAY_CONNECTIONS)
    except Exception as exc:  # the relay is unreachable: every claimed message waits for a retry
        for message in messages:
            _record_failure(message, exc, report)
        return report
    signers, builder = Signers(), MimeBuilder()
    sent: list[Message] = []  # sent, not yet recorded
    renewed_at = time.monotonic()
    in_flight: deque[tuple[Message, Future]] = deque()  # handed to the relay, oldest first

    def settle_oldest() -> None:
        nonlocal sent, renewed_at
        message, outcome = in_flight.popleft()
        try:
            outcome.result()
        except Exception as exc:
            _record_failure(message, exc, report)
        else:
            sent.append(message)
        # Record (and so renew the claim) every few messages, and well within the lease even when a
        # slow relay makes each message take long: the sweep must never take a living worker's batch.
        if len(sent) >= settings.DELIVERY_MARK_EVERY or time.monotonic() - renewed_at > _renew_after():
            _record_sent(sent, report)
            if in_flight or unsent:
                _renew_claim(messages[0].claim)
            sent, renewed_at = [], time.monotonic()

    unsent = deque(messages)
    try:
        while unsent:
            message = unsent.popleft()
            try:
                relay_message = RelayMessage(message, signer=signers.signer_for(message), builder=builder)
            except Exception as exc:  # it cannot be built (or signed): nothing was sent
                in_flight.append((message, _failed(exc)))
            else:
                in_flight.append((message, relay.submit(relay_message)))
            # One message per connection on its way while the next is built and signed.
            while len(in_flight) > relay.width or (in_flight and in_flight[0][1].done()):
                settle_oldest()
        while in_flight:
            settle_oldest()
    finally:
        relay.close()
        _record_sent(sent, report)
    return report


class Relay:
    """The delivery mailer's connections for one run, each used by a thread of its own: a relay's
    replies are waited for there (the wait releases the GIL), so the next message is built and signed
    while the relay takes this one, and with several connections a distant relay's round trips (four
    a message: MAIL, RCPT, DATA and the data; two with PIPELINING, mailing/relay.py) overlap. Outcomes
    come back as futures and are settled
    by the run, in order; only the run touches the database. Raises what opening the first connection
    raises (the relay is unreachable); a further one that does not open is done without."""

    def __init__(self, connections: int) -> None:
        first = mailers["delivery"]
        first.open()
        self.connections = [first]
        for _ in range(connections - 1):
            extra = mailers["delivery"]
            try:
                extra.open()
            except Exception:
                logger.warning(
                    "A further relay connection did not open; delivering with fewer", exc_info=True
                )
                break
            self.connections.append(extra)
        self.threads = [
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="delivery-relay") for _ in self.connections
        ]
        self.sent = 0

    @property
    def width(self) -> int:
        return len(self.connections)

    def submit(self, relay_message: RelayMessage) -> Future:
        index = self.sent % self.width
        self.sent += 1
        return self.threads[index].submit(self.connections[index].send_messages, [relay_message])

    def close(self) -> None:
        for thread in self.threads:
            thread.shutdown(wait=True)
        for connection in self.connections:
            connection.close()


def _failed(exc: Exception) -> Future:
    outcome: Future = Future()
    outcome.set_exception(exc)
    return outcome


class Signers:
    """DKIM signers for one delivery run: a batch comes from few accounts and domains, so each
    (account, From domain) is looked up once."""

    def __init__(self) -> None:
        self.found: dict[tuple[int, str], signing.Signer | None] = {}

    def signer_for(self, message: Message) -> signing.Signer | None:
        lookup = (message.account_id, message.from_email.rsplit("@", 1)[-1].lower())
        if lookup not in self.found:
            key = signing.signing_key_for(message.account, message.from_email)
            self.found[lookup] = signing.Signer(domain=key[0], key=key[1]) if key else None
        return self.found[lookup]


def _renew_after() -> float:
    return settings.DELIVERY_CLAIM_LEASE_SECONDS / 3


def _renew_claim(token) -> None:
    Message.objects.filter(claim=token, status=Message.Status.SENDING).update(claimed_at=timezone.now())


def _record_sent(sent: list[Message], report: DeliveryReport) -> None:
    """Mark these sent, with their events, counters and archived copies, in one transaction (one commit
    to wait for, not one a statement). A crash before this leaves them claimed: the sweep sends them
    again after the lease (at most DELIVERY_MARK_EVERY copies twice, each with the same Message-ID)."""
    if not sent:
        return
    sent_at = timezone.now()
    with transaction.atomic():
        Message.objects.filter(pk__in=[m.pk for m in sent], claim=sent[0].claim).update(
            status=Message.Status.SENT, sent_at=sent_at, claim=None, last_error=""
        )
        outcomes.record_delivered(sent, at=sent_at)
        archived = [message for message in sent if message.archive]
        if archived:
            archive.archive_sent(archived, sent_at=sent_at)
    report.sent += len(sent)
    metrics.record_delivered(len(sent))


def _record_failure(message: Message, exc: Exception, report: DeliveryReport) -> None:
    error = f"{type(exc).__name__}: {exc}"[:2000]
    claimed = Message.objects.filter(pk=message.pk, claim=message.claim)
    if is_permanent(exc) or message.attempts >= MAX_ATTEMPTS:
        if claimed.update(status=Message.Status.FAILED, claim=None, last_error=error):
            count_outcome(account=message.account, outcome="failed", n=1)
            metrics.record_failed("refused" if is_permanent(exc) else "too-many-attempts")
            _record_bounce_of(message, exc, error)
        report.failed += 1
        logger.info("Message %s failed for good: %s", message.public_id, error)
        return
    delay = backoff_seconds(message.attempts)
    retry_at = timezone.now() + timedelta(seconds=delay)
    if claimed.update(status=Message.Status.QUEUED, claim=None, last_error=error, next_attempt_at=retry_at):
        outcomes.record_deferral(message, diagnostic=error, retry_at=retry_at)
    report.retry += 1
    report.retry_in = delay if report.retry_in is None else min(report.retry_in, delay)


def _record_bounce_of(message: Message, exc: Exception, error: str) -> None:
    """The relay's own refusal of the recipient is a bounce: a 5xx for the address is hard (the message
    is then `bounced`), a temporary refusal that outlasted every retry is soft. A refusal of the message
    itself (its content, our sender) is not about the recipient and stays a plain failure."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        kind = (
            MessageEvent.Kind.HARD_BOUNCE
            if all(code >= 500 for code in codes)
            else MessageEvent.Kind.SOFT_BOUNCE
        )
        outcomes.record_bounce(message, kind=kind, diagnostic=error)
    elif isinstance(exc, smtplib.SMTPResponseException) and 400 <= exc.smtp_code < 500:
        outcomes.record_bounce(message, kind=MessageEvent.Kind.SOFT_BOUNCE, diagnostic=error)


# --- the periodic jobs ----------------------------------------------------------------------------------


def waiting_companions(*, exclude: list[int], limit: int, now: datetime | None = None) -> list[int]:
    """Up to `limit` other messages queued and due, oldest first: what a small batch takes along, so that
    a stream of one-recipient calls is sent in full batches (one relay connection, one claim, one record
    for fifty) instead of one task per message. Their own tasks then find them gone and cost a query."""
    if limit <= 0:
        return []
    return _queued_and_due(now or timezone.now(), limit, exclude=exclude)


def _queued_and_due(by: datetime, limit: int, *, exclude: Sequence[int] = ()) -> list[int]:
    """Ids of queued messages whose next attempt is due by `by`, oldest first (the pending index)."""
    return list(
        Message.objects.filter(status=Message.Status.QUEUED, next_attempt_at__lte=by)
        .exclude(pk__in=exclude)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def due_for_sweep(*, now: datetime | None = None, limit: int = 5000) -> list[int]:
    """Messages that should be on their way but are not: queued and due (a lost broker message, a retry
    whose task was lost), or claimed by a worker whose lease ran out (it died: a living worker renews its
    claim every DELIVERY_MARK_EVERY messages)."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.DELIVERY_CLAIM_LEASE_SECONDS)
    Message.objects.filter(status=Message.Status.SENDING, claimed_at__lt=stale).update(
        status=Message.Status.QUEUED, claim=None
    )
    return _queued_and_due(now - timedelta(seconds=settings.DELIVERY_SWEEP_GRACE_SECONDS), limit)


def release_held(account: Account) -> list[int]:
    """An account resumed: its held mail goes out, oldest first."""
    with transaction.atomic():
        ids = list(
            Message.objects.filter(account=account, status=Message.Status.HELD)
            .select_for_update(skip_locked=True)
            .order_by("created_at", "pk")
            .values_list("pk", flat=True)
        )
        Message.objects.filter(pk__in=ids, status=Message.Status.HELD).update(
            status=Message.Status.QUEUED, queued_reason="", next_attempt_at=timezone.now()
        )
    return ids


SCHEDULED_RELEASE_BATCH = 5000


def release_scheduled(*, now: datetime | None = None) -> list[int]:
    """Scheduled messages whose time has come: queued for delivery (returned, for the caller to
    enqueue), or held if their account is paused, as its other mail is."""
    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            Message.objects.filter(status=Message.Status.SCHEDULED, send_at__lte=now)
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("pk", "account__status")[:SCHEDULED_RELEASE_BATCH]
        )
        paused = [pk for pk, status in due if status == Account.Status.PAUSED]
        ready = [pk for pk, status in due if status != Account.Status.PAUSED]
        Message.objects.filter(pk__in=paused).update(status=Message.Status.HELD, queued_reason=PAUSED_REASON)
        Message.objects.filter(pk__in=ready).update(status=Message.Status.QUEUED, next_attempt_at=now)
    return ready


def expire_held(*, now: datetime | None = None) -> int:
    """Mail held longer than HELD_MAX_HOURS is rejected: the sender was told it would wait at most that.
    Each is a rejection like any other: a `reject` event and the account's `rejected` counter."""
    now = now or timezone.now()
    cutoff = now - timedelta(hours=settings.HELD_MAX_HOURS)
    with transaction.atomic():
        expired = list(
            Message.objects.filter(status=Message.Status.HELD, created_at__lt=cutoff)
            .select_for_update(skip_locked=True, of=("self",))
            .select_related("account")
        )
        Message.objects.filter(pk__in=[m.pk for m in expired]).update(
            status=Message.Status.REJECTED, reject_reason=HOLD_EXPIRED, queued_reason=""
        )
        outcomes.record_rejected(expired, reason=HOLD_EXPIRED, at=now)
    return len(expired)


HOLD_EXPIRED = "hold-expired"
