"""A fixed-window counter in the shared cache (Redis in production), for limits that belong to the
domain rather than to allauth's login forms: reset emails per subaccount, API calls per key, SMTP AUTH
failures per IP. One cache round trip per hit; correct across processes because the cache is shared.

The limits fail open: when the cache cannot be reached, every check answers "not limited", so a cache
outage never stops mail from being accepted (the database is the only thing an accept needs). Each such
answer is counted (`cache_failures()`) and logged, at most once per WARNING_INTERVAL_SECONDS."""

import logging
import threading
import time

from django.core.cache import cache

logger = logging.getLogger(__name__)

WARNING_INTERVAL_SECONDS = 60.0

_lock = threading.Lock()
_failures = 0
_unreported = 0  # failures since the last warning
_next_warning_at = 0.0  # time.monotonic() after which a failure is logged again


def cache_failures() -> int:
    """How many checks in this process have failed open because the cache failed (for metrics)."""
    return _failures


def hit(key: str, *, limit: int, window_seconds: int) -> bool:
    """Count one hit on `key`; False when this hit goes over `limit` within the current window.
    True, uncounted, when the cache fails."""
    window = int(time.time() // window_seconds)
    cache_key = f"rl:{key}:{window}"
    try:
        if cache.add(cache_key, 1, timeout=window_seconds + 1):
            return limit >= 1
        try:
            return cache.incr(cache_key) <= limit
        except ValueError:  # expired between add and incr
            cache.add(cache_key, 1, timeout=window_seconds + 1)
            return True
    except Exception as exc:  # each cache backend raises its own errors; none may refuse a request
        _fail_open(exc)
        return True


def exceeded(key: str, *, limit: int, window_seconds: int) -> bool:
    """Whether `key` is already over `limit` in the current window, without counting a hit.
    False when the cache fails."""
    window = int(time.time() // window_seconds)
    try:
        return (cache.get(f"rl:{key}:{window}") or 0) >= limit
    except Exception as exc:  # as in hit()
        _fail_open(exc)
        return False


def _fail_open(exc: Exception) -> None:
    global _failures, _unreported, _next_warning_at
    with _lock:
        _failures += 1
        _unreported += 1
        now = time.monotonic()
        if now < _next_warning_at:
            return
        _next_warning_at = now + WARNING_INTERVAL_SECONDS
        unreported, _unreported = _unreported, 0
    logger.warning(
        "Cache unavailable, rate limits are open (%d checks since the last warning; next warning in "
        "%d s at the earliest): %s: %s",
        unreported,
        WARNING_INTERVAL_SECONDS,
        type(exc).__name__,
        exc,
    )
