"""A fixed-window counter in the shared cache (Redis in production), for limits that belong to the
domain rather than to allauth's login forms: reset emails per subaccount, API calls per key, SMTP AUTH
failures per IP. One cache round trip per hit; correct across processes because the cache is shared.

The limits fail open: when the cache cannot be reached, every check answers "not limited", so a cache
outage never stops mail from being accepted (the database is the only thing an accept needs). The
configured cache (reseller/cache.py) already fails open; the guard here keeps that promise with any other
backend. Each such answer is counted (`cache_failures()`) and logged at most once a minute."""

import time

from django.core.cache import cache

from reseller.cache import cache_failures, note_cache_failure

__all__ = ["cache_failures", "exceeded", "hit"]


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
        note_cache_failure(exc)
        return True


def exceeded(key: str, *, limit: int, window_seconds: int) -> bool:
    """Whether `key` is already over `limit` in the current window, without counting a hit.
    False when the cache fails."""
    window = int(time.time() // window_seconds)
    try:
        return (cache.get(f"rl:{key}:{window}") or 0) >= limit
    except Exception as exc:  # as in hit()
        note_cache_failure(exc)
        return False
