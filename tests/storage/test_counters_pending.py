"""A pending hit of two windows (``DatabaseCounters.pending_windows``) carried by another
statement: the hot profile read's (``vault.profiles.reader.LIMITED_SQL``) counts it as
``acquire_windows`` would, exactly under concurrency, and reads nothing for a refused
caller; the hit is counted once whichever statement sends it."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from vault.profiles.reader import LIMITED_SQL, PROFILE_SQL
from vault.storage.aio import AsyncPool
from vault.storage.counters import DatabaseCounters, WindowsHit
from vault.storage.db import Database

WINDOWS = [("burst", 30, 6), ("minute", 25, 60)]  # 30 in 6 seconds, 25 a minute
READ = {
    "purpose": "support", "granted": "granted", "scopes": ["support"], "payload": False, "n": 0,
}  # fmt: skip


def _rows(database: Database) -> dict[str, int]:
    with database.engine.connect() as conn:
        found = conn.execute(text("SELECT key, hits FROM rate_limit_counters"))
        return {str(k).split("/")[0]: int(h) for k, h in found}


def test_the_counters_repr_names_the_dialect(database: Database) -> None:
    """``repr`` names the dialect (and never a key)."""
    counters = DatabaseCounters(database, clock=lambda: 6_000_000.0)
    assert repr(counters) == f"DatabaseCounters(dialect={database.dialect!r})"
    assert repr(counters.pending_windows(WINDOWS)) == "WindowsHit(taken=None)"


def test_a_pending_hit_is_counted_once(database: Database) -> None:
    """Recorded by the statement that carried it, a hit is not sent again, and cannot
    be recorded twice."""
    if database.dialect != "postgresql":
        pytest.skip("the event-loop pool is PostgreSQL's")
    counters = DatabaseCounters(database, clock=lambda: 6_000_000.0)

    async def run() -> tuple[int, int, int]:
        pool = AsyncPool(database.engine, size=1)
        await pool.open()
        try:
            carried = counters.pending_windows(WINDOWS)
            carried.record(2)
            alone = counters.pending_windows(WINDOWS)
            sent = (await carried.send(pool), await alone.send(pool), await alone.send(pool))
            with pytest.raises(RuntimeError):
                alone.record(2)
            return sent[0], sent[1], pool.statements
        finally:
            await pool.close()

    assert asyncio.run(run()) == (2, 2, 1)
    assert _rows(database) == {"burst": 1, "minute": 1}


def test_the_read_statement_holds_the_limit_under_concurrency(database: Database) -> None:
    """40 concurrent profile reads carrying their caller's hit, a burst of 30 and a minute
    of 25: exactly 25 are allowed, each statement one round trip; a refused read has no
    profile row (``rl.taken`` gates it), and the counters are what ``acquire_windows``
    would have left."""
    if database.dialect != "postgresql":
        pytest.skip("the event-loop pool is PostgreSQL's")
    counters = DatabaseCounters(database, clock=lambda: 6_000_000.0)

    async def one(pool: AsyncPool) -> tuple[int, list[dict[str, Any]]]:
        hit: WindowsHit = counters.pending_windows(WINDOWS)
        params = {**READ, "id": uuid.uuid4(), "now": datetime.now(UTC), **hit.params()}
        rows = await pool.rows(LIMITED_SQL[PROFILE_SQL], params)
        hit.record(int(rows[0]["rl_taken"]))
        assert hit.taken is not None
        return hit.taken, rows

    async def run() -> tuple[list[int], list[int], int]:
        pool = AsyncPool(database.engine, size=4)
        await pool.open()
        try:
            answers = await asyncio.gather(*(one(pool) for _ in range(40)))
            return [t for t, _ in answers], [len(r) for _, r in answers], pool.statements
        finally:
            await pool.close()

    taken, rows, sent = asyncio.run(run())
    assert (taken.count(2), sent, set(rows)) == (25, 40, {1})
    assert {"burst": 40 - taken.count(0), "minute": 25} == _rows(database)
