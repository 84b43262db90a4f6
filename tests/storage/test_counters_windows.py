"""Several sliding windows of one caller hit together (``DatabaseCounters.acquire_windows``):
one statement on PostgreSQL, on a worker thread or on the event loop's pool; each window
counted only when the ones before it took the hit; the limits hold under concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import event, text

from vault.storage.aio import AsyncPool
from vault.storage.counters import DatabaseCounters
from vault.storage.db import Database, StorageUnavailable

BURST = ("burst", 3, 6)  # 3 in 6 seconds
MINUTE = ("minute", 5, 60)  # 5 a minute


class Clock:
    """Seconds since the epoch, moved by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _rows(database: Database) -> dict[str, int]:
    with database.engine.connect() as conn:
        found = conn.execute(text("SELECT key, hits FROM rate_limit_counters"))
        return {str(k).split("/")[0]: int(h) for k, h in found}


@pytest.fixture
def statements(database: Database) -> Iterator[list[str]]:
    """The statements sent on the database's engine while the test runs."""
    sent: list[str] = []

    def record(*args: Any) -> None:
        sent.append(str(args[2]))

    event.listen(database.engine, "before_cursor_execute", record)
    yield sent
    event.remove(database.engine, "before_cursor_execute", record)


def test_two_windows_are_one_statement_on_postgresql(
    database: Database, statements: list[str]
) -> None:
    """Hitting a burst and a minute window sends one statement on PostgreSQL (two,
    one per window, on SQLite, which has no data-modifying CTEs) and counts both."""
    counters = DatabaseCounters(database, clock=Clock(6_000_000.0))
    taken = counters.acquire_windows([BURST, MINUTE])
    counting = [s for s in statements if "rate_limit_counters" in s]
    expected = 1 if database.dialect == "postgresql" else 2
    assert (2, expected) == (taken, len(counting))
    assert _rows(database) == {"burst": 1, "minute": 1}


def test_a_refused_window_leaves_the_later_ones_uncounted(database: Database) -> None:
    """The 4th hit in 6 seconds is refused by the burst window (index 0 took none): the
    minute window keeps its 3; 6 seconds later the burst allows again, until the minute
    window's 5 are taken (index 1: the burst counted, the minute refused)."""
    clock = Clock(6_000_000.0)
    counters = DatabaseCounters(database, clock=clock)
    first = [counters.acquire_windows([BURST, MINUTE]) for _ in range(4)]
    after_first = _rows(database)
    clock.now += 12  # the burst's previous window no longer overlaps
    second = [counters.acquire_windows([BURST, MINUTE]) for _ in range(3)]
    assert first == [2, 2, 2, 0]
    assert after_first == {"burst": 3, "minute": 3}
    assert second == [2, 2, 1]


def test_concurrent_window_hits_never_take_more_than_the_limit(database: Database) -> None:
    """40 hits from 8 threads at once, a burst of 30 and a minute of 25: exactly 25 are
    allowed, and the minute row counts 25 (each window checked against the row it locks)."""
    counters = DatabaseCounters(database, clock=Clock(6_000_000.0))
    windows = [("burst", 30, 6), ("minute", 25, 60)]
    with ThreadPoolExecutor(8) as pool:
        taken = list(pool.map(lambda _: counters.acquire_windows(windows), range(40)))
    assert taken.count(2) == 25
    assert _rows(database)["minute"] == 25


def test_the_event_loop_sends_one_statement_and_holds_the_limit(database: Database) -> None:
    """On PostgreSQL's event-loop pool: 40 concurrent hits, a burst of 30 and a minute of
    25, are 40 statements on the pool, none on the engine, and exactly 25 are allowed."""
    if database.dialect != "postgresql":
        pytest.skip("the event-loop pool is PostgreSQL's")
    counters = DatabaseCounters(database, clock=Clock(6_000_000.0))
    windows = [("burst", 30, 6), ("minute", 25, 60)]

    async def run() -> tuple[list[int], int]:
        pool = AsyncPool(database.engine, size=4)
        await pool.open()
        try:
            hits = [counters.acquire_windows_on(pool, windows) for _ in range(40)]
            return list(await asyncio.gather(*hits)), pool.statements
        finally:
            await pool.close()

    taken, sent = asyncio.run(run())
    assert (taken.count(2), sent) == (25, 40)
    assert {"burst": 40 - taken.count(0), "minute": 25} == _rows(database)


def test_no_connection_in_time_is_the_503_not_a_hang(database: Database) -> None:
    """When the event-loop pool has no connection to give within ``wait`` (all taken, as
    in an outage), a statement raises StorageUnavailable (the gateway's 503) instead of
    waiting the pool's 30 seconds; the message names no statement."""
    if database.dialect != "postgresql":
        pytest.skip("the event-loop pool is PostgreSQL's")

    async def run() -> str:
        pool = AsyncPool(database.engine, size=1)
        await pool.open()
        try:
            async with pool._pool.connection():  # the only connection, held
                with pytest.raises(StorageUnavailable) as refused:
                    await pool.rows("SELECT 1 AS one", {}, wait=0.2)
            return str(refused.value)
        finally:
            await pool.close()

    message = asyncio.run(run())
    assert ("unreachable" in message, "SELECT" in message) == (True, False)
