"""EXPLAIN the audit trail's queries before and after migration 0018 (PostgreSQL).

    python -m bench.audit_explain --url postgresql+psycopg://postgres@127.0.0.1/test \
        --entries 200000

Creates a scratch database, migrates it to 0017 (the indexes before), seeds entries
(sequenced, all but 1,000 left pending; 20,000 customers, 50 actors, the action mix of
a read-heavy vault, recorded_at rising with the id), prints the plan of each query of
ours that reads the audit tables, then migrates to head (0018), and prints them again,
with the WAL and time of one 16-entry append. Plans, not timings, are the point.
"""

from __future__ import annotations

import argparse
import uuid

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from vault.storage.migrate import upgrade

QUERIES = {
    "access history (customer, newest 21)": (
        "SELECT e.id, l.position, e.canonical FROM audit_entries e "
        "LEFT JOIN audit_log l ON l.entry_pk = e.id WHERE e.customer_id = :c "
        "AND e.action IN ('pii.access','pii.read','interactions.read','customer.export',"
        "'customer.update','customer.merge','access.denied','interactions.count',"
        "'webhook.delivered') ORDER BY e.id DESC LIMIT 21"
    ),
    "search by actor (newest 21)": (
        "SELECT e.id, l.position, e.canonical FROM audit_entries e "
        "LEFT JOIN audit_log l ON l.entry_pk = e.id WHERE e.actor = 'agent-7' "
        "ORDER BY e.id DESC LIMIT 21"
    ),
    "search by rare action (newest 21)": (
        "SELECT e.id, l.position, e.canonical FROM audit_entries e "
        "LEFT JOIN audit_log l ON l.entry_pk = e.id WHERE e.action = 'audit.export' "
        "ORDER BY e.id DESC LIMIT 21"
    ),
    "search by an old hour (newest 21)": (
        "SELECT e.id, l.position, e.canonical FROM audit_entries e "
        "LEFT JOIN audit_log l ON l.entry_pk = e.id WHERE e.recorded_at >= :t0 "
        "AND e.recorded_at < :t0 + interval '1 hour' ORDER BY e.id DESC LIMIT 21"
    ),
    "export of one customer": (
        "SELECT l.position, l.leaf_hash, e.canonical FROM audit_log l "
        "JOIN audit_entries e ON e.id = l.entry_pk WHERE l.position < :size "
        "AND e.customer_id = :c ORDER BY l.position"
    ),
    "entry by id (node, proof)": (
        "SELECT e.id, l.position, e.canonical FROM audit_entries e "
        "LEFT JOIN audit_log l ON l.entry_pk = e.id WHERE e.entry_id = :eid"
    ),
    "sequencer batch": (
        "SELECT p.entry_pk, e.canonical FROM audit_pending p "
        "LEFT JOIN audit_entries e ON e.id = p.entry_pk ORDER BY p.entry_pk LIMIT 10000"
    ),
    "alert detector (log positions)": (
        "SELECT e.actor, date_trunc('hour', e.recorded_at), e.action, count(*) "
        "FROM audit_entries e JOIN audit_log l ON l.entry_pk = e.id "
        "WHERE l.position > :mark AND l.position <= :top AND e.id BETWEEN "
        "(SELECT min(entry_pk + 0) FROM audit_log WHERE position > :mark AND position <= :top) "
        "AND (SELECT max(entry_pk + 0) FROM audit_log WHERE position > :mark "
        "AND position <= :top) "
        "AND e.action IN ('pii.access','pii.read','access.denied') GROUP BY 1, 2, 3"
    ),
    "alert detector (customers per actor and hour)": (
        "SELECT e.actor, count(DISTINCT e.customer_id) FROM audit_entries e "
        "WHERE e.actor IN ('agent-7', 'agent-8') AND e.recorded_at >= :t0 "
        "AND e.recorded_at < :t0 + interval '1 hour' AND e.action IN ('pii.access','pii.read') "
        "AND e.customer_id IS NOT NULL GROUP BY e.actor"
    ),
}
APPEND = (
    "EXPLAIN (ANALYZE, WAL, COSTS OFF, SUMMARY OFF) "
    "WITH e AS (INSERT INTO audit_entries (entry_id, recorded_at, actor, action, customer_id, "
    "canonical) SELECT gen_random_uuid(), now(), 'agent-7', 'pii.access', gen_random_uuid(), "
    "repeat('x', 420)::bytea FROM generate_series(1, 16) RETURNING id) "
    "INSERT INTO audit_pending (entry_pk) SELECT id FROM e"
)
SEED = """
INSERT INTO audit_entries (entry_id, recorded_at, actor, action, customer_id, canonical)
SELECT gen_random_uuid(), timestamptz '2026-01-01' + g * interval '1 second',
       'agent-' || (g % 50),
       (ARRAY['pii.read','pii.read','pii.read','interactions.read','interactions.read',
              'customer.update','access.denied','segment.read','insights.read',
              'interactions.record'])[1 + g % 10],
       ('00000000-0000-4000-8000-' || lpad(to_hex(g % 20000), 12, '0'))::uuid,
       repeat('x', 420)::bytea
FROM generate_series(1, :n) g;
INSERT INTO audit_entries (entry_id, recorded_at, actor, action, customer_id, canonical)
SELECT gen_random_uuid(), timestamptz '2026-01-01' + g * interval '97 seconds', 'officer-1',
       'audit.export', NULL, repeat('x', 200)::bytea FROM generate_series(1, 20) g;
INSERT INTO audit_log (position, entry_pk, leaf_hash)
SELECT id - 1, id, sha256(canonical) FROM audit_entries WHERE id <= :n - 1000;
INSERT INTO audit_pending (entry_pk) SELECT id FROM audit_entries WHERE id > :n - 1000;
"""
CUSTOMER = "00000000-0000-4000-8000-" + f"{1234:012x}"


def _explain(engine: Engine, n: int) -> None:
    params = {
        "c": CUSTOMER, "t0": "2026-01-02T00:00:00+00:00", "size": n,
        "eid": str(uuid.uuid4()), "mark": n - 20_000, "top": n - 1_000,
    }  # fmt: skip
    with engine.connect() as conn:
        for name, sql in QUERIES.items():
            plan = conn.execute(
                text("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + sql), params
            ).scalars()
            print(f"\n-- {name}\n" + "\n".join(plan))
        conn.rollback()
        plan = conn.execute(text(APPEND)).scalars()
        print("\n-- append of 16 entries + queue rows\n" + "\n".join(plan))
        conn.rollback()  # the appended rows go
        sizes = conn.execute(
            text(
                "SELECT indexrelname, pg_relation_size(indexrelid) FROM pg_stat_user_indexes "
                "WHERE relname IN ('audit_entries','audit_pending','audit_log') ORDER BY 1"
            )
        ).all()
        print("\n-- indexes\n" + "\n".join(f"{name}: {size // 1024} KiB" for name, size in sizes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1/test")
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--database", default="cvault_audit_explain")
    args = parser.parse_args()
    admin = create_engine(args.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{args.database}"'))
        conn.execute(text(f'CREATE DATABASE "{args.database}"'))
    admin.dispose()
    engine = create_engine(make_url(args.url).set(database=args.database))
    try:
        upgrade(engine, "0017")
        with engine.begin() as conn:
            for statement in filter(str.strip, SEED.split(";")):
                conn.execute(text(statement), {"n": args.entries})
            conn.execute(text("ANALYZE"))
        print("==== before (0017) ====")
        _explain(engine, args.entries)
        upgrade(engine, "head")
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
        print("\n==== after (0018) ====")
        _explain(engine, args.entries)
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
