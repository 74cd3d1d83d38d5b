"""Liveness and readiness, for load balancers and orchestrators.

`/healthz` says the process answers HTTP and touches nothing else, so an outage of PostgreSQL or Redis
never gets every web process restarted at once. `/readyz` checks what serving needs (the database, the
cache and the Celery broker), each in its own thread with its own deadline, so a hung dependency costs a
probe about a second and cannot hide the state of the others. Both are public: their answers name a
dependency and its state and nothing more (no host, port, error text or version); the details go to the
log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

logger = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 1.0
OK, FAILED, TIMEOUT = "ok", "failed", "timeout"


def check_database() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        connection.close()  # this thread's own connection (or its pool slot): never left behind


def check_cache() -> None:
    # A write, not a read: a read-only replica or a full Redis would break the rate limits too. The
    # configured cache hides failures from the rate limits (reseller/cache.py); its check() does not.
    check = getattr(cache, "check", None)
    if check is not None:
        check()
    else:
        cache.set("health:readyz", "ok", timeout=10)


def check_broker() -> None:
    from reseller.celery import app

    # Past the probe's deadline (so a hung broker reads "timeout"), yet short enough that threads left
    # behind by hung checks cannot pile up.
    limit = 2 * CHECK_TIMEOUT_SECONDS
    options = {"socket_connect_timeout": limit, "socket_timeout": limit}
    with app.connection_for_write(connect_timeout=limit, transport_options=options) as broker:
        broker.ensure_connection(max_retries=0)  # the Redis transport PINGs on connect


CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "cache": check_cache,
    "broker": check_broker,
}


def run_checks(timeout: float = CHECK_TIMEOUT_SECONDS) -> dict[str, str]:
    """Run every check at once, each in a daemon thread, and give each `timeout` seconds.

    A check still running at its deadline is reported "timeout" and left to finish (or fail) on its own;
    the clients' own socket timeouts keep such threads from piling up.
    """
    results: dict[str, str] = {}

    def run(name: str, check: Callable[[], None]) -> None:
        try:
            check()
        except Exception:
            logger.warning("Readiness check %r failed", name, exc_info=True)
            results[name] = FAILED
        else:
            results[name] = OK

    threads = {
        name: threading.Thread(target=run, args=(name, check), name=f"readyz-{name}", daemon=True)
        for name, check in CHECKS.items()
    }
    deadline = time.monotonic() + timeout
    for thread in threads.values():
        thread.start()
    states = {}
    for name, thread in threads.items():
        thread.join(max(deadline - time.monotonic(), 0))
        if thread.is_alive():
            logger.warning("Readiness check %r did not answer within %.1f s", name, timeout)
            states[name] = TIMEOUT
        else:
            states[name] = results[name]
    return states


@login_not_required
@csrf_exempt
@never_cache
@require_safe
def healthz(request) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


@login_not_required
@csrf_exempt
@never_cache
@require_safe
def readyz(request) -> JsonResponse:
    results = run_checks()
    ready = all(state == OK for state in results.values())
    return JsonResponse(results, status=200 if ready else 503)
