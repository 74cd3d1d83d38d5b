"""Prometheus metrics: what the accept path and delivery count, and the queue as the database sees it.

The accept and delivery code call the small functions below (`record_accepted(n)`, `time_accept()`, …);
they never raise, so a metric can never cost a message. The queue gauges are not kept in memory: a
collector reads them from the database when Prometheus scrapes, in one query, so every process reports
the same queue.

Several processes (gunicorn workers, Celery's prefork children) each count for themselves. With
`PROMETHEUS_MULTIPROC_DIR` set in their environment before they start (an empty directory, the same for
every process on the host that should be reported together), prometheus_client keeps the counts in files
there and `/metrics` adds them up; without it, each process reports only its own counts. See
docs/operations.md.

`/metrics` answers only to `Authorization: Bearer <METRICS_TOKEN>`, and does not exist (404) while
`METRICS_TOKEN` is unset.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError
from django.http import Http404, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger(__name__)

# This process's own counters and timings (no database behind them). In multiprocess mode their values
# live in PROMETHEUS_MULTIPROC_DIR and a scrape reads them from there.
REGISTRY = CollectorRegistry()

ACCEPTED = Counter("mail_accepted", "Recipients accepted (queued or held).", registry=REGISTRY)
REJECTED = Counter(
    "mail_rejected", "Recipients rejected at accept time, by reason.", ["reason"], registry=REGISTRY
)
DELIVERED = Counter("mail_delivered", "Messages the relay accepted.", registry=REGISTRY)
FAILED = Counter("mail_failed", "Messages given up on, by reason.", ["reason"], registry=REGISTRY)
BOUNCED = Counter("mail_bounced", "Bounces and complaints, by kind.", ["kind"], registry=REGISTRY)
ACCEPT_SECONDS = Histogram(
    "accept_seconds",
    "Time to accept one send call (API or SMTP), answer included.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
DELIVERY_SECONDS = Histogram(
    "delivery_seconds",
    "Time of one delivery run (a batch sent over one relay connection).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
    registry=REGISTRY,
)

# A label value is a short slug ("monthly-limit-reached", "hard"), and a metric takes at most this many
# distinct ones per process; more would be a caller passing error text, which Prometheus must not store.
MAX_LABEL_VALUES = 50
_seen_labels: dict[str, set[str]] = {}
_NOT_A_SLUG = re.compile(r"[^a-z0-9_]+")


def _label(metric: str, value: str) -> str:
    slug = _NOT_A_SLUG.sub("-", str(value).strip().lower()).strip("-")[:40] or "unknown"
    seen = _seen_labels.setdefault(metric, set())
    if slug not in seen:
        if len(seen) >= MAX_LABEL_VALUES:
            return "other"
        seen.add(slug)
    return slug


def record_accepted(n: int = 1) -> None:
    """`n` recipients were accepted (queued, or held for a paused account)."""
    if n > 0:
        ACCEPTED.inc(n)


def record_rejected(reason: str, n: int = 1) -> None:
    """`n` recipients were rejected at accept time; `reason` is Mandrill's reject_reason."""
    if n > 0:
        REJECTED.labels(reason=_label("rejected", reason)).inc(n)


def record_delivered(n: int = 1) -> None:
    """The relay took `n` messages."""
    if n > 0:
        DELIVERED.inc(n)


def record_failed(reason: str, n: int = 1) -> None:
    """`n` messages failed for good; `reason` is a short slug ("permanent", "attempts-exhausted")."""
    if n > 0:
        FAILED.labels(reason=_label("failed", reason)).inc(n)


def record_bounced(kind: str, n: int = 1) -> None:
    """`n` bounces of `kind` ("hard", "soft", "complaint") came back."""
    if n > 0:
        BOUNCED.labels(kind=_label("bounced", kind)).inc(n)


@contextmanager
def time_accept() -> Iterator[None]:
    """Observe one accept call's duration, whether it succeeds or raises."""
    started = time.perf_counter()
    try:
        yield
    finally:
        ACCEPT_SECONDS.observe(time.perf_counter() - started)


@contextmanager
def time_delivery() -> Iterator[None]:
    """Observe one delivery run's duration, whether it succeeds or raises."""
    started = time.perf_counter()
    try:
        yield
    finally:
        DELIVERY_SECONDS.observe(time.perf_counter() - started)


class QueueCollector:
    """The mail waiting for delivery, read at scrape time: how many messages are queued and being sent,
    how long ago the oldest queued one was accepted, and how late the most overdue one is (a message
    waiting out a retry backoff is not late). One query over the pending messages' partial index; held
    mail (paused accounts) is not waiting on us and is left out."""

    def describe(self):
        return []  # registering must not query the database

    def collect(self):
        from django.db.models import Count, Min

        from mailing.models import Message

        waiting = [Message.Status.QUEUED, Message.Status.SENDING]
        try:
            rows = list(
                Message.objects.filter(status__in=waiting)
                .values("status")
                .annotate(count=Count("pk"), oldest=Min("created_at"), first_due=Min("next_attempt_at"))
            )
        except DatabaseError:
            logger.warning("Could not read the mail queue for /metrics", exc_info=True)
            return  # the gauges go missing: alert on absent(mail_queue_depth)
        by_status = {row["status"]: row for row in rows}
        depth = GaugeMetricFamily(
            "mail_queue_depth", "Messages waiting for delivery, by status.", labels=["status"]
        )
        for status in waiting:
            depth.add_metric([status], by_status.get(status, {}).get("count", 0))
        yield depth
        queued = by_status.get(Message.Status.QUEUED, {})
        now = timezone.now()
        yield GaugeMetricFamily(
            "mail_oldest_queued_age_seconds",
            "Seconds since the oldest queued message was accepted (0 when none is queued).",
            value=_seconds_since(queued.get("oldest"), now),
        )
        yield GaugeMetricFamily(
            "mail_queued_overdue_seconds",
            "Seconds since the earliest queued message was due to be sent; 0 when every queued message "
            "is waiting out a retry backoff or none is queued.",
            value=_seconds_since(queued.get("first_due"), now),
        )


def _seconds_since(moment, now) -> float:
    return max((now - moment).total_seconds(), 0.0) if moment else 0.0


# The process's own memory, CPU and file descriptors: meaningful only when one process is all there is.
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)


def scrape_registry() -> CollectorRegistry:
    """What a scrape reports: this process's counts (or, in multiprocess mode, every process's counts
    added up) and the queue read from the database."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(REGISTRY)
    registry.register(QueueCollector())
    return registry


def _bearer_token_matches(request, expected: str) -> bool:
    scheme, _, supplied = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(supplied.strip().encode(), expected.encode())


@login_not_required
@csrf_exempt
@never_cache
@require_safe
def scrape(request) -> HttpResponse:
    expected = getattr(settings, "METRICS_TOKEN", None)
    if not expected:
        raise Http404
    if not _bearer_token_matches(request, expected):
        return HttpResponse(
            "A bearer token is required.\n",
            status=401,
            content_type="text/plain",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    return HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)
