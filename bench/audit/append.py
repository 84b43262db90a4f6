"""The append measure: ``--writers`` forked processes append entries through
``vault.audit.write``, k entries a transaction, against a floor of hand-written psycopg
inserts into a plain table; then the sequencer over what the vault runs left pending."""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import threading
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from bench.audit.entries import floor_row, make_entries
from bench.audit.probes import Span, machine, machine_share, profiled, timed
from bench.audit.report import Row, record, summary
from bench.audit.sequencer import sequence_floor, sequence_vault
from bench.audit.target import Target, connect, fresh_schema, open_vault

_FLOOR_TABLE = (
    "CREATE TABLE audit_floor (id bigserial PRIMARY KEY, entry_id uuid NOT NULL, "
    "recorded_at timestamptz NOT NULL, actor varchar(128) NOT NULL, "
    "action varchar(32) NOT NULL, customer_id uuid, canonical bytea NOT NULL)"
)
_FLOOR_COLUMNS = "entry_id, recorded_at, actor, action, customer_id, canonical"
_FLOOR_INSERT = f"INSERT INTO audit_floor ({_FLOOR_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)"  # noqa: S608
_FLOOR_COPY = f"COPY audit_floor ({_FLOOR_COLUMNS}) FROM STDIN"


@dataclass(frozen=True)
class AppendJob:
    mode: str
    target: Target
    per_txn: int
    count: int
    seed: int
    profile: str


def _writer_result(job: AppendJob, span: Span) -> dict[str, Any]:
    return {
        "entries": job.count,
        "start": span.start,
        "end": span.end,
        "cpu": span.cpu,
        "server_cpu": span.server_cpu,
    }


def _append_vault(job: AppendJob, barrier: Barrier) -> dict[str, Any]:
    k = job.per_txn
    entries = make_entries(job.count + k, job.seed)
    vault = open_vault(job.target)
    with vault.db.transaction() as s:  # connect, warm the statement caches (not counted)
        pid = int(s.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
        vault.audit.write(s, entries[:k])
    batches = [entries[i : i + k] for i in range(k, len(entries), k)]
    barrier.wait()
    with timed(pid) as span, profiled(job.profile):
        for batch in batches:
            with vault.db.transaction() as s:
                vault.audit.write(s, batch)
    vault.close()
    return _writer_result(job, span)


def _append_floor(job: AppendJob, barrier: Barrier) -> dict[str, Any]:
    k = job.per_txn
    rows = [floor_row(e) for e in make_entries(job.count + k, job.seed)]
    batches = [rows[i : i + k] for i in range(0, len(rows), k)]
    conn = connect(job.target.schema)
    pid = conn.info.backend_pid

    def insert(batch: list[tuple[Any, ...]]) -> None:
        with conn.transaction(), conn.cursor() as cur:
            if k < 10:
                cur.executemany(_FLOOR_INSERT, batch)
            else:
                with cur.copy(_FLOOR_COPY) as copy:
                    for row in batch:
                        copy.write_row(row)

    insert(batches[0])  # connect and warm up (not counted)
    barrier.wait()
    with timed(pid) as span:
        for batch in batches[1:]:
            insert(batch)
    conn.close()
    return _writer_result(job, span)


def _append_process(job: AppendJob, barrier: Barrier, results: mp.Queue[dict[str, Any]]) -> None:
    try:
        run = _append_vault if job.mode == "vault" else _append_floor
        results.put(run(job, barrier))
    except BaseException as exc:
        barrier.abort()
        results.put({"error": f"{type(exc).__name__}: {exc}"})
        raise


def _append_run(
    *, mode: str, target: Target, per_txn: int, total: int, writers: int, seed: int, profile: str
) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(writers + 1)  # this process too: it samples the machine at the start
    results: mp.Queue[dict[str, Any]] = ctx.Queue()
    share = total // writers // per_txn * per_txn
    jobs = [
        AppendJob(mode, target, per_txn, share, seed + w, profile if w == 0 else "")
        for w in range(writers)
    ]
    procs = [ctx.Process(target=_append_process, args=(j, barrier, results)) for j in jobs]
    for p in procs:
        p.start()
    with contextlib.suppress(threading.BrokenBarrierError):  # a writer failed: reported below
        barrier.wait(timeout=900)
    before = machine()
    got = [results.get(timeout=1800) for _ in procs]
    for p in procs:
        p.join()
    errors = [g["error"] for g in got if "error" in g]
    if errors:
        raise RuntimeError(f"{mode} writer failed: {errors[0]}")
    entries = sum(g["entries"] for g in got)
    wall = max(g["end"] for g in got) - min(g["start"] for g in got)
    server = [g["server_cpu"] for g in got]
    return {
        "entries": entries,
        "wall": wall,
        "rate": entries / wall,
        "cpu_ms_per_1k": sum(g["cpu"] for g in got) / entries * 1e6,
        "server_cpu_ms_per_1k": None if None in server else sum(server) / entries * 1e6,
        "start_skew_ms": (max(g["start"] for g in got) - min(g["start"] for g in got)) * 1e3,
        **machine_share(before, sum(g["cpu"] + (g["server_cpu"] or 0) for g in got)),
    }


def phase_append(
    args: argparse.Namespace, workdir: Path, schemas: list[str], results: list[dict[str, Any]]
) -> list[Row]:
    rows: list[Row] = []
    sizes = [int(s) for s in args.txn_sizes.split(",")]
    per_run = args.append_entries or max(args.writers * max(sizes), min(96_000, args.entries // 10))
    max_txns = args.append_max_txns or max(args.writers, per_run // 10)
    with fresh_schema(workdir, "append", schemas) as target:
        with connect(target.schema, autocommit=True) as conn:
            conn.execute(_FLOOR_TABLE)
        for k in sizes:
            total = min(per_run, max_txns * k)
            runs: dict[str, list[dict[str, Any]]] = {"floor": [], "vault": []}
            for rep in range(args.repeat):
                for mode in ("floor", "vault"):  # alternate, so drift hits both
                    seed = 1_000_000 * k + 1000 * rep
                    run = _append_run(
                        mode=mode, target=target, per_txn=k, total=total,
                        writers=args.writers, seed=seed, profile="",
                    )  # fmt: skip
                    runs[mode].append(run)
                    record(results, {"measure": "append", "mode": mode, "per_txn": k, "rep": rep,
                                    **{x: round(v, 2) if isinstance(v, float) else v
                                       for x, v in run.items()}})  # fmt: skip
            if args.profile:  # one more vault run, profiled in its first writer, not counted
                _append_run(
                    mode="vault", target=target, per_txn=k, total=total, writers=args.writers,
                    seed=1_000_000 * k + 999_000, profile=str(args.profile / f"append-{k}.prof"),
                )  # fmt: skip
            vault_s = summary(runs["vault"], "rate", higher=True)
            floor_s = summary(runs["floor"], "rate", higher=True)
            rows.append(
                Row(
                    f"append, {args.writers} writers, {k}/txn ({runs['vault'][0]['entries']:,})",
                    "entries/s",
                    vault_s,
                    "plain table, psycopg " + ("executemany" if k < 10 else "COPY"),
                    floor_s,
                    ">= 20,000 entries/s",
                    vault_s["median"] >= 20_000,
                )
            )
        seq_floor = sequence_floor(target)
        record(results, {"measure": "sequence", "mode": "floor", **seq_floor})
        seq = sequence_vault(target)
        record(results, {"measure": "sequence", "mode": "vault", **seq})
        if seq["entries"] != seq_floor["entries"]:
            raise RuntimeError(f"sequenced {seq['entries']}, floor {seq_floor['entries']}")
        rows.append(
            Row(
                f"sequence pending ({seq['entries']:,}, 10k/batch, signed)",
                "entries/s",
                summary([seq], "rate", higher=True),
                "hand-written SQL, plain tables",
                summary([seq_floor], "rate", higher=True),
                "(keeps up with append)",
                None,
            )
        )
    return rows
