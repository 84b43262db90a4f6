"""The shared rate limiter's cost per request (issue 15 item 5), client side, PostgreSQL.

A schema of the run's own with the ``rate_limit_counters`` table (dropped at the end).
Three ways to count one GraphQL request against the burst and minute windows, each
``--requests`` times in turn for ``--rounds`` rounds, 16 callers' keys: ``limits``' two
hits (two statements, each in a transaction of its own) on a worker thread, as before;
the one-statement hit on a worker thread; the one-statement hit on the event loop's
pool (today's path when the endpoint's pool is open). Prints this process's CPU time and
the wall time per request (sequential: round trips included); PostgreSQL's time is not in it.

    PYTHONPATH=$PWD .venv/bin/python -m bench.rate_limit [--requests 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine

from api.graphql.ratelimit import SharedRateLimiter
from bench.common import PG_URL, admin_sql, emit
from vault.storage.aio import AsyncPool
from vault.storage.counters import DatabaseCounters
from vault.storage.db import Database

TABLE = (
    "CREATE TABLE {}.rate_limit_counters (key varchar(255) PRIMARY KEY, "
    "hits integer NOT NULL, expires_at double precision NOT NULL)"
)


async def _timed(call: Callable[[str], Awaitable[float]], n: int) -> tuple[float, float]:
    for i in range(50):  # warm: connections, prepared statements
        await call(f"k{i % 16}")
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(n):
        await call(f"k{i % 16}")
    return time.process_time() - cpu, time.perf_counter() - wall


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    schema = f"bench_rl_{uuid.uuid4().hex[:8]}"
    admin_sql([f'CREATE SCHEMA "{schema}"', TABLE.format(f'"{schema}"')])
    engine = create_engine(f"{PG_URL}?options={quote(f'-csearch_path={schema}')}")
    try:
        limiter = SharedRateLimiter(DatabaseCounters(Database(engine)), 10**9, "d".__add__)

        def two_statements(key: str) -> float:
            stored = limiter._stored(key)
            hits = [limiter._limiter.hit(w, "graphql", stored) for w in limiter._windows]
            return 0.0 if all(hits) else 1.0

        def threaded(fn: Callable[[str], float]) -> Callable[[str], Awaitable[float]]:
            return lambda key: asyncio.to_thread(fn, key)

        async def on_the_loop() -> tuple[float, float]:
            pool = await asyncio.to_thread(AsyncPool, engine, size=4)
            await pool.open()
            try:
                return await _timed(lambda key: limiter.allow_on(pool, key), args.requests)
            finally:
                await pool.close()

        ways: dict[str, Callable[[], Coroutine[Any, Any, tuple[float, float]]]] = {
            "two statements, worker thread (before)": lambda: _timed(
                threaded(two_statements), args.requests
            ),
            "one statement, worker thread": lambda: _timed(threaded(limiter.allow), args.requests),
            "one statement, event loop": on_the_loop,
        }
        for n in range(args.rounds):
            for name, way in ways.items():
                cpu, wall = asyncio.run(way())
                emit({"bench": "rate_limit", "round": n + 1, "way": name,
                      "client_cpu_ms_per_req": round(cpu / args.requests * 1000, 3),
                      "wall_ms_per_req": round(wall / args.requests * 1000, 3)})  # fmt: skip
    finally:
        engine.dispose()
        admin_sql([f'DROP SCHEMA "{schema}" CASCADE'])


if __name__ == "__main__":
    main()
