"""Bulk ingest of interactions: the vault's path beside the same rows without crypto.

For each backend (SQLite file, PostgreSQL) and each writer count, the same
pre-generated batches of 1,000 interactions (payload, external id, amount on
purchases) are stored twice into fresh tables:

* ``vault``: ``InteractionService.record_many`` in one transaction per batch:
  validation, customer resolution, per-customer data keys, AES-256-GCM payload
  encryption, ``INSERT ... ON CONFLICT DO NOTHING RETURNING``;
* ``floor``: the same rows, payload as clear JSON bytes, written by the same
  storage method (PostgreSQL: the vault's COPY path; SQLite: the same
  ``INSERT ... ON CONFLICT DO NOTHING`` executemany), with no validation, no
  customer resolution and no crypto.

On PostgreSQL the same run adds the independent floor of :mod:`bench.ingest_ladder`:
plain binary COPY of the same rows into a table with only the primary key and the
unique external id, then with each index / constraint of ``interactions`` added one
at a time, with the server's CPU per 1,000 rows, so the price of each is visible.

Reported: rows/s (wall), CPU-ms per 1,000 rows of the client process(es), and
the ratio vault/floor. Run: ``python -m bench.ingest --rows 200000``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, delete
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bench.common import (
    BENCH,
    CHANNELS,
    Target,
    drop_target,
    new_target,
    open_vault,
)
from bench.ingest_ladder import ladder
from vault.customers import CustomerInput
from vault.interactions import InteractionInput
from vault.interactions.copy import COLUMNS, copy_rows_postgresql
from vault.storage.db import make_engine
from vault.storage.models import InteractionRow

BATCH = 1000


def _batches(customers: Sequence[uuid.UUID], rows: int, seed: int) -> list[list[InteractionInput]]:
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    items = []
    for n in range(rows):
        channel, kind = CHANNELS[rng.randrange(len(CHANNELS))]
        money = kind == "purchase"
        items.append(
            InteractionInput(
                customer_id=customers[rng.randrange(len(customers))],
                channel=channel,
                type=kind,
                occurred_at=start + timedelta(seconds=rng.randrange(300 * 86400)),
                amount=Decimal(rng.randrange(100, 50000)) / 100 if money else None,
                currency="EUR" if money else None,
                external_id=f"bench-{seed}-{n}",
                payload={"url": f"/p/{rng.randrange(10_000)}", "ref": "newsletter", "n": n},
            )
        )
    return [items[i : i + BATCH] for i in range(0, rows, BATCH)]


def _reset(t: Target) -> None:
    engine = make_engine(t.url, schema=t.schema)
    with engine.begin() as conn:
        conn.execute(delete(InteractionRow))
    engine.dispose()


def _write_vault(t: Target, batches: list[list[InteractionInput]]) -> tuple[int, float]:
    vault = open_vault(t)
    cpu = time.process_time()
    stored = 0
    for batch in batches:
        with vault.unit(BENCH) as s:
            stored += vault.interactions.record_many(s, batch).inserted
    cpu = time.process_time() - cpu
    vault.close()
    return stored, cpu


def _floor_rows(batch: Sequence[InteractionInput], now: datetime) -> list[tuple[Any, ...]]:
    """The stored columns of a batch (``COLUMNS`` order), payload as clear JSON bytes."""
    return [
        (
            uuid.uuid4(), i.customer_id, i.channel, i.type, i.occurred_at,
            None if i.amount is None else int(i.amount * 100), i.currency, i.external_id,
            json.dumps(i.payload).encode(), now,
        )
        for i in batch
    ]  # fmt: skip


def _write_floor(t: Target, batches: list[list[InteractionInput]]) -> tuple[int, float]:
    engine = make_engine(t.url, schema=t.schema)
    table = cast("Table", InteractionRow.__table__)
    stmt = sqlite_insert(table).on_conflict_do_nothing(index_elements=["external_id"])
    now = datetime.now(UTC)
    cpu = time.process_time()
    stored = 0
    for batch in batches:
        rows = _floor_rows(batch, now)
        with engine.begin() as conn:
            if t.backend == "postgresql":
                stored += copy_rows_postgresql(conn.connection.driver_connection, rows)
            else:
                stored += conn.execute(
                    stmt, [dict(zip(COLUMNS, r, strict=True)) for r in rows]
                ).rowcount
    cpu = time.process_time() - cpu
    engine.dispose()
    return stored, cpu


def _worker(args: tuple[str, Target, list[list[InteractionInput]]]) -> tuple[int, float]:
    mode, t, batches = args
    return (_write_vault if mode == "vault" else _write_floor)(t, batches)


def _run(
    mode: str, t: Target, batches: list[list[InteractionInput]], writers: int
) -> dict[str, float]:
    _reset(t)
    shares = [batches[w::writers] for w in range(writers)]
    started = time.perf_counter()
    if writers == 1:
        results = [_worker((mode, t, batches))]
    else:
        with mp.get_context("fork").Pool(writers) as pool:
            results = pool.map(_worker, [(mode, t, share) for share in shares])
    wall = time.perf_counter() - started
    rows = sum(r[0] for r in results)
    cpu = sum(r[1] for r in results)
    return {
        "rows": rows,
        "wall": wall,
        "rows_per_s": rows / wall,
        "cpu_ms_per_1k": cpu / rows * 1e6,
    }


def _prepare(backend: str, workdir: Path, customers: int) -> tuple[Target, list[uuid.UUID]]:
    target = new_target(backend, workdir, "ingest")
    vault = open_vault(target)
    ids = []
    for start in range(0, customers, 500):
        with vault.unit(BENCH) as s:
            ids += [
                vault.customers.create(s, CustomerInput(first_name=f"Bench {n}")).id
                for n in range(start, min(customers, start + 500))
            ]
    vault.close()
    return target, ids


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--writers", default="1,2", help="writer process counts (PostgreSQL)")
    parser.add_argument(
        "--no-ladder", dest="ladder", action="store_false",
        help="skip the per-index COPY floor (bench.ingest_ladder) on PostgreSQL",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write raw results here")
    args = parser.parse_args(argv)

    results: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            target, ids = _prepare(backend, Path(tmp), args.customers)
            batches = _batches(ids, args.rows, seed=1)
            writer_counts = (
                [1] if backend == "sqlite" else [int(w) for w in args.writers.split(",")]
            )
            try:
                for writers in writer_counts:
                    runs: dict[str, list[dict[str, float]]] = {"vault": [], "floor": []}
                    _run("floor", target, batches[:20], writers)  # warm-up: cache, pool, plans
                    for _ in range(args.repeat):
                        for mode in ("floor", "vault"):  # alternate, so drift hits both
                            runs[mode].append(_run(mode, target, batches, writers))
                    for mode, rs in runs.items():
                        best = max(r["rows_per_s"] for r in rs)
                        results.append(
                            {
                                "backend": backend,
                                "writers": writers,
                                "mode": mode,
                                "rows": int(rs[0]["rows"]),
                                "best_rows_per_s": round(best),
                                "median_rows_per_s": round(
                                    statistics.median(r["rows_per_s"] for r in rs)
                                ),
                                "cpu_ms_per_1k": round(
                                    statistics.median(r["cpu_ms_per_1k"] for r in rs), 1
                                ),
                            }
                        )
                        print(json.dumps(results[-1]), flush=True)
                if backend == "postgresql" and args.ladder:
                    now = datetime.now(UTC)
                    rows = [_floor_rows(b, now) for b in batches]
                    for step in ladder(target, rows, args.repeat):
                        steps.append(step)
                        print(json.dumps(step), flush=True)
            finally:
                drop_target(target)
    print()
    print(f"{datetime.now(UTC):%Y-%m-%d} on {platform.node()} ({os.cpu_count()} CPUs, "
          f"{platform.python_implementation()} {platform.python_version()})")  # fmt: skip
    print(
        "| backend | writers | path | rows | best rows/s | median rows/s "
        "| client CPU-ms / 1k rows | vs floor (median) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        floor = next(
            f
            for f in results
            if (f["backend"], f["writers"], f["mode"]) == (r["backend"], r["writers"], "floor")
        )
        ratio = r["median_rows_per_s"] / floor["median_rows_per_s"]
        print(f"| {r['backend']} | {r['writers']} | {r['mode']} | {r['rows']:,} | "
              f"{r['best_rows_per_s']:,} | {r['median_rows_per_s']:,} | {r['cpu_ms_per_1k']} | "
              f"{ratio:.2f}x |")  # fmt: skip
    if steps:
        _print_ladder(steps)
    if args.json:
        args.json.write_text(json.dumps({"paths": results, "ladder": steps}, indent=2))


def _print_ladder(steps: list[dict[str, Any]]) -> None:
    base = steps[0]
    print()
    print("Independent floor: binary COPY, no pre-check, no crypto (PostgreSQL, 1 writer)")
    print(
        "| table has | rows/s | client CPU-ms / 1k | PostgreSQL CPU-ms / 1k "
        "| PostgreSQL CPU-ms / 1k added |"
    )
    print("| --- | --- | --- | --- | --- |")
    for s in steps:
        server, first = s["server_cpu_ms_per_1k"], base["server_cpu_ms_per_1k"]
        added = "-" if server is None or first is None or s is base else f"{server - first:+.1f}"
        print(f"| {s['step']} | {s['rows_per_s']:,.0f} | {s['client_cpu_ms_per_1k']:.1f} | "
              f"{'-' if server is None else f'{server:.1f}'} | {added} |")  # fmt: skip


if __name__ == "__main__":
    main()
