"""A fixed-window counter in the shared cache (Redis in production), for limits that belong to the
domain rather than to allauth's login forms: reset emails per subaccount, API calls per key, SMTP AUTH
failures per IP. One cache round trip per hit; correct across processes because the cache is shared.
For limits checked on every API call, `hit_batched` and `exceeded_recently` keep a per-process tally
and memo and reach the cache at most once per interval, at the price of a stated overshoot.

The limits fail open: when the cache cannot be reached, every check answers "not limited", so a cache
outage never stops mail from being accepted (the database is the only thing an accept needs). The
configured cache (reseller/cache.py) already fails open; the guard here keeps that promise with any other
backend. Each such answer is counted (`cache_failures()`) and logged at most once a minute."""

import threading
import time

from django.core.cache import cache

from reseller.cache import cache_failures, note_cache_failure

__all__ = ["cache_failures", "exceeded", "hit", "hit_batched"]


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


class _Tally:
    """This process's view of one counter in one window: the shared count when last told, and the hits
    counted here since."""

    __slots__ = ("pending", "shared", "synced_at")

    def __init__(self) -> None:
        self.pending = 0
        self.shared = 0
        self.synced_at = float("-inf")


_clock = time.monotonic  # a seam for tests of the sync interval
_tallies: dict[str, _Tally] = {}
_tallies_lock = threading.Lock()
MAX_TALLIES = 10_000  # counters of past windows are dropped past this many


def hit_batched(key: str, *, limit: int, window_seconds: int, sync_seconds: float) -> bool:
    """`hit`, with the round trip to the shared cache made at most once per `sync_seconds` per key in
    this process: between two, hits are counted here and judged against the shared count as last seen
    plus this process's own. A process learns the others' hits only when it syncs, so the limit may be
    overshot by what the other processes let through in `sync_seconds`; a call budget can afford that,
    a login throttle could not (use `hit` there). `sync_seconds` 0 is `hit`. Fails open, as `hit`."""
    if sync_seconds <= 0:
        return hit(key, limit=limit, window_seconds=window_seconds)
    window = int(time.time() // window_seconds)
    cache_key = f"rl:{key}:{window}"
    now = _clock()
    with _tallies_lock:
        tally = _tallies.get(cache_key)
        if tally is None:
            if len(_tallies) >= MAX_TALLIES:
                _tallies.clear()
            tally = _tallies[cache_key] = _Tally()
        tally.pending += 1
        seen = tally.shared + tally.pending
        if now - tally.synced_at < sync_seconds:
            return seen <= limit
        pending, tally.pending, tally.synced_at = tally.pending, 0, now
    shared = _add(cache_key, pending, timeout=window_seconds + 1)
    if shared is None:  # the cache failed: open, and tell it these hits next time
        with _tallies_lock:
            tally.pending += pending
        return True
    with _tallies_lock:
        tally.shared = shared
        return shared + tally.pending <= limit


def _add(cache_key: str, n: int, *, timeout: int) -> int | None:
    """Add n to a counter that lives `timeout` seconds; its new value, or None when the cache fails."""
    try:
        if cache.add(cache_key, n, timeout=timeout):
            return n
        try:
            return cache.incr(cache_key, n)
        except ValueError:  # expired between add and incr
            cache.add(cache_key, n, timeout=timeout)
            return n
    except Exception as exc:  # as in hit()
        note_cache_failure(exc)
        return None


_answers: dict[str, tuple[float, bool]] = {}  # exceeded_recently's memo: key → (valid until, answer)


def exceeded_recently(key: str, *, limit: int, window_seconds: int, memo_seconds: float) -> bool:
    """`exceeded`, answered from this process's memory for `memo_seconds` after each look: a check made
    on every call (the invalid-key throttle) then costs a round trip per process per `memo_seconds`,
    not per call. Hits counted by `hit` in this process drop the memo at once (`forget_answer`); hits
    in other processes are seen within `memo_seconds`."""
    if memo_seconds <= 0:
        return exceeded(key, limit=limit, window_seconds=window_seconds)
    now = _clock()
    memo = _answers.get(key)
    if memo is not None and memo[0] > now:
        return memo[1]
    answer = exceeded(key, limit=limit, window_seconds=window_seconds)
    if len(_answers) >= MAX_TALLIES:
        _answers.clear()
    _answers[key] = (now + memo_seconds, answer)
    return answer


def forget_answer(key: str) -> None:
    """Drop `exceeded_recently`'s memo of `key` (after counting a hit on it here)."""
    _answers.pop(key, None)


def forget_all() -> None:
    """Drop every local tally and memo (tests, and a process that must start afresh)."""
    with _tallies_lock:
        _tallies.clear()
    _answers.clear()
