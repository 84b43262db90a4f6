"""The benchmark's data: customers, consents and interactions generated inside
PostgreSQL (``INSERT ... SELECT``, indexes built after the load) or in Python for
SQLite, from the same mix of types, plus browsing sessions that give the sequence rules
something to find."""

from __future__ import annotations

import random
import time
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, insert, text
from sqlalchemy.orm import Session

from bench.segments.rules import NOW
from vault.storage.models import Base, ConsentStateRow, CustomerRow, InteractionRow

__all__ = ["TYPES", "load_postgresql", "load_sqlite"]

# (type, cumulative share) for generated interactions.
TYPE_MIX = [
    ("page_view", 0.40), ("email_open", 0.60), ("email_click", 0.65), ("cart_add", 0.73),
    ("cart_abandon", 0.77), ("purchase", 0.87), ("refund", 0.88), ("app_open", 0.95),
    ("store_visit", 1.00),
]  # fmt: skip
TYPES = [kind for kind, _ in TYPE_MIX]
CHANNEL_OF = {"page_view": "web", "email_open": "email", "email_click": "email",
              "cart_add": "web", "cart_abandon": "web", "purchase": "web", "refund": "web",
              "app_open": "app", "store_visit": "store"}  # fmt: skip


def _type_case(r: str) -> str:
    whens = " ".join(f"WHEN {r} < {share} THEN '{kind}'" for kind, share in TYPE_MIX)
    return f"CASE {whens} END"


# Browsing sessions in the last 60 days for 5 % of the customers: a page view, a cart
# addition within 2 hours, then (half of them) a purchase within 2 hours, or else an
# abandoned cart within an hour, bought within 4 days 40 % of the time. Times past now
# are clamped to now.
_SESSIONS = """
    CREATE TEMP TABLE bench_sessions ON COMMIT DROP AS
    SELECT id AS customer_id, t0, t0 + random() * interval '2 hours' AS t1,
           random() < 0.5 AS bought, random() AS r_wait, random() AS r_late,
           random() AS r_late_at
    FROM (SELECT id, :now - random() * interval '60 days' AS t0 FROM customers
          WHERE random() < 0.05) s"""
_SESSION_STEPS = """
    INSERT INTO interactions (id, customer_id, channel, type, occurred_at, amount_minor,
                              currency, recorded_at)
    SELECT gen_random_uuid(), customer_id, 'web', kind, least(at, :now),
           CASE WHEN kind = 'purchase' THEN 100 + floor(random() * 30000)::int END,
           CASE WHEN kind = 'purchase' THEN CASE WHEN random() < 0.9 THEN 'EUR' ELSE 'USD' END
           END, least(at, :now)
    FROM (SELECT customer_id, 'page_view' AS kind, t0 AS at FROM bench_sessions
          UNION ALL SELECT customer_id, 'cart_add', t1 FROM bench_sessions
          UNION ALL SELECT customer_id, 'purchase', t1 + r_wait * interval '2 hours'
                    FROM bench_sessions WHERE bought
          UNION ALL SELECT customer_id, 'cart_abandon', t1 + r_wait * interval '1 hour'
                    FROM bench_sessions WHERE NOT bought
          UNION ALL SELECT customer_id, 'purchase',
                           t1 + r_wait * interval '1 hour' + r_late_at * interval '4 days'
                    FROM bench_sessions WHERE NOT bought AND r_late < 0.4) steps"""


def _session(rng: random.Random) -> list[tuple[str, Any]]:
    """The Python twin of ``_SESSIONS``: (type, time) of one customer's session."""
    t0 = NOW - timedelta(days=60 * rng.random())
    t1 = t0 + timedelta(hours=2 * rng.random())
    bought, wait, late, late_at = rng.random() < 0.5, rng.random(), rng.random(), rng.random()
    steps = [("page_view", t0), ("cart_add", t1)]
    if bought:
        steps.append(("purchase", t1 + timedelta(hours=2 * wait)))
    else:
        abandoned = t1 + timedelta(hours=wait)
        steps.append(("cart_abandon", abandoned))
        if late < 0.4:
            steps.append(("purchase", abandoned + timedelta(days=4 * late_at)))
    return [(kind, min(at, NOW)) for kind, at in steps]


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
        conn.execute(text(_SESSIONS), {"now": NOW})
        conn.execute(text(_SESSION_STEPS), {"now": NOW})
        timings["sessions"] = time.perf_counter() - start
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
        drawn = []
        for _ in range(1 + int(rng.random() * 19)):
            r = rng.random()
            drawn.append((next(k for k, share in TYPE_MIX if r < share),
                          NOW - timedelta(days=400 * rng.random())))  # fmt: skip
        if rng.random() < 0.05:
            drawn += _session(rng)
        for kind, at in drawn:
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
