"""Reading customer rows: one by id following merges to the surviving record (an ORM
object to write to, or a plain row with its external ids to read), many by id, the
candidates of a blind-index lookup, a page of ids under a filter, and external ids.

Reads run statements built once: building and cache-keying a statement on every call
cost as much as running it (bench/request_cost.py).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import ColumnElement, Row, Select, bindparam, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from vault.crypto.handles import Handles
from vault.customers.models import READABLE, CustomerFilter, ExternalId
from vault.errors import CustomerNotFound
from vault.keyset import KeyPart, Listing, keyset_rows
from vault.pagination import Page, Window
from vault.storage.models import CustomerExternalIdRow, CustomerRow
from vault.storage.sql import Prepared, id_in, json_array_has
from vault.types import PiiField

__all__ = [
    "CUSTOMERS",
    "ROW_BY_ID",
    "by_blind_index",
    "count_rows",
    "external_ids",
    "load",
    "owner_of",
    "page_rows",
    "pairs",
    "read",
    "rows_by_ids",
]

_CUSTOMERS: Final = CustomerRow.__table__.c
_EXT: Final = CustomerExternalIdRow.__table__.c


def _row_by_id(dialect: str) -> Select[Any]:
    """A customer's columns by ``:id``, with its external ids as a JSON array of
    ``[source, id]`` pairs (unordered; null or empty when it has none)."""
    if dialect == "postgresql":
        agg = func.json_agg(func.json_build_array(_EXT.source, _EXT.external_id))
    else:
        agg = func.json_group_array(func.json_array(_EXT.source, _EXT.external_id))
    ext = select(agg).where(_EXT.customer_id == _CUSTOMERS.id).scalar_subquery()
    return select(*_CUSTOMERS, ext.label("external_id_pairs")).where(
        _CUSTOMERS.id == bindparam("id")
    )


ROW_BY_ID: Final = {name: Prepared(_row_by_id(name)) for name in ("postgresql", "sqlite")}


def pairs(value: object) -> list[ExternalId]:
    """The external ids of a row's ``external_id_pairs``, sorted."""
    found = json.loads(value) if isinstance(value, str) else value
    if not isinstance(found, list):
        return []
    return [ExternalId(str(source), str(ext)) for source, ext in sorted(found)]


def load(
    session: Session,
    customer_id: uuid.UUID,
    *,
    for_update: bool = False,
    follow: bool = True,
) -> CustomerRow:
    """The customer's ORM row, following merges unless ``follow`` is false."""
    seen: set[uuid.UUID] = set()
    current = customer_id
    while True:
        stmt = select(CustomerRow).where(CustomerRow.id == current)
        if for_update:
            stmt = stmt.with_for_update()
        row = session.scalar(stmt)
        if row is None:
            raise CustomerNotFound(customer_id)
        if not follow or row.merged_into_id is None or row.merged_into_id in seen:
            return row
        seen.add(current)
        current = row.merged_into_id


def read(session: Session, customer_id: uuid.UUID) -> Row[Any]:
    """The customer's columns (a plain row, not an ORM object), following merges."""
    seen: set[uuid.UUID] = set()
    current = customer_id
    while True:
        dialect = session.get_bind().dialect.name
        found = ROW_BY_ID[dialect].rows(session, {"id": current})
        if not found:
            raise CustomerNotFound(customer_id)
        row = found[0]
        if row.merged_into_id is None or row.merged_into_id in seen:
            return row
        seen.add(current)
        current = row.merged_into_id


def external_ids(
    session: Session, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[ExternalId]]:
    """Each customer's external ids, sorted by source and id (absent when it has none)."""
    out: dict[uuid.UUID, list[ExternalId]] = {}
    if not customer_ids:
        return out
    rows = session.execute(
        select(
            CustomerExternalIdRow.customer_id,
            CustomerExternalIdRow.source,
            CustomerExternalIdRow.external_id,
        )
        .where(CustomerExternalIdRow.customer_id.in_(customer_ids))
        .order_by(CustomerExternalIdRow.source, CustomerExternalIdRow.external_id)
    ).all()
    for cid, source, ext in rows:
        out.setdefault(cid, []).append(ExternalId(source, ext))
    return out


def rows_by_ids(session: Session, customer_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Row[Any]]:
    """The customers' columns by id, not following merges; unknown ids are absent."""
    dialect = session.get_bind().dialect.name
    return {
        r.id: r
        for r in session.execute(
            select(*_CUSTOMERS).where(id_in(CustomerRow.id, customer_ids, dialect))
        )
    }


def by_blind_index(
    session: Session, field: PiiField, index: int, allowed: ColumnElement[bool]
) -> Sequence[Row[uuid.UUID, bytes | None]]:
    """The live customers (id, field's ciphertext) whose field has the blind index, oldest
    first, among those ``allowed`` (the processing gate's clause) lets through."""
    column = CustomerRow.email_bidx if field is PiiField.EMAIL else CustomerRow.phone_bidx
    token_column = CustomerRow.email_ct if field is PiiField.EMAIL else CustomerRow.phone_ct
    return session.execute(
        select(CustomerRow.id, token_column)
        .where(column == index)
        .where(CustomerRow.status.in_(READABLE))
        .where(allowed)
        .order_by(CustomerRow.created_at, CustomerRow.id)
    ).all()


# Customers oldest first, ties broken by id.
CUSTOMERS: Final = Listing("customers", (KeyPart.TIME, KeyPart.UUID))
_KEY: Final = (CustomerRow.created_at, CustomerRow.id)


def _listed(
    session: Session,
    f: CustomerFilter,
    allowed: ColumnElement[bool],
    *columns: InstrumentedAttribute[Any],
) -> Select[Any]:
    """The customers the filter and ``allowed`` (the processing gate's clause) let
    through, unordered: every condition of the filter is in the statement, so a page is
    cut (or a count taken) after filtering."""
    stmt = select(*columns).where(
        CustomerRow.status.in_([s.value for s in f.statuses] if f.statuses else READABLE)
    )
    stmt = stmt.where(allowed)
    if f.tier is not None:
        stmt = stmt.where(CustomerRow.tier == f.tier)
    if f.locale is not None:
        stmt = stmt.where(CustomerRow.locale == f.locale)
    if f.tag is not None:
        stmt = stmt.where(json_array_has(CustomerRow.tags, f.tag, session.get_bind().dialect.name))
    if f.created_after is not None:
        stmt = stmt.where(CustomerRow.created_at >= f.created_after)
    if f.created_before is not None:
        stmt = stmt.where(CustomerRow.created_at < f.created_before)
    return stmt


def page_rows(
    session: Session,
    f: CustomerFilter,
    allowed: ColumnElement[bool],
    *,
    handles: Handles,
    window: Window,
) -> Page[Row[Any]]:
    """The (id, created_at) rows of the customers the filter and ``allowed`` let
    through, in the window (oldest first): the page is full whenever enough customers
    match, and only its customers are read afterwards."""
    stmt = _listed(session, f, allowed, CustomerRow.id, CustomerRow.created_at)
    return keyset_rows(
        session, stmt, _KEY, listing=CUSTOMERS, handles=handles, window=window,
        key=lambda r: (r.created_at, r.id),
    )  # fmt: skip


def count_rows(session: Session, f: CustomerFilter, allowed: ColumnElement[bool]) -> int:
    """How many customers the filter and ``allowed`` let through (nothing is read)."""
    stmt = _listed(session, f, allowed, CustomerRow.id).subquery()
    return int(session.scalar(select(func.count()).select_from(stmt)) or 0)


def owner_of(session: Session, source: str, external_id: str) -> uuid.UUID | None:
    """The customer the external id belongs to, if any."""
    return session.scalar(
        select(CustomerExternalIdRow.customer_id).where(
            CustomerExternalIdRow.source == source,
            CustomerExternalIdRow.external_id == external_id,
        )
    )
