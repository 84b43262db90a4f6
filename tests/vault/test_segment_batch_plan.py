"""The segment hook's membership check for an ingest batch is driven by the batch's
customer ids: on tables without statistics (a fresh schema, never analysed) it reads
the batch's own interactions, not every interaction of the rule's window, and selects
what a plain Python reading of the rule selects (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import random
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.elements import ClauseElement

from tests.conftest import CTX
from vault.customers import CustomerInput
from vault.interactions import InteractionInput
from vault.runtime import Vault
from vault.segments.parse import parse_rule
from vault.storage.models import ConsentStateRow, SegmentMembershipRow

DAY = timedelta(days=1)
CUSTOMERS = 300
PER_CUSTOMER = 10
BATCH = 10
# The soak's segment: purchased in the last 90 days and consented to marketing e-mail.
RULE: dict[str, Any] = {
    "all": [
        {"behaviour": {"aggregate": "count", "types": ["purchase"],
                       "window": {"within_days": 90}, "op": "gte", "value": 1}},
        {"consent": {"purpose": "marketing_email"}},
    ]
}  # fmt: skip


def _load(vault: Vault) -> tuple[list[uuid.UUID], dict[uuid.UUID, list[tuple[str, datetime]]]]:
    """300 customers with 10 interactions each (a third of them purchases, over 180
    days), two in three granted marketing e-mail; no ANALYZE anywhere."""
    rng = random.Random(13)
    now = vault.clock()
    with vault.unit(CTX) as s:
        ids = [vault.customers.create(s, CustomerInput()).id for _ in range(CUSTOMERS)]
    touches: dict[uuid.UUID, list[tuple[str, datetime]]] = {c: [] for c in ids}
    items = []
    for cid in ids:
        for _ in range(PER_CUSTOMER):
            kind = "purchase" if rng.random() < 0.33 else "page_view"
            at = now - rng.uniform(0, 180) * DAY
            touches[cid].append((kind, at))
            paid = kind == "purchase"
            items.append(InteractionInput(customer_id=cid, channel="web", type=kind,
                                          occurred_at=at, amount=Decimal(10) if paid else None,
                                          currency="EUR" if paid else None))  # fmt: skip
    with vault.unit(CTX) as s:
        for start in range(0, len(items), 1000):
            vault.interactions.record_many(s, items[start : start + 1000])
        consented = [c for i, c in enumerate(ids) if i % 3]
        s.execute(
            insert(ConsentStateRow),
            [{"customer_id": c, "purpose": "marketing_email", "state": "granted",
              "changed_at": now, "expires_at": None, "event_id": uuid.uuid4()}
             for c in consented],
        )  # fmt: skip
    return ids, touches


def _reference(ids: list[uuid.UUID], touches: dict[uuid.UUID, list[tuple[str, datetime]]],
               batch: list[uuid.UUID], now: datetime) -> set[uuid.UUID]:  # fmt: skip
    """The rule read plainly: a purchase within 90 days and a granted consent."""
    consented = {c for i, c in enumerate(ids) if i % 3}
    return {
        c
        for c in batch
        if c in consented and any(k == "purchase" and now - 90 * DAY <= at <= now
                                  for k, at in touches[c])
    }  # fmt: skip


def _interaction_rows_read(node: dict[str, Any]) -> int:
    """Rows the plan read from ``interactions``: returned plus filtered out, per loop."""
    own = 0
    if node.get("Relation Name") == "interactions":
        per_loop = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
        own = per_loop * node["Actual Loops"]
    return own + sum(_interaction_rows_read(child) for child in node.get("Plans", []))


def _plan_reads(session: Session, stmt: Any) -> tuple[int | None, str]:
    """(rows read from interactions, PostgreSQL; None on SQLite) and the plan's text."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        raw = conn.execute(_Explain(stmt, "EXPLAIN (ANALYZE, FORMAT JSON) ")).scalar_one()
        plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
        return _interaction_rows_read(plan), json.dumps(plan)
    rows = conn.execute(_Explain(stmt, "EXPLAIN QUERY PLAN "))
    return None, "\n".join(str(r[-1]) for r in rows)


class _Explain(Executable, ClauseElement):
    """``EXPLAIN`` of a statement, its parameters bound as the statement's own."""

    inherit_cache = False

    def __init__(self, statement: Any, prefix: str) -> None:
        self.statement = statement
        self.prefix = prefix


@compiles(_Explain)
def _explain(element: _Explain, compiler: Any, **kw: Any) -> str:
    sql = element.prefix + str(compiler.process(element.statement, **kw))
    compiler._result_columns = []
    return sql


@pytest.mark.parametrize("seed", [1, 2])
def test_the_batch_check_reads_only_the_batchs_interactions_without_statistics(
    vault: Vault, seed: int
) -> None:
    """For a batch of 10 customers out of 300 (3,000 interactions, ~1,000 purchases, a
    fresh schema never analysed) the hook's check reads at most 2x the batch's own 100
    interactions (PostgreSQL: EXPLAIN ANALYZE's rows from interactions; SQLite: only
    searches of interactions by customer id), and selects the reference's members, which
    the hook then stores."""
    ids, touches = _load(vault)
    now = vault.clock()
    batch = random.Random(seed).sample(ids, BATCH)
    expected = _reference(ids, touches, batch, now)
    with vault.unit(CTX) as s:
        stmt = vault.segments.statement(s, parse_rule(RULE), now, among=batch)
        actual = set(s.scalars(stmt))
        read, plan = _plan_reads(s, stmt)
    assert expected == actual
    assert expected  # the batch exercises the rule
    if read is not None:
        assert read <= 2 * BATCH * PER_CUSTOMER, plan
    else:
        searches = [line for line in plan.splitlines() if "interactions" in line]
        assert searches, plan
        assert all("(customer_id=?" in line for line in searches), plan
    with vault.unit(CTX) as s:
        segment = vault.segments.create(s, name="recent buyers", definition=RULE)
    with vault.unit(CTX) as s:
        vault.segments.on_customers_changed(s, batch)
        m = SegmentMembershipRow
        stored = set(s.scalars(select(m.customer_id).where(m.segment_id == segment.id)))
    assert expected == stored
