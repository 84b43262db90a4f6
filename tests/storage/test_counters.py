"""Rate limit counters in the database (``DatabaseCounters``) and the choice of the
shared store: the sliding window counter, concurrent hits, fixed windows, expiry."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from limits import parse
from limits.storage import RedisStorage
from limits.strategies import SlidingWindowCounterRateLimiter
from sqlalchemy import text

from vault.config import Settings
from vault.storage.counters import DatabaseCounters, shared_limits_storage
from vault.storage.db import Database


class Clock:
    """Seconds since the epoch, moved by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _rows(database: Database) -> list[tuple[str, int]]:
    with database.engine.connect() as conn:
        found = conn.execute(text("SELECT key, hits FROM rate_limit_counters ORDER BY key"))
        return [(str(k), int(h)) for k, h in found]


def test_a_window_allows_its_limit_and_refuses_the_next(database: Database) -> None:
    """Limit 3 in a window of 60 s: three hits are taken, the fourth refused; another key
    has its own count."""
    clock = Clock(6_000_000.0)  # the start of a window (a multiple of 60)
    counters = DatabaseCounters(database, clock=clock)
    taken = [counters.acquire_sliding_window_entry("k", 3, 60) for _ in range(4)]
    other = counters.acquire_sliding_window_entry("other", 3, 60)
    assert taken == [True, True, True, False]
    assert other is True
    assert counters.get_sliding_window("k", 60) == (0, 0.0, 3, 120.0)


def test_the_previous_window_counts_by_its_overlap(database: Database) -> None:
    """3 hits of a limit of 4 in one window; a quarter into the next, the previous one
    still counts 3 x 3/4 = 2.25: two hits are taken (3.25, then 4.25 whose whole part is
    the limit) and the third refused; two windows on, the full 4 are free again."""
    clock = Clock(6_000_000.0)
    counters = DatabaseCounters(database, clock=clock)
    first = [counters.acquire_sliding_window_entry("k", 4, 60) for _ in range(3)]
    clock.now += 75  # a quarter into the next window
    quarter = [counters.acquire_sliding_window_entry("k", 4, 60) for _ in range(3)]
    window = counters.get_sliding_window("k", 60)
    clock.now += 120  # two windows on: nothing left
    later = [counters.acquire_sliding_window_entry("k", 4, 60) for _ in range(5)]
    assert first == [True, True, True]
    assert quarter == [True, True, False]
    assert window == (3, 45.0, 2, 105.0)
    assert later == [True, True, True, True, False]


def test_concurrent_hits_never_take_more_than_the_limit(database: Database) -> None:
    """40 hits from 8 threads at once on a limit of 25: exactly 25 are taken (each hit's
    condition is checked against the row it locks)."""
    counters = DatabaseCounters(database, clock=Clock(6_000_000.0))
    with ThreadPoolExecutor(8) as pool:
        taken = list(pool.map(lambda _: counters.acquire_sliding_window_entry("k", 25, 60),
                              range(40)))  # fmt: skip
    assert sum(taken) == 25
    assert _rows(database) == [("k/100000", 25)]


def test_fixed_windows_count_expire_and_clear(database: Database) -> None:
    """``incr`` counts within the expiry and starts again after it; ``get_expiry`` tells
    when; ``clear`` and ``reset`` forget; ``check`` answers True."""
    clock = Clock(1000.0)
    counters = DatabaseCounters(database, clock=clock)
    counted = [counters.incr("f", 10), counters.incr("f", 10, amount=2)]
    expiry = counters.get_expiry("f")
    clock.now += 11
    after = (counters.get("f"), counters.incr("f", 10))
    counters.incr("g", 10)
    counters.clear("f")
    cleared = counters.get("f")
    removed = counters.reset()
    assert counted == [1, 3]
    assert expiry == 1010.0
    assert after == (0, 1)
    assert cleared == 0
    assert removed == 1
    assert counters.check() is True


def test_expired_rows_are_swept(database: Database) -> None:
    """Rows past their expiry are deleted when a hit meets them (at most once a minute
    per process)."""
    clock = Clock(6_000_000.0)
    counters = DatabaseCounters(database, clock=clock)
    counters.acquire_sliding_window_entry("old", 5, 60)
    clock.now += 600
    counters._swept -= 120
    counters.acquire_sliding_window_entry("new", 5, 60)
    assert _rows(database) == [("new/100010", 1)]


def test_limits_strategies_run_on_the_counters(database: Database) -> None:
    """``limits``' sliding window counter over the database: 2 per hour, then refused,
    with the window's stats."""
    limiter = SlidingWindowCounterRateLimiter(DatabaseCounters(database))
    item = parse("2/hour")
    hits = [limiter.hit(item, "ns", "who") for _ in range(3)]
    stats = limiter.get_window_stats(item, "ns", "who")
    assert hits == [True, True, False]
    assert stats.remaining == 0


def test_the_shared_store_is_redis_postgresql_or_none(
    database: Database, settings: Settings, tmp_path: Path
) -> None:
    """With CVAULT_REDIS_URL: Redis; else on PostgreSQL the database's counters; on SQLite
    none (each process counts in memory)."""
    chosen = shared_limits_storage(settings, database)
    with_redis = shared_limits_storage(
        dataclasses.replace(settings, redis_url="redis://127.0.0.1:6379/0"), database
    )
    if database.dialect == "postgresql":
        assert isinstance(chosen, DatabaseCounters)
    else:
        assert chosen is None
    assert isinstance(with_redis, RedisStorage)
    assert tmp_path.exists()


@pytest.mark.parametrize("url", ["http://x", "redis:// spaced", "localhost:6379"])
def test_a_bad_redis_url_is_refused_by_name(url: str) -> None:
    """A CVAULT_REDIS_URL that is not redis://, rediss:// or redis+unix:// is refused with
    the variable's name and the rule, never the value."""
    from vault.config import ConfigError  # noqa: PLC0415

    with pytest.raises(ConfigError, match="CVAULT_REDIS_URL") as caught:
        Settings.from_env({"CVAULT_REDIS_URL": url})
    assert url not in str(caught.value)
