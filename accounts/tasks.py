"""Celery tasks of the accounts app: thin wrappers that call one service each."""

from celery import shared_task

from . import alerts


@shared_task
def scan_limit_alerts() -> int:
    """The periodic catch-up for near-limit alerts the send path could not see (a lowered quota)."""
    return alerts.scan_limit_alerts()
