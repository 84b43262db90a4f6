"""``python -m bench.segments``: load (or reuse) the data, time every rule compiled and
hand-written, materialise rule 1 once, print (and append) the results as JSON."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

import bench.segments
from bench.common import scratch_database
from bench.segments.data import TYPES, load_postgresql, load_sqlite
from bench.segments.rules import NOW, RULES, hand, params
from vault.segments.compile import compile_rule
from vault.segments.membership import apply_diff
from vault.segments.metrics import MetricsRollup
from vault.segments.parse import parse_rule
from vault.storage.db import make_engine
from vault.storage.models import InteractionRow, SegmentRow

__all__ = ["main"]

ADMIN_URL = os.environ.get(
    "CVAULT_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
DB_NAME = "bench_segments"


@dataclass
class Timing:
    rule: str
    query: str
    rows: int
    best: float
    median: float


def _session(engine: Engine) -> Session:
    session = Session(engine)
    if engine.dialect.name == "postgresql":
        session.execute(text("SET jit = off"))
        session.execute(text("SET max_parallel_workers_per_gather = 0"))
    return session


def _time(
    engine: Engine, runs: int, queries: list[Callable[[Session], int]]
) -> list[tuple[int, float, float]]:
    """(rows, best, median) of each query: one warm-up each, then ``runs`` rounds that
    run every query in turn, so that a change in the shared machine's load falls on all
    of them alike."""
    times: list[list[float]] = [[] for _ in queries]
    rows = [0] * len(queries)
    with _session(engine) as s:
        for run in queries:
            run(s)  # warm-up
        for _ in range(runs):
            for i, run in enumerate(queries):
                start = time.perf_counter()
                rows[i] = run(s)
                times[i].append(time.perf_counter() - start)
        s.rollback()
    return [(n, min(t), statistics.median(t)) for n, t in zip(rows, times, strict=True)]


def _counter(query: Any, params: dict[str, Any]) -> Callable[[Session], int]:  # noqa: ANN401
    def run(session: Session) -> int:
        return int(session.scalar(query, params) or 0)

    return run


def _selected(only: set[str] | None) -> dict[str, dict[str, Any]]:
    """The rules to time: all, or those whose name starts with one of ``only`` (1, 5a)."""
    if only is None:
        return RULES
    return {name: rule for name, rule in RULES.items() if name.split(" ")[0] in only}


def measure(engine: Engine, runs: int, rules: dict[str, dict[str, Any]]) -> list[Timing]:
    dialect = engine.dialect.name
    out: list[Timing] = []
    bound = params(dialect)
    written = hand(dialect)
    for name, document in rules.items():
        stmt = compile_rule(parse_rule(document), now=NOW, dialect=dialect)
        labels = ["compiled", *(label for label, _ in written[name])]
        queries = [_counter(select(func.count()).select_from(stmt.subquery()), {})]
        queries += [
            _counter(text(f"SELECT count(*) FROM ({sql}) h"), bound)  # noqa: S608 - constant SQL
            for _, sql in written[name]
        ]
        timed = _time(engine, runs, queries)
        rows, best, _ = timed[0]
        for label, (rows_q, best_q, median_q) in zip(labels, timed, strict=True):
            out.append(Timing(name, label, rows_q, best_q, median_q))
            ratio = "" if label == "compiled" else f" (compiled / this {best / best_q:.2f}x)"
            differ = "" if rows_q == rows else " ROWS DIFFER"
            print(f"  {name}: {label} {rows_q} rows, best {best_q:.3f} s, median {median_q:.3f} s"
                  f"{ratio}{differ}")  # fmt: skip
    return out


def measure_batches(engine: Engine, runs: int, rules: dict[str, dict[str, Any]]) -> list[Timing]:
    """The ingest hook's shape (``among=``) of the sequence rules, for the 1,000 customers
    with the latest interactions: what a batch of ingest pays per segment."""
    out: list[Timing] = []
    with Session(engine) as s:
        i = InteractionRow
        latest = (
            select(i.customer_id)
            .where(i.type.in_(TYPES), i.occurred_at >= NOW - timedelta(days=2))
            .order_by(i.occurred_at.desc())
            .limit(5000)
        )
        batch = list(dict.fromkeys(s.scalars(latest)))[:1000]
    for name, document in rules.items():
        if "sequence" not in document:
            continue
        stmt = compile_rule(parse_rule(document), now=NOW, dialect=engine.dialect.name, among=batch)

        def run(session: Session, stmt: Any = stmt) -> int:  # noqa: ANN401 - a Select
            return len(list(session.scalars(stmt)))

        ((rows, best, median),) = _time(engine, runs, [run])
        out.append(Timing(name, f"compiled, batch of {len(batch)}", rows, best, median))
        print(
            f"  {name}: batch of {len(batch)}: {rows} rows, best {best:.4f} s, median {median:.4f}"
        )
    return out


def refresh_rule1(engine: Engine) -> dict[str, float]:
    """Materialise rule 1 once as SegmentService.refresh does (evaluate, fetch ids, diff
    with the open memberships, insert memberships and outbox rows), rolled back."""

    rule = parse_rule(RULES["1 purchases>=2/90d, no view/30d, email consent"])
    with _session(engine) as s:
        segment_id = uuid.uuid4()
        s.add(SegmentRow(id=segment_id, name="bench", definition={}, version=1,
                         created_at=NOW, updated_at=NOW))  # fmt: skip
        s.flush()
        start = time.perf_counter()
        stmt = compile_rule(rule, now=NOW, dialect=engine.dialect.name)
        target: set[uuid.UUID] = set(cast("Any", s.scalars(stmt)))
        evaluated = time.perf_counter() - start
        result = apply_diff(s, segment_id, target, set(), NOW)  # the diff and writes
        s.flush()
        total = time.perf_counter() - start
        s.rollback()
    return {"members": result.members, "evaluate_and_fetch_s": evaluated, "total_s": total}


def _rollup(engine: Engine) -> float:
    with _session(engine) as s:
        start = time.perf_counter()
        rows = MetricsRollup().refresh_all(s, NOW)
        s.commit()
        took = time.perf_counter() - start
    print(f"  metrics rollup: {rows} customers in {took:.1f} s")
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE customer_metrics"))
    return took


def _measure_all(engine: Engine, runs: int, only: set[str] | None) -> dict[str, Any]:
    """The rollup (when a selected rule reads it), the rules, rule 1 materialised."""
    rules = _selected(only)
    out: dict[str, Any] = {}
    if any(RULES[name] is rule and "metric" in json.dumps(rule) for name, rule in rules.items()):
        out["rollup_s"] = _rollup(engine)
    timings = measure(engine, runs, rules) + measure_batches(engine, runs, rules)
    out["timings"] = [t.__dict__ for t in timings]
    if any(name.startswith("1 ") for name in rules):
        out["refresh_rule1"] = refresh_rule1(engine)
        print(f"  refresh of rule 1: {out['refresh_rule1']}")
    return out


def run_postgresql(
    customers: int, runs: int, *, database: str, keep: bool, reuse: bool, only: set[str] | None
) -> dict[str, Any]:
    with scratch_database(ADMIN_URL, database, reuse=reuse, keep=keep) as (url, fresh):
        engine = make_engine(url)
        try:
            load: dict[str, float] = {}
            if fresh:
                print(f"PostgreSQL: loading {customers} customers ...")
                load = load_postgresql(engine, customers)
            else:
                print(f"PostgreSQL: reusing {database}")
            with engine.connect() as conn:
                n_int = int(conn.scalar(text("SELECT count(*) FROM interactions")) or 0)
                n_customers = int(conn.scalar(text("SELECT count(*) FROM customers")) or 0)
            print(f"  loaded: {load} ({n_customers} customers, {n_int} interactions)")
            return {"customers": n_customers, "interactions": n_int, "load_s": load,
                    **_measure_all(engine, runs, only)}  # fmt: skip
        finally:
            engine.dispose()


def run_sqlite(customers: int, runs: int, directory: Path, only: set[str] | None) -> dict[str, Any]:
    path = directory / "bench-segments.db"
    path.unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{path}")
    try:
        print(f"SQLite: loading {customers} customers ...")
        start = time.perf_counter()
        load_sqlite(engine, customers)
        with engine.connect() as conn:
            n_int = int(conn.scalar(text("SELECT count(*) FROM interactions")) or 0)
        load = time.perf_counter() - start
        print(f"  loaded in {load:.1f} s ({n_int} interactions)")
        return {"customers": customers, "interactions": n_int, "load_s": load,
                **_measure_all(engine, runs, only)}  # fmt: skip
    finally:
        engine.dispose()
        path.unlink(missing_ok=True)


def main() -> None:
    about = (bench.segments.__doc__ or "").split("\n\n")[0]
    parser = argparse.ArgumentParser(description=about)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--sqlite-customers", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-postgresql", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--database", default=DB_NAME, help="the PostgreSQL database to use")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true", help="reuse a kept database")
    parser.add_argument("--only", help="time these rules only, e.g. 6,7 or 1,5a")
    parser.add_argument("--json", type=Path, help="append the results as one JSON line")
    args = parser.parse_args()
    only = None if args.only is None else set(args.only.split(","))
    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {os.cpu_count()} cores {platform.processor() or ''}",
    }
    if not args.skip_postgresql:
        result["postgresql"] = run_postgresql(
            args.customers, args.runs, database=args.database, keep=args.keep,
            reuse=args.reuse, only=only,
        )  # fmt: skip
    if not args.skip_sqlite:
        result["sqlite"] = run_sqlite(args.sqlite_customers, args.runs, Path.cwd(), only)
    if args.json:
        with args.json.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(result) + "\n")
    print(json.dumps(result, indent=1))
