"""Celery tasks of webhook delivery, and the enqueue that event producers call. Tasks take ids and are
safe to run twice: a run claims its webhook with a conditional UPDATE, and cursors only move forward."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.db import transaction

from . import outbox

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def deliver_webhook(webhook_id: int) -> dict:
    report = outbox.deliver(webhook_id)
    if report.retry_in is not None:
        # The failed batch waits in the database (its cursor did not move); this brings it back then, and
        # if this message is lost the sweep does.
        _enqueue(webhook_id, countdown=report.retry_in)
    elif report.more:
        _enqueue(webhook_id)
    return {"delivered": report.delivered, "retry_in": report.retry_in, "more": report.more}


@shared_task
def sweep_webhooks() -> int:
    """Every 30 s: each enabled webhook that is due gets a run (a run with nothing owed costs two queries)."""
    ids = outbox.due_webhooks()
    for webhook_id in ids:
        _enqueue(webhook_id)
    return len(ids)


@shared_task
def purge_webhook_attempts() -> int:
    return outbox.purge_attempts()


def _enqueue(webhook_id: int, countdown: float = 0) -> None:
    try:
        deliver_webhook.apply_async(args=[webhook_id], countdown=countdown, retry=False)
    except Exception:  # the broker's errors vary by transport; the sweep catches up
        logger.warning("Could not enqueue webhook %s; the sweep will", webhook_id, exc_info=True)


def events_recorded(account_ids: set[int] | list[int]) -> None:
    """Call inside the transaction that records MessageEvents (any kind): after commit, the webhooks that
    get these accounts' events are enqueued, once the events have settled. Never blocks or fails the caller."""
    account_ids = set(account_ids)
    if not account_ids:
        return

    def enqueue() -> None:
        try:
            webhook_ids = outbox.webhooks_watching(account_ids)
        except Exception:  # a database hiccup here must not fail the producer's commit hook
            logger.warning("Could not look up webhooks to enqueue", exc_info=True)
            return
        for webhook_id in webhook_ids:
            _enqueue(webhook_id, countdown=settings.WEBHOOK_SETTLE_SECONDS)

    transaction.on_commit(enqueue)
