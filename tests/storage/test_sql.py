"""Prepared statements: the driver path on PostgreSQL returns what SQLAlchemy returns."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from tests.conftest import CTX
from vault.customers import CustomerInput, ExternalId
from vault.customers.queries import ROW_BY_ID
from vault.interactions import InteractionInput
from vault.interactions.timeline import _NEWEST
from vault.runtime import Vault
from vault.storage.sql import Prepared

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def _both(session: Session, prepared: Prepared, params: dict[str, Any]) -> tuple[Any, Any]:
    """(rows of the prepared path, rows of SQLAlchemy's path), as plain dicts."""
    fast = [row._asdict() for row in prepared.rows(session, params)]
    usual = [row._asdict() for row in session.execute(prepared.statement, params).all()]
    return fast, usual


def _customer_with_history(vault: Vault) -> uuid.UUID:
    with vault.unit(CTX) as s:
        customer = vault.customers.create(
            s,
            CustomerInput(
                email="ploy@example.co.th",
                first_name="พลอย",
                last_name="وحیدی",
                tags=["vip", "新客"],
                attributes={"favourite_colour": "José", "shoe_size": 3},
                external_ids=[ExternalId("shopify", "8812"), ExternalId("crm", "A-1")],
            ),
        )
        vault.interactions.record_many(
            s,
            [
                InteractionInput(
                    customer_id=customer.id,
                    channel="store",
                    type="purchase",
                    occurred_at=T0 + timedelta(hours=n),
                    amount=Decimal("19.90"),
                    currency="EUR",
                    external_id=f"p-{n}",
                    payload={"sku": f"S{n}"} if n % 2 else None,
                )
                for n in range(5)
            ],
        )
    return customer.id


def test_the_customer_read_returns_the_same_row_on_both_paths(vault: Vault) -> None:
    """Every column of the customer row, external id pairs included, comes back with the
    same names, values and Python types as through SQLAlchemy."""
    cid = _customer_with_history(vault)
    with vault.unit(CTX) as s:
        fast, usual = _both(s, ROW_BY_ID[vault.db.dialect], {"id": cid})
    assert len(fast) == 1
    assert fast == usual
    assert {k: type(v) for k, v in fast[0].items()} == {k: type(v) for k, v in usual[0].items()}


def test_the_timeline_returns_the_same_rows_on_both_paths(vault: Vault) -> None:
    """The newest interactions (payload on and off), with the statement's own IN list of
    live statuses bound on the driver path too."""
    cid = _customer_with_history(vault)
    with vault.unit(CTX) as s:
        for with_payload in (True, False):
            fast, usual = _both(s, _NEWEST[with_payload], {"id": cid, "n": 3})
            assert [r["external_id"] for r in fast] == ["p-4", "p-3", "p-2"]
            assert fast == usual


def test_an_unknown_id_gives_no_rows_on_both_paths(vault: Vault) -> None:
    """No row for an id that is not stored."""
    with vault.unit(CTX) as s:
        fast, usual = _both(s, _NEWEST[True], {"id": uuid.uuid4(), "n": 3})
    assert (fast, usual) == ([], [])
