"""The shared cache (Redis) holds only rate-limit counters, ours and allauth's: losing it must open the
limits, never stop the product. `FailOpenRedisCache` answers as an empty cache that keeps nothing while
Redis errs, and every such answer is counted (`cache_failures()`, for metrics) and logged at most once a
minute, so an outage is visible without flooding the log."""

from __future__ import annotations

import logging
import threading
import time

from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

WARNING_INTERVAL_SECONDS = 60.0

_lock = threading.Lock()
_failures = 0
_unreported = 0  # failures since the last warning
_next_warning_at = 0.0  # time.monotonic() after which a failure is logged again


def cache_failures() -> int:
    """How many cache operations in this process have failed open."""
    return _failures


def note_cache_failure(exc: Exception) -> None:
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
        "Cache unavailable, rate limits are open (%d failures since the last warning; next warning in "
        "%d s at the earliest): %s: %s",
        unreported, WARNING_INTERVAL_SECONDS, type(exc).__name__, exc,
    )  # fmt: skip


class FailOpenRedisCache(RedisCache):
    """Django's Redis cache, but a Redis error reads as a miss, a write as done, a lock as taken: every
    limit built on it (allauth's `cache.add` lock included) lets the request through."""

    def check(self) -> None:
        """A write that raises when Redis errs: for /readyz, which must see the outage we hide."""
        super().set("health:readyz", "ok", 10)

    def add(self, key, value, timeout=None, version=None):
        try:
            return super().add(key, value, timeout, version)
        except RedisError as exc:
            note_cache_failure(exc)
            return True

    def get(self, key, default=None, version=None):
        try:
            return super().get(key, default, version)
        except RedisError as exc:
            note_cache_failure(exc)
            return default

    def set(self, key, value, timeout=None, version=None):
        try:
            super().set(key, value, timeout, version)
        except RedisError as exc:
            note_cache_failure(exc)

    def delete(self, key, version=None):
        try:
            return super().delete(key, version)
        except RedisError as exc:
            note_cache_failure(exc)
            return False

    def incr(self, key, delta=1, version=None):
        try:
            return super().incr(key, delta, version)
        except RedisError as exc:
            note_cache_failure(exc)
            return delta  # as if this were the first hit of the window

    def get_many(self, keys, version=None):
        try:
            return super().get_many(keys, version)
        except RedisError as exc:
            note_cache_failure(exc)
            return {}
