"""The domain's rate limits: counted in the shared cache, and open while the cache is down (DESIGN: the
database is the only thing an accept needs)."""

import logging

from accounts import ratelimit


def test_hits_over_the_limit_are_refused_within_the_window():
    assert [ratelimit.hit("k", limit=2, window_seconds=60) for _ in range(3)] == [True, True, False]
    assert ratelimit.exceeded("k", limit=2, window_seconds=60)
    assert not ratelimit.exceeded("other", limit=2, window_seconds=60)


def test_a_dead_cache_lets_every_hit_through_and_says_so(dead_cache, caplog):
    with caplog.at_level(logging.WARNING, logger="accounts.ratelimit"):
        assert all(ratelimit.hit("k", limit=1, window_seconds=60) for _ in range(3))
        assert not ratelimit.exceeded("k", limit=1, window_seconds=60)
    assert "rate limit" in caplog.text.lower()
