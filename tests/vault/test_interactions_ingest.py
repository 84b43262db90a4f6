"""Interactions ingest: the work of a batch does not grow with its rows or customers,
and a batch mixing merged and live customers lands each row on its owner."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection

from tests.conftest import CTX
from vault.customers import CustomerInput
from vault.interactions import InteractionInput
from vault.runtime import Vault

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def _customers(vault: Vault, count: int) -> list[uuid.UUID]:
    with vault.unit(CTX) as s:
        return [
            vault.customers.create(s, CustomerInput(first_name=f"Ingest {n}")).id
            for n in range(count)
        ]


def _items(owners: list[uuid.UUID], per_owner: int, tag: str) -> list[InteractionInput]:
    return [
        InteractionInput(
            customer_id=cid, channel="web", type="page_view",
            occurred_at=T0 + timedelta(minutes=n), external_id=f"{tag}-{i}-{n}",
            payload={"url": f"/p/{n}", "name": "\u0634\u06cc\u0631\u06cc\u0646 \u0e2a\u0e21"},
        )
        for i, cid in enumerate(owners)
        for n in range(per_owner)
    ]  # fmt: skip


@contextmanager
def _statements(vault: Vault) -> Iterator[list[str]]:
    """The SQL statements SQLAlchemy sends while the block runs. On PostgreSQL the
    external-id pre-check and the COPY go through the driver and are not seen here; they
    are one of each per batch (``vault.interactions.copy``)."""
    seen: list[str] = []

    def before(_conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(vault.db.engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(vault.db.engine, "before_cursor_execute", before)


def _count_batch(vault: Vault, items: list[InteractionInput]) -> int:
    with _statements(vault) as seen, vault.unit(CTX) as s:
        result = vault.interactions.record_many(s, items)
    assert result.inserted == len(items)
    return len(seen)


def test_statements_per_batch_do_not_grow_with_rows_or_customers(vault: Vault) -> None:
    """A batch of 3 rows for 3 customers and one of 600 rows for 60 customers send the
    same number of statements: customers, keys and stored external ids are fetched in
    bulk, never per row or per customer."""
    few = _customers(vault, 3)
    many = _customers(vault, 60)
    small = _count_batch(vault, _items(few, 1, "small"))
    large = _count_batch(vault, _items(many, 10, "large"))
    assert small == large


def test_a_batch_mixing_merged_and_live_customers_lands_each_row_on_its_owner(
    vault: Vault,
) -> None:
    """Rows naming a merged customer land on the customer it was merged into, rows naming
    live customers on themselves, in one batch; the timelines hold exactly those rows."""
    keep, dupe, other = _customers(vault, 3)
    with vault.unit(CTX) as s:
        vault.customers.merge(s, keep, dupe)
    items = _items([dupe, other, keep, dupe], 2, "mixed")
    with vault.unit(CTX) as s:
        result = vault.interactions.record_many(s, items)
    with vault.unit(CTX) as s:
        kept = vault.interactions.timeline(s, keep, first=100).items
        others = vault.interactions.timeline(s, other, first=100).items
    expected_kept = sorted(f"mixed-{i}-{n}" for i in (0, 2, 3) for n in range(2))
    assert (result.inserted, result.duplicates) == (8, 0)
    assert expected_kept == sorted(i.external_id or "" for i in kept)
    assert sorted(i.external_id or "" for i in others) == ["mixed-1-0", "mixed-1-1"]
    assert {i.customer_id for i in kept} == {keep}
    assert {(i.payload or {}).get("name") for i in kept} == {
        "\u0634\u06cc\u0631\u06cc\u0646 \u0e2a\u0e21"
    }
