"""Segments: five representative rules compiled by ``vault.segments``, each beside a
hand-written SQL query for the same rule, in the same run.

PostgreSQL: a dedicated database (``bench_segments``, dropped at the end even on
failure) gets the vault's schema, ``--customers`` customers (default 1,000,000;
tiers, 50 % consented to marketing e-mail) and about ten interactions each
(default ~10,000,000, over 400 days: page views, e-mail opens and clicks, cart
additions and abandons, purchases in EUR and a few in USD, refunds, app opens,
store visits), generated inside the server with ``INSERT ... SELECT
generate_series`` and indexed after the load, then ``VACUUM ANALYZE``. The metrics
rollup is built once (timed: ``MetricsRollup.refresh_all``).

SQLite: the same generator in Python at ``--sqlite-customers`` (default 20,000).

Each query is counted (``SELECT count(*) FROM (<query>)``) so that both sides do
the same work and no id crosses the wire: one untimed warm-up, then ``--runs``
timed runs (best and median reported). Sessions run with ``jit = off`` and
``max_parallel_workers_per_gather = 0`` (PERFORMANCE.md: both slow these short
queries on 2 cores). Also timed: one full ``SegmentService``-style refresh of
rule 1 (evaluate, fetch ids, diff, insert memberships and outbox rows).

Rules (time windows end at a fixed ``now``):

1. at least 2 purchases in 90 days, no page view in 30 days, consent to e-mail;
2. an abandoned cart in the last day and no purchase in the last day;
3. gold tier and more than 500.00 EUR spent on purchases in 365 days;
4. top quintile by money spent in 365 days (``rfm_m = 5`` from the rollup);
   hand-written twice: on the raw interactions, and on the rollup;
5. win-back: no interaction in 60 days but a purchase ever; compiled twice (from
   behaviour conditions, from rollup metrics), hand-written twice likewise.

``--keep`` leaves the database for a later ``--reuse`` run (which skips the load).

Run: ``python -m bench.segments`` (PostgreSQL at ``CVAULT_BENCH_POSTGRES_URL``,
default ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Engine, create_engine, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from vault.segments.compile import compile_rule
from vault.segments.membership import apply_diff
from vault.segments.metrics import MetricsRollup
from vault.segments.parse import parse_rule
from vault.storage.db import make_engine
from vault.storage.models import Base, ConsentStateRow, CustomerRow, InteractionRow, SegmentRow

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ADMIN_URL = os.environ.get(
    "CVAULT_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
DB_NAME = "bench_segments"

# (type, cumulative share) for generated interactions.
TYPE_MIX = [
    ("page_view", 0.40), ("email_open", 0.60), ("email_click", 0.65), ("cart_add", 0.73),
    ("cart_abandon", 0.77), ("purchase", 0.87), ("refund", 0.88), ("app_open", 0.95),
    ("store_visit", 1.00),
]  # fmt: skip
CHANNEL_OF = {"page_view": "web", "email_open": "email", "email_click": "email",
              "cart_add": "web", "cart_abandon": "web", "purchase": "web", "refund": "web",
              "app_open": "app", "store_visit": "store"}  # fmt: skip


def count(types: list[str], window: Any, op: str, value: int) -> dict[str, Any]:  # noqa: ANN401
    body = {"aggregate": "count", "types": types, "window": window, "op": op, "value": value}
    return {"behaviour": body}


RULES: dict[str, dict[str, Any]] = {
    "1 purchases>=2/90d, no view/30d, email consent": {"all": [
        count(["purchase"], {"within_days": 90}, "gte", 2),
        count(["page_view"], {"within_days": 30}, "eq", 0),
        {"consent": {"purpose": "marketing_email"}},
    ]},
    "2 abandoned cart/1d, no purchase/1d": {"all": [
        count(["cart_abandon"], {"within_days": 1}, "gte", 1),
        count(["purchase"], {"within_days": 1}, "eq", 0),
    ]},
    "3 gold and > 500 EUR/365d": {"all": [
        {"attribute": {"field": "tier", "op": "eq", "value": "gold"}},
        {"behaviour": {"aggregate": "sum", "types": ["purchase"], "window": {"within_days": 365},
                       "op": "gt", "value": 50000, "currency": "EUR"}},
    ]},
    "4 top quintile money/365d (rollup)": {"metric": {"name": "rfm_m", "op": "eq", "value": 5}},
    "5a win-back (behaviour)": {"all": [
        count([], {"within_days": 60}, "eq", 0), count(["purchase"], "ever", "gte", 1),
    ]},
    "5b win-back (rollup metrics)": {"all": [
        {"metric": {"name": "days_since_last_interaction", "op": "gt", "value": 60}},
        {"metric": {"name": "purchase_count", "op": "gte", "value": 1}},
    ]},
}  # fmt: skip

# Hand-written SQL for the same rules (:now, :d1 .. are bound). Written as one would by
# hand for PostgreSQL; the SQLite variants differ only in parameter style (handled by
# SQLAlchemy's text()).
HAND: dict[str, list[tuple[str, str]]] = {
    "1 purchases>=2/90d, no view/30d, email consent": [("hand", """
        SELECT c.id FROM customers c
        WHERE c.status = 'active'
          AND c.id IN (SELECT customer_id FROM interactions
                       WHERE type = 'purchase' AND occurred_at >= :d90 AND occurred_at <= :now
                       GROUP BY customer_id HAVING count(*) >= 2)
          AND NOT EXISTS (SELECT 1 FROM interactions i WHERE i.customer_id = c.id
                          AND i.type = 'page_view' AND i.occurred_at >= :d30
                          AND i.occurred_at <= :now)
          AND EXISTS (SELECT 1 FROM consent_state s WHERE s.customer_id = c.id
                      AND s.purpose = 'marketing_email' AND s.state = 'granted'
                      AND (s.expires_at IS NULL OR s.expires_at > :now))""")],
    "2 abandoned cart/1d, no purchase/1d": [("hand", """
        SELECT DISTINCT a.customer_id FROM interactions a
        JOIN customers c ON c.id = a.customer_id AND c.status = 'active'
        WHERE a.type = 'cart_abandon' AND a.occurred_at >= :d1 AND a.occurred_at <= :now
          AND NOT EXISTS (SELECT 1 FROM interactions p WHERE p.customer_id = a.customer_id
                          AND p.type = 'purchase' AND p.occurred_at >= :d1
                          AND p.occurred_at <= :now)""")],
    "3 gold and > 500 EUR/365d": [("hand", """
        SELECT c.id FROM customers c
        JOIN (SELECT customer_id FROM interactions
              WHERE type = 'purchase' AND currency = 'EUR'
                AND occurred_at >= :d365 AND occurred_at <= :now
              GROUP BY customer_id HAVING sum(amount_minor) > 50000) s
          ON s.customer_id = c.id
        WHERE c.status = 'active' AND c.tier = 'gold'""")],
    "4 top quintile money/365d (rollup)": [
        ("hand, raw interactions (NTILE)", """
        SELECT customer_id FROM (
          SELECT c.id AS customer_id,
                 ntile(5) OVER (ORDER BY coalesce(sum(CASE
                   WHEN i.type = 'purchase' THEN i.amount_minor
                   WHEN i.type = 'refund' THEN -i.amount_minor END), 0)) AS q
          FROM customers c
          LEFT JOIN interactions i ON i.customer_id = c.id AND i.currency = 'EUR'
               AND i.occurred_at >= :d365 AND i.occurred_at <= :now
          WHERE c.status = 'active'
          GROUP BY c.id) t
        WHERE q = 5"""),
        ("hand, rollup", """
        SELECT c.id FROM customers c JOIN customer_metrics m ON m.customer_id = c.id
        WHERE c.status = 'active' AND m.m_score = 5"""),
    ],
    "5a win-back (behaviour)": [("hand", """
        SELECT c.id FROM customers c
        WHERE c.status = 'active'
          AND NOT EXISTS (SELECT 1 FROM interactions i WHERE i.customer_id = c.id
                          AND i.occurred_at >= :d60 AND i.occurred_at <= :now)
          AND EXISTS (SELECT 1 FROM interactions p WHERE p.customer_id = c.id
                      AND p.type = 'purchase' AND p.occurred_at <= :now)""")],
    "5b win-back (rollup metrics)": [("hand, rollup", """
        SELECT c.id FROM customers c JOIN customer_metrics m ON m.customer_id = c.id
        WHERE c.status = 'active' AND m.last_interaction_at < :d60
          AND m.purchase_count >= 1""")],
}  # fmt: skip


def _params(dialect: str) -> dict[str, Any]:
    out: dict[str, Any] = {"now": NOW}
    for days in (1, 30, 60, 90, 365):
        out[f"d{days}"] = NOW - timedelta(days=days)
    if dialect == "sqlite":  # naive strings, as UTCDateTime stores them
        out = {k: v.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f") for k, v in out.items()}
    return out


@dataclass
class Timing:
    rule: str
    query: str
    rows: int
    best: float
    median: float


def _time(engine: Engine, run: Callable[[Session], int], runs: int) -> tuple[int, float, float]:
    times = []
    rows = 0
    with Session(engine) as s:
        if engine.dialect.name == "postgresql":
            s.execute(text("SET jit = off"))
            s.execute(text("SET max_parallel_workers_per_gather = 0"))
        run(s)  # warm-up
        for _ in range(runs):
            start = time.perf_counter()
            rows = run(s)
            times.append(time.perf_counter() - start)
        s.rollback()
    return rows, min(times), statistics.median(times)


def _counter(query: Any, params: dict[str, Any]) -> Callable[[Session], int]:  # noqa: ANN401
    def run(session: Session) -> int:
        return int(session.scalar(query, params) or 0)

    return run


def measure(engine: Engine, runs: int) -> list[Timing]:
    dialect = engine.dialect.name
    out: list[Timing] = []
    params = _params(dialect)
    for name, document in RULES.items():
        stmt = compile_rule(parse_rule(document), now=NOW, dialect=dialect)
        counted = select(func.count()).select_from(stmt.subquery())
        rows, best, median = _time(engine, _counter(counted, {}), runs)
        out.append(Timing(name, "compiled", rows, best, median))
        print(f"  {name}: compiled {rows} rows, best {best:.3f} s, median {median:.3f} s")
        for label, sql in HAND[name]:
            hand = text(f"SELECT count(*) FROM ({sql}) h")  # noqa: S608 - constant SQL
            rows_h, best_h, median_h = _time(engine, _counter(hand, params), runs)
            out.append(Timing(name, label, rows_h, best_h, median_h))
            print(f"  {name}: {label} {rows_h} rows, best {best_h:.3f} s, median {median_h:.3f}")
    return out


# -- data -------------------------------------------------------------------------------


def _type_case(r: str) -> str:
    whens = " ".join(f"WHEN {r} < {share} THEN '{kind}'" for kind, share in TYPE_MIX)
    return f"CASE {whens} END"


def load_postgresql(engine: Engine, customers: int) -> dict[str, float]:
    """Generate inside the server; indexes after the load."""
    timings: dict[str, float] = {}
    Base.metadata.create_all(engine)
    channel = "CASE t " + " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in CHANNEL_OF.items()) + " END"
    with engine.begin() as conn:
        indexes = sorted(Base.metadata.tables["interactions"].indexes, key=lambda i: str(i.name))
        for index in indexes:
            conn.execute(text(f"DROP INDEX {index.name}"))
        conn.execute(text("ALTER TABLE interactions DROP CONSTRAINT uq_interactions_external_id"))
        conn.execute(
            text("ALTER TABLE interactions DROP CONSTRAINT fk_interactions_customer_id_customers")
        )
        conn.execute(text("ALTER TABLE interactions DROP CONSTRAINT pk_interactions"))
        start = time.perf_counter()
        conn.execute(text("SELECT setseed(0.42)"))
        conn.execute(
            text("""
            INSERT INTO customers (id, status, tier, locale, tags, attributes, created_at,
                                   updated_at)
            SELECT gen_random_uuid(), CASE WHEN random() < 0.01 THEN 'restricted' ELSE 'active' END,
                   (ARRAY['gold', 'silver', 'bronze', NULL])[1 + floor(random() * 4)::int],
                   (ARRAY['fr-FR', 'de-DE', 'en-GB', NULL])[1 + floor(random() * 4)::int],
                   '[]'::jsonb, '{}'::jsonb, :now - random() * interval '800 days', :now
            FROM generate_series(1, :n)"""),
            {"n": customers, "now": NOW},
        )
        timings["customers"] = time.perf_counter() - start
        start = time.perf_counter()
        conn.execute(
            text(f"""
            INSERT INTO interactions (id, customer_id, channel, type, occurred_at, amount_minor,
                                      currency, recorded_at)
            SELECT gen_random_uuid(), g.id, {channel}, t, g.at,
                   CASE WHEN t IN ('purchase', 'refund')
                        THEN 100 + floor(random() * 30000)::int END,
                   CASE WHEN t IN ('purchase', 'refund')
                        THEN CASE WHEN random() < 0.9 THEN 'EUR' ELSE 'USD' END END,
                   g.at
            FROM (SELECT id, at, {_type_case("r")} AS t
                  FROM (SELECT c.id, random() AS r,
                               :now - random() * interval '400 days' AS at
                        FROM customers c
                        CROSS JOIN LATERAL generate_series(
                            1, 1 + floor(random() * 19)::int + 0 * length(c.id::text))) x) g
            """),  # noqa: S608 - constant SQL, no input
            {"now": NOW},
        )
        timings["interactions"] = time.perf_counter() - start
        start = time.perf_counter()
        conn.execute(
            text("ALTER TABLE interactions ADD CONSTRAINT pk_interactions PRIMARY KEY (id)")
        )
        for index in indexes:  # the model's indexes, the covering one for segments included
            index.create(conn)
        timings["indexes"] = time.perf_counter() - start
        conn.execute(
            text("""
            INSERT INTO consent_state (customer_id, purpose, state, changed_at, event_id)
            SELECT id, 'marketing_email', 'granted', :now, gen_random_uuid()
            FROM customers WHERE random() < 0.5"""),
            {"now": NOW},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        start = time.perf_counter()
        conn.execute(text("VACUUM ANALYZE"))
        timings["vacuum_analyze"] = time.perf_counter() - start
    return timings


def load_sqlite(engine: Engine, customers: int, seed: int = 42) -> None:
    rng = random.Random(seed)
    Base.metadata.create_all(engine)
    people: list[dict[str, Any]] = []
    touches: list[dict[str, Any]] = []
    consents: list[dict[str, Any]] = []
    for _ in range(customers):
        cid = uuid.uuid4()
        people.append({
            "id": cid, "status": "restricted" if rng.random() < 0.01 else "active",
            "tier": rng.choice(["gold", "silver", "bronze", None]),
            "locale": rng.choice(["fr-FR", "de-DE", "en-GB", None]), "tags": [],
            "attributes": {}, "created_at": NOW - timedelta(days=800 * rng.random()),
            "updated_at": NOW,
        })  # fmt: skip
        if rng.random() < 0.5:
            consents.append(
                {"customer_id": cid, "purpose": "marketing_email", "state": "granted",
                 "changed_at": NOW, "event_id": uuid.uuid4()}
            )  # fmt: skip
        for _ in range(1 + int(rng.random() * 19)):
            r = rng.random()
            kind = next(k for k, share in TYPE_MIX if r < share)
            at = NOW - timedelta(days=400 * rng.random())
            money = kind in ("purchase", "refund")
            touches.append({
                "id": uuid.uuid4(), "customer_id": cid, "channel": CHANNEL_OF[kind], "type": kind,
                "occurred_at": at,
                "amount_minor": 100 + int(rng.random() * 30000) if money else None,
                "currency": ("EUR" if rng.random() < 0.9 else "USD") if money else None,
                "recorded_at": at,
            })  # fmt: skip
    with Session(engine) as s:
        s.execute(insert(CustomerRow), people)
        s.execute(insert(ConsentStateRow), consents)
        for start in range(0, len(touches), 50_000):
            s.execute(insert(InteractionRow), touches[start : start + 50_000])
        s.commit()
    with engine.begin() as conn:  # statistics, so the planner picks the timeline index
        conn.execute(text("ANALYZE"))


def refresh_rule1(engine: Engine) -> dict[str, float]:
    """Materialise rule 1 once as SegmentService.refresh does (evaluate, fetch ids, diff
    with the open memberships, insert memberships and outbox rows), rolled back."""

    rule = parse_rule(RULES["1 purchases>=2/90d, no view/30d, email consent"])
    with Session(engine) as s:
        if engine.dialect.name == "postgresql":
            s.execute(text("SET jit = off"))
            s.execute(text("SET max_parallel_workers_per_gather = 0"))
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
    with Session(engine) as s:
        if engine.dialect.name == "postgresql":
            s.execute(text("SET jit = off"))
            s.execute(text("SET max_parallel_workers_per_gather = 0"))
        start = time.perf_counter()
        rows = MetricsRollup().refresh_all(s, NOW)
        s.commit()
        took = time.perf_counter() - start
    print(f"  metrics rollup: {rows} customers in {took:.1f} s")
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE customer_metrics"))
    return took


def run_postgresql(customers: int, runs: int, *, keep: bool, reuse: bool) -> dict[str, Any]:
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": DB_NAME})
        fresh = not (reuse and exists)
        if fresh:
            conn.execute(text(f"DROP DATABASE IF EXISTS {DB_NAME}"))
            conn.execute(text(f"CREATE DATABASE {DB_NAME}"))
    url = make_url(ADMIN_URL).set(database=DB_NAME).render_as_string(hide_password=False)
    engine = make_engine(url)
    try:
        load: dict[str, float] = {}
        if fresh:
            print(f"PostgreSQL: loading {customers} customers ...")
            load = load_postgresql(engine, customers)
        else:
            print(f"PostgreSQL: reusing {DB_NAME}")
        with engine.connect() as conn:
            n_int = int(conn.scalar(text("SELECT count(*) FROM interactions")) or 0)
        print(f"  loaded: {load} ({n_int} interactions)")
        rollup = _rollup(engine)
        timings = measure(engine, runs)
        refresh = refresh_rule1(engine)
        print(f"  refresh of rule 1: {refresh}")
        return {"customers": customers, "interactions": n_int, "load_s": load,
                "rollup_s": rollup, "timings": [t.__dict__ for t in timings],
                "refresh_rule1": refresh}  # fmt: skip
    finally:
        engine.dispose()
        if not keep:
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS {DB_NAME}"))
        admin.dispose()


def run_sqlite(customers: int, runs: int, directory: Path) -> dict[str, Any]:
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
        rollup = _rollup(engine)
        timings = measure(engine, runs)
        refresh = refresh_rule1(engine)
        return {"customers": customers, "interactions": n_int, "load_s": load,
                "rollup_s": rollup, "timings": [t.__dict__ for t in timings],
                "refresh_rule1": refresh}  # fmt: skip
    finally:
        engine.dispose()
        path.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--sqlite-customers", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-postgresql", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--keep", action="store_true", help=f"keep {DB_NAME} afterwards")
    parser.add_argument("--reuse", action="store_true", help=f"reuse a kept {DB_NAME}")
    parser.add_argument("--json", type=Path, help="append the results as one JSON line")
    args = parser.parse_args()
    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {os.cpu_count()} cores {platform.processor() or ''}",
    }
    if not args.skip_postgresql:
        result["postgresql"] = run_postgresql(
            args.customers, args.runs, keep=args.keep, reuse=args.reuse
        )
    if not args.skip_sqlite:
        result["sqlite"] = run_sqlite(args.sqlite_customers, args.runs, Path.cwd())
    if args.json:
        with args.json.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(result) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
