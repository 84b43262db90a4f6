"""What the event-loop pool's checkout costs per statement, beside a held connection.

:class:`vault.storage.aio.AsyncPool` takes a connection from its pool for each
statement and gives it back. This sends the same prepared one-row statement
(``SELECT $1::int``) ``--statements`` times, ``--concurrency`` at a time, three ways in
the same run and on the same database, and prints the CPU time of this process per
statement (the server's is not in it):

* ``held``: one plain ``AsyncConnection`` per worker, kept open (the floor);
* ``queue of held``: ``--size`` of those connections shared through an ``asyncio.Queue``
  (the least a pool can cost: no timeout, no health check, no reconnection);
* ``pool.rows``: :meth:`AsyncPool.rows` (checkout, execute, fetch, return);
* ``checkout only``: the pool's checkout and return around nothing.

The three alternate ``--rounds`` times so that a change in the machine's load falls on
all of them. Run: ``python -m bench.pool_checkout [--statements 20000] [--concurrency 1]``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from sqlalchemy import create_engine

from bench.common import PG_URL, emit
from vault.storage.aio import AsyncPool

QUERY = "SELECT %(n)s::int AS n"


async def _timed(
    name: str, workers: int, statements: int, one: Callable[[int], Awaitable[Any]]
) -> float:
    """CPU milliseconds per statement of ``statements`` calls of ``one`` by ``workers``."""
    left = [statements]

    async def worker(n: int) -> None:
        while left[0] > 0:
            left[0] -= 1
            await one(n)

    cpu = time.process_time()
    await asyncio.gather(*(worker(n) for n in range(workers)))
    return (time.process_time() - cpu) * 1000 / statements


async def _run(args: argparse.Namespace) -> None:
    engine = create_engine(PG_URL)
    pool = await asyncio.to_thread(AsyncPool, engine, size=args.size)
    await pool.open()
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    held: list[AsyncConnection[dict[str, Any]]] = []
    for _ in range(max(args.concurrency, args.size)):
        connection = await AsyncConnection.connect(url, autocommit=True, row_factory=dict_row)
        connection.prepare_threshold = 0
        held.append(connection)

    async def on_held(n: int) -> None:
        cursor = await held[n].execute(QUERY, {"n": n}, prepare=True)
        await cursor.fetchall()

    idle: asyncio.Queue[AsyncConnection[dict[str, Any]]] = asyncio.Queue()
    for connection in held[: args.size]:
        idle.put_nowait(connection)

    async def on_queue(n: int) -> None:
        connection = await idle.get()
        try:
            cursor = await connection.execute(QUERY, {"n": n}, prepare=True)
            await cursor.fetchall()
        finally:
            idle.put_nowait(connection)

    async def on_pool(n: int) -> None:
        await pool.rows(QUERY, {"n": n})

    async def checkout(_n: int) -> None:
        async with pool._pool.connection():
            pass

    ways: dict[str, Callable[[int], Awaitable[Any]]] = {
        "held (floor)": on_held, "queue of held": on_queue, "pool.rows": on_pool,
        "checkout only": checkout,
    }  # fmt: skip
    totals: dict[str, list[float]] = {name: [] for name in ways}
    try:
        for name, one in ways.items():  # a warm-up: prepared on every connection
            await _timed(name, args.concurrency, 500, one)
        for _ in range(args.rounds):
            for name, one in ways.items():
                totals[name].append(await _timed(name, args.concurrency, args.statements, one))
    finally:
        for connection in held:
            await connection.close()
        await pool.close()
        engine.dispose()
    floor = min(totals["held (floor)"])
    for name, runs in totals.items():
        emit({
            "way": name, "concurrency": args.concurrency, "pool_size": args.size,
            "statements": args.statements, "cpu_ms_per_statement": round(min(runs), 4),
            "runs": [round(r, 4) for r in runs],
            "over_floor_ms": round(min(runs) - floor, 4),
        })  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--statements", type=int, default=20_000)
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--size", type=int, default=4, help="the pool's connections at most")
    p.add_argument("--rounds", type=int, default=3)
    asyncio.run(_run(p.parse_args(argv)))


if __name__ == "__main__":
    main()
