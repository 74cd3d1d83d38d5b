"""A fixed-window counter in the shared cache (Redis in production), for limits that belong to the
domain rather than to allauth's login forms: reset emails per subaccount, API calls per key, SMTP AUTH
failures per IP. One cache round trip per hit; correct across processes because the cache is shared."""

import logging
import time

from django.core.cache import cache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# What a cache that is down or unreachable raises. The limits then open: a send needs only the database
# (DESIGN.md), and a flood is still bounded by the quotas, which live in the database.
CACHE_UNAVAILABLE = (RedisError, OSError)


def hit(key: str, *, limit: int, window_seconds: int) -> bool:
    """Count one hit on `key`; False when this hit goes over `limit` within the current window.
    True, without counting, while the cache is unavailable."""
    try:
        return _hit(key, limit=limit, window_seconds=window_seconds)
    except CACHE_UNAVAILABLE:
        logger.warning("Rate limit %s not applied: the cache is unavailable", key, exc_info=True)
        return True


def exceeded(key: str, *, limit: int, window_seconds: int) -> bool:
    """Whether `key` is already over `limit` in the current window, without counting a hit.
    False while the cache is unavailable."""
    window = int(time.time() // window_seconds)
    try:
        return (cache.get(f"rl:{key}:{window}") or 0) >= limit
    except CACHE_UNAVAILABLE:
        logger.warning("Rate limit %s not applied: the cache is unavailable", key, exc_info=True)
        return False


def _hit(key: str, *, limit: int, window_seconds: int) -> bool:
    window = int(time.time() // window_seconds)
    cache_key = f"rl:{key}:{window}"
    if cache.add(cache_key, 1, timeout=window_seconds + 1):
        return limit >= 1
    try:
        return cache.incr(cache_key) <= limit
    except ValueError:  # expired between add and incr
        cache.add(cache_key, 1, timeout=window_seconds + 1)
        return True
