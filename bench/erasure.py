"""Erasure of a customer with 100,000 interactions: unreadable at once, purged after.

For each backend, a fresh schema (PostgreSQL) or file (SQLite) holds some thousands
of other customers with a few interactions each, and ``2 x repeat`` customers with
``--interactions`` interactions each (payloads sealed under their data keys, loaded
with COPY on PostgreSQL). Then, alternating so that drift hits both:

* ``erase``: ``Vault.unit`` + ``ErasureService.erase`` on a fresh customer, timed from
  before the unit opens to after it commits (the shred list append with its fsync, the
  key destroyed, the tombstone, deletes, the audit entry, COMMIT) = "unreadable";
  beside it the floor ``UPDATE data_keys SET wrapped_key = NULL ...; COMMIT`` on
  another customer, on a connection from an engine built the same way;
* ``purge``: ``ErasureService.purge`` of the erased customer's interactions (batches of
  10,000, each its own transaction, then one audit entry); beside it the floor
  ``DELETE FROM interactions WHERE customer_id = ...; COMMIT`` in one statement.

After each erase the benchmark checks that the data key no longer opens (this
process's cache, and a keyring opened afresh). One more erase runs with statement
timings to show where the time goes. Run: ``python -m bench.erasure``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, create_engine, event, insert, text

from bench.common import (
    BENCH,
    CHANNELS,
    PG_URL,
    Target,
    drop_target,
    new_target,
    open_vault,
)
from vault.crypto import DecryptionError
from vault.customers import CustomerInput, ExternalId
from vault.interactions.copy import copy_insert_postgresql
from vault.runtime import Vault
from vault.storage.db import make_engine
from vault.storage.models import InteractionRow
from vault.storage.sql import new_ids
from vault.types import PAYLOAD_FIELD

LOAD_CHUNK = 10_000


def _person(n: int) -> CustomerInput:
    return CustomerInput(
        email=f"bench.person.{n}@example.org", phone=f"+3361234{n % 10_000:04d}",
        first_name="\u0634\u06cc\u0631\u06cc\u0646", last_name=f"Benchmark {n}",
        address=f"{n} Rue de la Paix, Paris", tier="gold", tags=["vip", f"t{n % 7}"],
        attributes={"segment": n % 11}, external_ids=[ExternalId("shop", f"bench-{n}")],
    )  # fmt: skip


def _customers(vault: Vault, count: int, start: int) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = []
    for first in range(start, start + count, 500):
        with vault.unit(BENCH) as s:
            ids += [
                vault.customers.create(s, _person(n), check_duplicates=False).id  # phones repeat
                for n in range(first, min(start + count, first + 500))
            ]
    return ids


def _rows(vault: Vault, cid: uuid.UUID, count: int, rng: random.Random) -> list[dict[str, Any]]:
    """Interactions of one customer as the vault stores them (payload sealed)."""
    with vault.db.transaction() as s:
        key = vault.keys.get(s, cid)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    now = datetime.now(UTC)
    rows = []
    for n, iid in enumerate(new_ids(count)):
        channel, kind = CHANNELS[rng.randrange(len(CHANNELS))]
        money = kind == "purchase"
        payload = json.dumps({"url": f"/p/{rng.randrange(10_000)}", "ref": "newsletter", "n": n})
        rows.append(
            {
                "id": iid, "customer_id": cid, "channel": channel, "type": kind,
                "occurred_at": start + timedelta(seconds=rng.randrange(365 * 86400)),
                "amount_minor": rng.randrange(100, 50_000) if money else None,
                "currency": "EUR" if money else None,
                "external_id": f"bench-{cid.hex[:12]}-{n}",
                "payload_ct": key.encrypt(payload.encode(), field=PAYLOAD_FIELD, record_id=iid),
                "recorded_at": now,
            }
        )  # fmt: skip
    return rows


def _load(t: Target, engine: Engine, rows: list[dict[str, Any]]) -> None:
    table = cast("Table", InteractionRow.__table__)
    for first in range(0, len(rows), LOAD_CHUNK):
        chunk = rows[first : first + LOAD_CHUNK]
        with engine.begin() as conn:
            if t.backend == "postgresql":
                copy_insert_postgresql(conn.connection.driver_connection, chunk)
            else:
                conn.execute(insert(table), chunk)


def _prepare(
    backend: str, workdir: Path, *, others: int, per_other: int, big: int, repeat: int
) -> tuple[Target, list[uuid.UUID], list[uuid.UUID]]:
    """A fresh database: ``others`` customers with ``per_other`` interactions each, and
    ``repeat`` customers to erase plus ``repeat`` for the floor, ``big`` interactions each."""
    target = new_target(backend, workdir, "erasure")
    engine = make_engine(target.url, schema=target.schema)
    vault = open_vault(target)
    rng = random.Random(5)
    started = time.perf_counter()
    other_ids = _customers(vault, others, 0)
    for first in range(0, len(other_ids), 500):
        rows = [
            r for cid in other_ids[first : first + 500] for r in _rows(vault, cid, per_other, rng)
        ]
        _load(target, engine, rows)
    erase_ids = _customers(vault, repeat, others)
    floor_ids = _customers(vault, repeat, others + repeat)
    for cid in [*erase_ids, *floor_ids]:
        _load(target, engine, _rows(vault, cid, big, rng))
    with engine.connect() as conn:
        if backend == "postgresql":
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
        else:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
    os.sync()  # the load's dirty pages would otherwise land on the first timed fsync
    print(f"# {backend}: loaded in {time.perf_counter() - started:.1f} s", flush=True)
    vault.close()
    engine.dispose()
    return target, erase_ids, floor_ids


def _erase(vault: Vault, cid: uuid.UUID) -> tuple[float, float]:
    """(ms from before the unit opens to after its commit, ms inside erase())."""
    started = time.perf_counter()
    with vault.unit(BENCH) as s:
        inner = time.perf_counter()
        vault.erasure.erase(s, cid)
        inner = time.perf_counter() - inner
    return (time.perf_counter() - started) * 1e3, inner * 1e3


def _check_unreadable(vault: Vault, t: Target, cid: uuid.UUID) -> None:
    for keys in (vault.keys, open_vault(t).keys):
        with vault.db.transaction() as s:
            try:
                keys.get(s, cid)
            except DecryptionError:
                continue
        raise SystemExit(f"customer {cid} is still readable after erasure")


def _floor_destroy(engine: Engine, cid: uuid.UUID) -> float:
    started = time.perf_counter()
    with engine.connect() as conn:
        conn.execute(
            text(
                "UPDATE data_keys SET wrapped_key = NULL, kek_version = NULL, "
                "destroyed_at = :now WHERE customer_id = :cid"
            ),
            {"now": datetime.now(UTC).replace(tzinfo=None), "cid": _bind_id(engine, cid)},
        )
        conn.commit()
    return (time.perf_counter() - started) * 1e3


def _floor_delete(engine: Engine, cid: uuid.UUID) -> tuple[float, int]:
    started = time.perf_counter()
    with engine.connect() as conn:
        deleted = conn.execute(
            text("DELETE FROM interactions WHERE customer_id = :cid"),
            {"cid": _bind_id(engine, cid)},
        ).rowcount
        conn.commit()
    return (time.perf_counter() - started) * 1e3, deleted


def _bind_id(engine: Engine, cid: uuid.UUID) -> uuid.UUID | str:
    # SQLAlchemy's Uuid stores 32 hex characters on SQLite; a text() statement gets no type.
    return cid.hex if engine.dialect.name == "sqlite" else cid


@contextmanager
def _statement_times(engine: Engine) -> Iterator[dict[str, list[float]]]:
    """Milliseconds per statement kind (first words of the SQL) while the block runs."""
    times: dict[str, list[float]] = defaultdict(list)
    started: list[float] = []

    def before(_c: Connection, _cur: Any, _stmt: str, *_a: Any) -> None:  # noqa: ANN401
        started.append(time.perf_counter())

    def after(_c: Connection, _cur: Any, stmt: str, *_a: Any) -> None:  # noqa: ANN401
        words = " ".join(stmt.split()[:3]).replace('"', "")
        times[words].append((time.perf_counter() - started.pop()) * 1e3)

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield times
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


def _profile(vault: Vault) -> dict[str, Any]:
    """One erase of a fresh customer (few interactions) with statement timings, and the
    cost of a shred list append on its own."""
    cid = _customers(vault, 1, 10_000_000)[0]
    with _statement_times(vault.db.engine) as times:
        total, _inner = _erase(vault, cid)
    shreds = []
    for _ in range(20):
        started = time.perf_counter()
        vault.keyring.shred(uuid.uuid4())
        shreds.append((time.perf_counter() - started) * 1e3)
    return {
        "erase_ms": round(total, 2),
        "statements": {k: round(sum(v), 2) for k, v in times.items()},
        "shred_append_fsync_ms_median": round(statistics.median(shreds), 2),
    }


def _summary(name: str, values: Sequence[float]) -> dict[str, Any]:
    return {
        f"{name}_median": round(statistics.median(values), 2),
        f"{name}_max": round(max(values), 2),
        f"{name}_runs": [round(v, 1) for v in values],
    }


def run_backend(backend: str, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    big = args.interactions if backend == "postgresql" else args.sqlite_interactions
    others = args.others if backend == "postgresql" else args.sqlite_others
    target, erase_ids, floor_ids = _prepare(
        backend, workdir, others=others, per_other=args.per_other, big=big, repeat=args.repeat
    )
    try:
        vault = open_vault(target)
        floor = make_engine(target.url, schema=target.schema)
        for n in range(2):  # warm-up: pool, plans, caches
            _erase(vault, _customers(vault, 1, 20_000_000 + 2 * n)[0])
            _floor_destroy(floor, _customers(vault, 1, 20_000_001 + 2 * n)[0])
        load_before = os.getloadavg()[0]
        erase_ms, inner_ms, destroy_ms, pending = [], [], [], []
        for cid, fid in zip(erase_ids, floor_ids, strict=True):
            total, inner = _erase(vault, cid)
            erase_ms.append(total)
            inner_ms.append(inner)
            destroy_ms.append(_floor_destroy(floor, fid))
            _check_unreadable(vault, target, cid)
        purge_s, delete_s = [], []
        for cid, fid in zip(erase_ids, floor_ids, strict=True):
            started = time.perf_counter()
            pending.append(vault.erasure.purge(vault.db, cid))
            purge_s.append(time.perf_counter() - started)
            ms, deleted = _floor_delete(floor, fid)
            delete_s.append(ms / 1e3)
            if deleted != big or pending[-1] != big:
                raise SystemExit(f"expected {big} rows, purged {pending[-1]}, deleted {deleted}")
        load_after = os.getloadavg()[0]
        result = {
            "backend": backend,
            "load_avg_1m": [round(load_before, 2), round(load_after, 2)],
            "interactions_per_customer": big,
            "other_customers": others,
            "repeat": args.repeat,
            **_summary("erase_to_commit_ms", erase_ms),
            **_summary("erase_call_ms", inner_ms),
            **_summary("floor_destroy_commit_ms", destroy_ms),
            **_summary("purge_s", purge_s),
            **_summary("floor_delete_s", delete_s),
            "profile": _profile(vault),
        }
        vault.close()
        floor.dispose()
        return result
    finally:
        drop_target(target)


def _machine() -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    engine = create_engine(PG_URL)
    try:
        with engine.connect() as conn:
            version = str(conn.scalar(text("SHOW server_version")))
    finally:
        engine.dispose()
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, `{platform.node()}` (nproc {os.cpu_count()}, "
        f"{mem:.0f} GiB RAM, CPython {platform.python_version()}, PostgreSQL {version})"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--interactions", type=int, default=100_000)
    parser.add_argument("--others", type=int, default=5_000)
    parser.add_argument("--per-other", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sqlite-interactions", type=int, default=20_000)
    parser.add_argument("--sqlite-others", type=int, default=1_000)
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument("--json", type=Path, help="also write raw results here")
    args = parser.parse_args(argv)

    machine = _machine()
    results = []
    with tempfile.TemporaryDirectory(prefix="cvault-bench-erasure-") as tmp:
        for backend in args.backends.split(","):
            results.append(run_backend(backend, Path(tmp), args))
            print(json.dumps(results[-1]), flush=True)
    print()
    print(machine)
    print(
        "| backend | interactions | erase -> commit (median / max) | erase() call "
        "| floor: UPDATE data_keys + COMMIT | purge (median / max) "
        "| floor: one DELETE + COMMIT | load avg (1 min) | unreadable <= 100 ms |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        met = "yes" if r["erase_to_commit_ms_max"] <= 100 else "no"
        print(
            f"| {r['backend']} | {r['interactions_per_customer']:,} "
            f"| {r['erase_to_commit_ms_median']} / {r['erase_to_commit_ms_max']} ms "
            f"| {r['erase_call_ms_median']} ms "
            f"| {r['floor_destroy_commit_ms_median']} / {r['floor_destroy_commit_ms_max']} ms "
            f"| {r['purge_s_median']} / {r['purge_s_max']} s "
            f"| {r['floor_delete_s_median']} / {r['floor_delete_s_max']} s "
            f"| {r['load_avg_1m'][0]} -> {r['load_avg_1m'][1]} | {met} |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
