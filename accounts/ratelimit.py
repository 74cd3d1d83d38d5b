"""A fixed-window counter in the shared cache (Redis in production), for limits that belong to the
domain rather than to allauth's login forms: reset emails per subaccount, API calls per key, SMTP AUTH
failures per IP. One cache round trip per hit; correct across processes because the cache is shared."""

import time

from django.core.cache import cache


def hit(key: str, *, limit: int, window_seconds: int) -> bool:
    """Count one hit on `key`; False when this hit goes over `limit` within the current window."""
    window = int(time.time() // window_seconds)
    cache_key = f"rl:{key}:{window}"
    if cache.add(cache_key, 1, timeout=window_seconds + 1):
        return limit >= 1
    try:
        return cache.incr(cache_key) <= limit
    except ValueError:  # expired between add and incr
        cache.add(cache_key, 1, timeout=window_seconds + 1)
        return True


def exceeded(key: str, *, limit: int, window_seconds: int) -> bool:
    """Whether `key` is already over `limit` in the current window, without counting a hit."""
    window = int(time.time() // window_seconds)
    return (cache.get(f"rl:{key}:{window}") or 0) >= limit
