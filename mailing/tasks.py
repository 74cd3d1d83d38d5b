"""Celery tasks of the mailing app. Each takes plain data or ids and calls one piece of domain code;
each is safe to run twice (delivery claims with a conditional UPDATE). `enqueue_delivery` lives beside
the task it enqueues, so the accept path and the sweep both import it from here and nothing imports back."""

import logging

from celery import shared_task
from django.conf import settings
from django.core.mail import mailers
from django.db import transaction

from . import archive, bodies, delivery, exports, idempotency, partitions
from .deliverability import outcomes
from .models import ExportJob
from .product_email import deserialize_email
from .webhooks.tasks import deliver_webhook, purge_webhook_attempts, sweep_webhooks

# Webhook delivery's tasks live in their package; imported here so that Celery's discovery finds them.
__all__ = ["deliver_webhook", "purge_webhook_attempts", "sweep_webhooks"]

logger = logging.getLogger(__name__)

DELIVERY_BATCH = 50


@shared_task(bind=True, max_retries=8)
def send_product_email(self, data: dict) -> int:
    """Send one of the product's own emails (invite, reset, alert) through the delivery mailer,
    retrying temporary failures with exponential backoff (30 s, 1 min, 2 min, ... capped at 30 min)."""
    try:
        return mailers["delivery"].send_messages([deserialize_email(data)])
    except OSError as exc:
        if delivery.is_permanent(exc):
            logger.error("Product email to %s refused for good: %s", data.get("to"), exc)
            return 0
        raise self.retry(exc=exc, countdown=min(30 * 2**self.request.retries, 1800)) from exc


@shared_task(acks_late=True, reject_on_worker_lost=True)
def deliver_messages(message_ids: list[int]) -> dict:
    """Deliver a batch of accepted messages over one connection; schedule the retries it needs. A whole
    call's ids come in one task (enqueue_delivery): past DELIVERY_BATCH, the other batches go to other
    workers from here, so the sender paid one publish and the workers share the sending."""
    if len(message_ids) > DELIVERY_BATCH:
        _hand_out(message_ids[DELIVERY_BATCH:])
        message_ids = message_ids[:DELIVERY_BATCH]
    elif settings.DELIVERY_FILL_BATCHES:
        message_ids = message_ids + delivery.waiting_companions(
            exclude=message_ids, limit=DELIVERY_BATCH - len(message_ids)
        )
    report = delivery.deliver(message_ids)
    if report.retry:
        # The messages are back to queued with their next attempt time; this task brings them back then
        # (and if it is lost, the sweep does).
        deliver_messages.apply_async(args=[message_ids], countdown=report.retry_in)
    return {"sent": report.sent, "retry": report.retry, "failed": report.failed}


@shared_task
def sweep_queued() -> int:
    """Re-enqueue mail left queued (a lost broker message, a lost retry) or claimed by a dead worker."""
    ids = delivery.due_for_sweep()
    if ids:
        enqueue_delivery(ids)
    return len(ids)


@shared_task
def expire_held_mail() -> int:
    return delivery.expire_held()


@shared_task
def purge_archive() -> int:
    return archive.purge_archive()


@shared_task
def purge_unused_contents() -> int:
    """Daily, after the archive's purge: the bodies no message or archived copy points at any more."""
    return bodies.purge_unused()


@shared_task
def purge_old_events() -> int:
    return outcomes.purge_old_events()


@shared_task
def ensure_partitions() -> list[str]:
    """Daily: the months ahead of the partitioned tables exist before their rows come."""
    return partitions.ensure_partitions()


@shared_task
def release_scheduled() -> int:
    """Scheduled mail whose time has come goes to delivery (every minute)."""
    ids = delivery.release_scheduled()
    if ids:
        enqueue_delivery(ids)
    return len(ids)


@shared_task
def purge_idempotent_calls() -> int:
    return idempotency.purge_idempotent_calls()


def enqueue_delivery(message_ids: list[int]) -> None:
    """Hand messages to the workers: one publish, whatever their number (the worker that takes it splits
    it into batches), so a call of 1,000 recipients waits for the broker once, not 20 times. If the
    broker is down, they stay queued in the database and the periodic sweep enqueues them later: the
    sender's answer was already right."""
    if not message_ids:
        return
    try:
        deliver_messages.apply_async(args=[list(message_ids)], retry=False)
    except Exception:  # the broker's errors vary by transport; none may fail an accepted send
        logger.warning(
            "Could not enqueue %d messages; the sweep will deliver them", len(message_ids), exc_info=True
        )


def _hand_out(message_ids: list[int]) -> None:
    """Publish these ids in batches of DELIVERY_BATCH, one task each (from a worker, off the accept path).
    A broker failure here leaves them queued for the sweep, as at accept time."""
    for start in range(0, len(message_ids), DELIVERY_BATCH):
        batch = message_ids[start : start + DELIVERY_BATCH]
        try:
            deliver_messages.apply_async(args=[batch], retry=False)
        except Exception:  # as in enqueue_delivery
            logger.warning(
                "Could not enqueue %d messages; the sweep will deliver them",
                len(message_ids) - start,
                exc_info=True,
            )
            return


@shared_task
def run_export(job_id: int) -> int:
    """Write one CSV export; returns the rows written."""
    return exports.run_export(job_id).written


def start_export(**request) -> ExportJob:
    """Record an export and hand it to a worker once its row is committed."""
    job = exports.start_export(**request)
    transaction.on_commit(lambda: run_export.delay(job.pk))
    return job


@shared_task
def sweep_exports() -> dict[str, int]:
    """Every few minutes: enqueue again the exports whose broker message was lost, fail those whose
    worker died, and purge files past their retention."""
    lost = exports.lost_exports()
    for job_id in lost:
        run_export.delay(job_id)
    return {
        "requeued": len(lost),
        "stalled": exports.fail_stalled_exports(),
        "purged": exports.purge_exports(),
    }
