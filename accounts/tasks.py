"""Celery tasks of the accounts app: thin wrappers that call one service each."""

from celery import shared_task
from django.db import transaction

from . import alerts, bulk_jobs, rollup
from .models import BulkJob


@shared_task
def scan_limit_alerts() -> int:
    """The periodic catch-up for near-limit alerts the send path could not see (a lowered quota)."""
    return alerts.scan_limit_alerts()


@shared_task
def roll_up_usage() -> int:
    """Roll up the closed UTC days not rolled up yet (idempotent: a second run finds nothing to do)."""
    return rollup.roll_up_closed_days()


@shared_task
def run_bulk_job(job_id: int) -> int:
    """A bulk action too large for a request; returns how many targets it handled."""
    return bulk_jobs.run_bulk_job(job_id).handled


def start_bulk_job(**job) -> BulkJob:
    """Record a bulk job and hand it to a worker once its row is committed."""
    created = bulk_jobs.create_bulk_job(**job)
    transaction.on_commit(lambda: run_bulk_job.delay(created.pk))
    return created
