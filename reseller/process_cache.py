"""A small per-process cache with a time to live, for lookups the API makes on every call and that may
be a few seconds stale (an API key, the subaccount a master names). Nothing in it must agree across
processes: each process keeps its own, and each entry says for how long it may be wrong. Every hit is a
deep copy, so one request's changes to a model instance never reach another's."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Hashable

clock: Callable[[], float] = time.monotonic  # a seam for tests of the time to live


class TTLCache[Value]:
    """At most `max_entries` values, each for `ttl()` seconds from when it was put (a callable, so a
    setting changed at run time applies); past `max_entries` it starts afresh rather than tracking age."""

    def __init__(self, ttl: Callable[[], float], max_entries: int = 10_000) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._entries: dict[Hashable, tuple[float, Value]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Value | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] <= clock():
            return None
        return copy.deepcopy(entry[1])

    def put(self, key: Hashable, value: Value) -> None:
        ttl = self._ttl()
        if ttl <= 0:
            return
        kept = copy.deepcopy(value)
        with self._lock:
            if len(self._entries) >= self._max_entries:
                self._entries.clear()
            self._entries[key] = (clock() + ttl, kept)

    def update(self, key: Hashable, change: Callable[[Value], None]) -> None:
        """Apply `change` to the kept value, if any, without lengthening its life."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                change(entry[1])

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
