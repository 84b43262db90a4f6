"""Funnels and channel analytics (issue 18 item 3) through the vault's service, beside a
hand-written SQL floor computing the same figures, in the same run.

The data is :mod:`bench.segments.data`'s (customers with about ten interactions each over
400 days, plus browsing sessions in the last 60 days for 5 % of them: a page view, a
cart addition, a purchase or an abandoned cart and sometimes a later purchase).
PostgreSQL: a dedicated database (``--database``, default ``bench_funnels``, dropped at
the end unless ``--keep``) loaded inside the server; SQLite: the Python generator into a
file of the current folder (removed at the end).

Timed, over the 60 days before the data's ``now``:

* funnel: page view -> cart addition -> purchase, each within 7 days of the step before;
  the service is ``Analytics.funnel`` in an analyst's read unit (the authorisation, the
  processing gate's clause, the population check, one statement per step, the
  suppression and the audit entry); the floor is one hand-written statement that walks
  each customer's timeline with window functions (the latest page view before each cart
  addition, the latest chained cart addition before each purchase) and answers the step
  counts and median gaps;
* channel analytics: ``Analytics.channel_analytics`` likewise, beside the two
  hand-written ``GROUP BY`` statements (counts, revenue) and the population count.

Both sides apply the same gate (status not erased, merged or restricted, no objection
to analytics). Each query: one warm-up, then ``--runs`` rounds running every query in
turn (best and median reported). The step counts and channel figures of both sides must
be equal (the run fails otherwise); the medians are compared to the microsecond.

Run: ``python -m bench.funnels`` (PostgreSQL at ``CVAULT_BENCH_POSTGRES_URL``, default
``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from bench.common import Target, open_vault, scratch_database
from bench.segments.data import load_postgresql, load_sqlite
from bench.segments.rules import NOW
from vault.authorization.context import AccessContext, Actor
from vault.crypto import Keyring
from vault.runtime import Vault
from vault.segments.rules import Gap, GapUnit, Step
from vault.storage.db import make_engine
from vault.types import InteractionType

__all__ = ["main"]

ADMIN_URL = os.environ.get(
    "CVAULT_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
ANALYST = AccessContext(Actor("bench-analyst", "analyst"), "analytics")
SINCE, UNTIL = NOW - timedelta(days=60), NOW
WITHIN = Gap(7, GapUnit.DAYS)
STEPS = [
    Step(types=(InteractionType.PAGE_VIEW,)),
    Step(types=(InteractionType.CART_ADD,)),
    Step(types=(InteractionType.PURCHASE,)),
]
Funnel = list[tuple[int, float | None]]  # (customers, median seconds from the previous step)
Channels = dict[str, tuple[int, int, int, int, dict[str, int]]]

_OK = """SELECT c.id FROM customers c
    WHERE c.status NOT IN ('erased', 'merged', 'restricted')
      AND NOT EXISTS (SELECT 1 FROM objections o WHERE o.customer_id = c.id
                      AND o.scope = 'analytics')"""


def _plus_week(dialect: str, column: str) -> str:
    if dialect == "postgresql":
        return f"{column} + interval '7 days'"
    return f"(datetime(substr({column}, 1, 19), '+7 days') || substr({column}, 20))"


def _seconds(dialect: str, earlier: str, later: str) -> str:
    if dialect == "postgresql":
        return f"extract(epoch FROM {later} - {earlier})"

    def whole(at: str) -> str:
        return f"CAST(strftime('%s', substr({at}, 1, 19)) AS INTEGER)"

    def part(at: str) -> str:
        return f"CAST('0' || substr({at}, 20) AS REAL)"

    return f"(({whole(later)} - {whole(earlier)}) + ({part(later)} - {part(earlier)}))"


def _funnel_sql(dialect: str) -> str:
    """The floor: per customer, each cart addition's latest page view before it (same
    instant included), kept within 7 days; each purchase's latest kept cart addition,
    likewise. The shortest gap of a step is the one to that latest predecessor."""
    return f"""
    WITH ok AS ({_OK}),
    e AS (SELECT i.customer_id, i.type, i.occurred_at FROM interactions i
          JOIN ok ON ok.id = i.customer_id
          WHERE i.type IN ('page_view', 'cart_add', 'purchase')
            AND i.occurred_at >= :since AND i.occurred_at < :until),
    carts AS (SELECT customer_id, occurred_at,
                     {_seconds(dialect, "last_view", "occurred_at")} AS gap
              FROM (SELECT customer_id, type, occurred_at,
                           max(CASE WHEN type = 'page_view' THEN occurred_at END) OVER (
                               PARTITION BY customer_id ORDER BY occurred_at) AS last_view
                    FROM e WHERE type IN ('page_view', 'cart_add')) x
              WHERE type = 'cart_add' AND last_view IS NOT NULL
                AND occurred_at <= {_plus_week(dialect, "last_view")}),
    buys AS (SELECT customer_id, {_seconds(dialect, "last_cart", "occurred_at")} AS gap
             FROM (SELECT customer_id, kind, occurred_at,
                          max(CASE WHEN kind = 'cart' THEN occurred_at END) OVER (
                              PARTITION BY customer_id ORDER BY occurred_at) AS last_cart
                   FROM (SELECT customer_id, 'cart' AS kind, occurred_at FROM carts
                         UNION ALL SELECT customer_id, 'buy', occurred_at FROM e
                                   WHERE type = 'purchase') u) y
             WHERE kind = 'buy' AND last_cart IS NOT NULL
               AND occurred_at <= {_plus_week(dialect, "last_cart")})
    SELECT 1, count(DISTINCT customer_id) FROM e WHERE type = 'page_view'
    UNION ALL SELECT 2, min(gap) FROM carts GROUP BY customer_id
    UNION ALL SELECT 3, min(gap) FROM buys GROUP BY customer_id"""  # noqa: S608 - constant SQL


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def floor_funnel(session: Session, sql: str, bound: dict[str, Any]) -> Funnel:
    """The floor's step counts and medians (the per-customer gaps come back as numbers
    on both backends, the median taken here, as the service does on SQLite)."""
    gaps: dict[int, list[float]] = {2: [], 3: []}
    first = 0
    for step, value in session.execute(text(sql), bound):
        if step == 1:
            first = int(value)
        else:
            gaps[step].append(round(float(value), 6))
    return [(first, None), *((len(gaps[s]), _median(gaps[s])) for s in (2, 3))]


def floor_channels(session: Session, bound: dict[str, Any]) -> tuple[int, Channels]:
    """The population and, per channel, interactions, customers, purchases, buyers and
    revenue per currency (refunds negative), as channel analytics answers them."""
    window = f"""FROM interactions i JOIN ({_OK}) ok ON ok.id = i.customer_id
        WHERE i.occurred_at >= :since AND i.occurred_at < :until"""
    population = int(session.scalar(text(f"SELECT count(DISTINCT i.customer_id) {window}"), bound))
    rows = session.execute(
        text(f"""SELECT i.channel, count(*), count(DISTINCT i.customer_id),
                   count(CASE WHEN i.type = 'purchase' THEN 1 END),
                   count(DISTINCT CASE WHEN i.type = 'purchase' THEN i.customer_id END)
                 {window} GROUP BY i.channel"""),
        bound,
    ).all()
    revenue: dict[str, dict[str, int]] = {}
    for channel, currency, total in session.execute(
        text(f"""SELECT i.channel, i.currency,
                   sum(CASE WHEN i.type = 'refund' THEN -i.amount_minor ELSE i.amount_minor END)
                 {window} AND i.type IN ('purchase', 'refund') AND i.currency IS NOT NULL
                 GROUP BY i.channel, i.currency"""),
        bound,
    ):
        revenue.setdefault(channel, {})[currency] = int(total)
    return population, {
        ch: (int(n), int(people), int(bought), int(buyers), revenue.get(ch, {}))
        for ch, n, people, bought, buyers in rows
    }


def service_funnel(vault: Vault) -> Funnel:
    with vault.read_unit(ANALYST) as s:
        report = vault.segments.analytics.funnel(s, STEPS, WITHIN, since=SINCE, until=UNTIL)
    out: Funnel = []
    for step in report.steps:
        if step.customers is None:
            raise SystemExit("a funnel step was suppressed: the data set is too small")
        out.append((step.customers, step.median_seconds_from_previous))
    return out


def service_channels(vault: Vault) -> tuple[int, Channels]:
    with vault.read_unit(ANALYST) as s:
        rows = vault.segments.analytics.channel_analytics(s, SINCE, UNTIL)
    out: Channels = {}
    for r in rows:
        if r.interactions is None or r.customers is None:
            raise SystemExit("a channel was suppressed: the data set is too small")
        out[r.channel.value] = (
            r.interactions, r.customers, r.conversions or 0, r.converting_customers or 0,
            r.revenue_minor or {},
        )  # fmt: skip
    return -1, out  # the population is checked by the service, not returned


def _time(runs: int, queries: list[Callable[[], Any]]) -> list[tuple[Any, float, float]]:
    """(answer, best, median) of each query: a warm-up each, then ``runs`` rounds running
    every query in turn, so that the shared machine's load falls on all alike."""
    times: list[list[float]] = [[] for _ in queries]
    answers: list[Any] = [q() for q in queries]
    for _ in range(runs):
        for i, query in enumerate(queries):
            start = time.perf_counter()
            answers[i] = query()
            times[i].append(time.perf_counter() - start)
    return [(a, min(t), statistics.median(t)) for a, t in zip(answers, times, strict=True)]


def _session(engine: Engine) -> Session:
    session = Session(engine)
    if engine.dialect.name == "postgresql":
        session.execute(text("SET jit = off"))
        session.execute(text("SET max_parallel_workers_per_gather = 0"))
    return session


def _floor(engine: Engine, query: Callable[[Session], Any]) -> Any:  # noqa: ANN401 - its answer
    """``query`` in a read transaction of its own (on SQLite an open one would hold the
    lock the service's audit append needs)."""
    with _session(engine) as s:
        try:
            return query(s)
        finally:
            s.rollback()


def measure(engine: Engine, target: Target, runs: int) -> dict[str, Any]:
    """Time both sides of both queries; fail when their figures differ."""
    dialect = engine.dialect.name
    bound: dict[str, Any] = {"since": SINCE, "until": UNTIL}
    if dialect == "sqlite":  # naive strings, as UTCDateTime stores them
        naive = "%Y-%m-%d %H:%M:%S.%f"
        bound = {k: v.replace(tzinfo=None).strftime(naive) for k, v in bound.items()}
    sql = _funnel_sql(dialect)
    vault = open_vault(target)
    try:
        timed = _time(runs, [
            lambda: service_funnel(vault),
            lambda: _floor(engine, lambda s: floor_funnel(s, sql, bound)),
            lambda: service_channels(vault),
            lambda: _floor(engine, lambda s: floor_channels(s, bound)),
        ])  # fmt: skip
    finally:
        vault.close()
    (f_service, fs_best, fs_med), (f_floor, ff_best, ff_med) = timed[0], timed[1]
    (c_service, cs_best, cs_med), (c_floor, cf_best, cf_med) = timed[2], timed[3]
    counts = [n for n, _ in f_service]
    if counts != [n for n, _ in f_floor]:
        raise SystemExit(f"funnel counts differ: service {f_service}, floor {f_floor}")
    if c_service[1] != c_floor[1]:
        raise SystemExit(f"channel figures differ: service {c_service}, floor {c_floor}")
    medians_equal = all(
        a == b or (a is not None and b is not None and abs(a - b) <= 1e-6)
        for (_, a), (_, b) in zip(f_service, f_floor, strict=True)
    )
    rows = [
        ("funnel (3 steps, 7 days)", "service", fs_best, fs_med),
        ("funnel (3 steps, 7 days)", "floor SQL", ff_best, ff_med),
        ("channel analytics", "service", cs_best, cs_med),
        ("channel analytics", "floor SQL", cf_best, cf_med),
    ]
    print(f"  {'query':<26} {'side':<10} {'best s':>8} {'median s':>9}")
    for name, side, best, median in rows:
        print(f"  {name:<26} {side:<10} {best:>8.3f} {median:>9.3f}")
    print(f"  funnel counts {counts} (equal), medians {[m for _, m in f_service]}"
          f" (floor {'equal' if medians_equal else [m for _, m in f_floor]})")  # fmt: skip
    print(f"  service / floor: funnel {fs_best / ff_best:.2f}x, channels {cs_best / cf_best:.2f}x")
    return {
        "funnel_counts": counts,
        "funnel_medians": [m for _, m in f_service],
        "funnel_medians_equal": medians_equal,
        "population": c_floor[0],
        "channels": c_floor[1],
        "timings": [
            dict(zip(("query", "side", "best_s", "median_s"), r, strict=True)) for r in rows
        ],
        "ratio_funnel": fs_best / ff_best,
        "ratio_channels": cs_best / cf_best,
    }


def _counted(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        people = int(conn.scalar(text("SELECT count(*) FROM customers")) or 0)
        touches = int(conn.scalar(text("SELECT count(*) FROM interactions")) or 0)
    return people, touches


def run_postgresql(customers: int, runs: int, work: Path, database: str, *, keep: bool,
                   reuse: bool) -> dict[str, Any]:  # fmt: skip
    with scratch_database(ADMIN_URL, database, reuse=reuse, keep=keep) as (url, fresh):
        engine = make_engine(url)
        try:
            load: dict[str, float] = {}
            if fresh:
                print(f"PostgreSQL: loading {customers} customers ...", flush=True)
                load = load_postgresql(engine, customers)
            people, touches = _counted(engine)
            print(
                f"PostgreSQL: {people} customers, {touches} interactions (load {load})", flush=True
            )
            target = Target("postgresql", url, None, _keyring(work / "pg"))
            return {"customers": people, "interactions": touches, "load_s": load,
                    **measure(engine, target, runs)}  # fmt: skip
        finally:
            engine.dispose()


def run_sqlite(customers: int, runs: int, work: Path) -> dict[str, Any]:
    path = Path.cwd() / "bench-funnels.db"
    path.unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    try:
        print(f"SQLite: loading {customers} customers ...", flush=True)
        start = time.perf_counter()
        load_sqlite(engine, customers)
        load = time.perf_counter() - start
        people, touches = _counted(engine)
        print(f"SQLite: {people} customers, {touches} interactions (load {load:.0f} s)")
        target = Target("sqlite", url, None, _keyring(work / "sqlite"))
        return {"customers": people, "interactions": touches, "load_s": load,
                **measure(engine, target, runs)}  # fmt: skip
    finally:
        engine.dispose()
        path.unlink(missing_ok=True)


def _keyring(folder: Path) -> Path:
    path = folder / "keyring.json"
    Keyring.create(path, population=1_000_000)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--sqlite-customers", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-postgresql", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--database", default="bench_funnels")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    parser.add_argument("--reuse", action="store_true", help="reuse a kept database")
    parser.add_argument("--json", type=Path, help="append the results as one JSON line")
    args = parser.parse_args()
    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {os.cpu_count()} cores",
        "load_average": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory(prefix="bench-funnels-") as tmp:
        work = Path(tmp)
        if not args.skip_postgresql:
            result["postgresql"] = run_postgresql(
                args.customers, args.runs, work, args.database, keep=args.keep, reuse=args.reuse
            )
        if not args.skip_sqlite:
            result["sqlite"] = run_sqlite(args.sqlite_customers, args.runs, work)
    result["load_average_after"] = os.getloadavg()
    if args.json:
        with args.json.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(result) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
