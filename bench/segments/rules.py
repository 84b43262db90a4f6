"""The benchmark's rules: each as a rule document beside hand-written SQL for it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["ABANDONED", "FUNNEL", "NOW", "RULES", "hand", "params"]

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ABANDONED = "6 abandoned cart/30d, no purchase within 2d after it"
FUNNEL = "7 view -> cart -> purchase, each within 1h, from 30d"


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
    ABANDONED: {"sequence": {
        "steps": [{"types": ["cart_abandon"]}, {"types": ["purchase"], "absent": True}],
        "within": {"days": 2}, "window": {"within_days": 30},
    }},
    FUNNEL: {"sequence": {
        "steps": [{"types": ["page_view"]}, {"types": ["cart_add"]}, {"types": ["purchase"]}],
        "within": {"hours": 1}, "window": {"within_days": 30},
    }},
}  # fmt: skip

# Hand-written SQL for the same rules (:now, :d1 .. are bound). Written as one would by
# hand for PostgreSQL; the SQLite variants differ in parameter style (handled by
# SQLAlchemy's text()) and, for the sequences, in how a time is shifted (:func:`hand`).
_HAND: dict[str, list[tuple[str, str]]] = {
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


def params(dialect: str) -> dict[str, Any]:
    out: dict[str, Any] = {"now": NOW}
    for days in (1, 2, 30, 60, 90, 365):
        out[f"d{days}"] = NOW - timedelta(days=days)
    if dialect == "sqlite":  # naive strings, as UTCDateTime stores them
        out = {k: v.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f") for k, v in out.items()}
    return out


def _plus(dialect: str, column: str, seconds: int) -> str:
    """``column + seconds`` by hand: an interval on PostgreSQL; on SQLite, whose times are
    ``YYYY-MM-DD HH:MM:SS.ffffff`` text, the whole seconds shifted, the fraction kept."""
    if dialect == "postgresql":
        return f"{column} + interval '{seconds} seconds'"
    return f"(datetime(substr({column}, 1, 19), '+{seconds} seconds') || substr({column}, 20))"


def _abandoned(dialect: str, bound: str) -> str:
    return f"""
        SELECT DISTINCT a.customer_id FROM interactions a
        JOIN customers c ON c.id = a.customer_id AND c.status = 'active'
        WHERE a.type = 'cart_abandon' AND a.occurred_at >= :d30 AND a.occurred_at <= :d2
          AND NOT EXISTS (SELECT 1 FROM interactions p WHERE p.customer_id = a.customer_id
                          AND p.type = 'purchase' AND p.occurred_at >= a.occurred_at
                          AND p.occurred_at <= {_plus(dialect, "a.occurred_at", 172_800)}
                          {bound.format("p")})"""  # noqa: S608 - constant SQL


def _funnel(dialect: str, bound: str) -> str:
    return f"""
        SELECT DISTINCT v.customer_id FROM interactions v
        JOIN customers c ON c.id = v.customer_id AND c.status = 'active'
        WHERE v.type = 'page_view' AND v.occurred_at >= :d30 AND v.occurred_at <= :now
          AND EXISTS (SELECT 1 FROM interactions a WHERE a.customer_id = v.customer_id
                      AND a.type = 'cart_add' AND a.occurred_at >= v.occurred_at
                      AND a.occurred_at <= {_plus(dialect, "v.occurred_at", 3_600)}
                      AND a.occurred_at <= :now {bound.format("a")}
                      AND EXISTS (SELECT 1 FROM interactions p
                                  WHERE p.customer_id = a.customer_id AND p.type = 'purchase'
                                    AND p.occurred_at >= a.occurred_at
                                    AND p.occurred_at <= {_plus(dialect, "a.occurred_at", 3_600)}
                                    AND p.occurred_at <= :now {bound.format("p")}))"""  # noqa: S608 - constant SQL


def hand(dialect: str) -> dict[str, list[tuple[str, str]]]:
    """The hand-written SQL of every rule for ``dialect``. The sequences are written twice:
    as one would at first, and with the later steps also bounded by the window's start
    (implied by the first step's window, but a constant range the planner can use)."""
    variants = [("hand", ""), ("hand, later steps bounded", "AND {}.occurred_at >= :d30")]
    return {
        **_HAND,
        ABANDONED: [(label, _abandoned(dialect, bound)) for label, bound in variants],
        FUNNEL: [(label, _funnel(dialect, bound)) for label, bound in variants],
    }
