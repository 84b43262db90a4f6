"""Reading timelines: the statements behind
:meth:`~vault.interactions.service.InteractionService.timelines` and the decrypted
:class:`~vault.interactions.models.Interaction` each row becomes.

One customer's newest page comes with the customer's status in one prepared statement
(the common case; a page from the other end, or bounded by cursors, is the same
statement in the other order or with the cursors' conditions); several customers' first
pages come from one ranked statement (a window function per customer). Every timeline
is the :data:`TIMELINE` listing, keyset-paginated on (``occurred_at``, ``id``), newest
first. One interaction by id and a timeline's count read here too. Policy, the
processing gate and audit stay with the service.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, func, literal, select
from sqlalchemy.orm import Session

from vault.crypto import DataKey
from vault.errors import CustomerNotFound, InvalidInput
from vault.interactions.models import Interaction
from vault.keyset import KeyPart, Listing
from vault.money import from_minor
from vault.storage.models import CustomerRow, InteractionRow
from vault.storage.sql import Prepared, id_in
from vault.text import check_word
from vault.types import PAYLOAD_FIELD, Channel, CustomerStatus, InteractionType

__all__ = [
    "KEY",
    "LIVE",
    "TIMELINE",
    "any_beside",
    "count_of",
    "customer_statuses",
    "interaction_of",
    "one_row",
    "one_timeline",
    "owner_of",
    "ranked",
    "timeline_filters",
]

# The statuses whose interactions are read (an erased or merged customer has none).
LIVE = frozenset({CustomerStatus.ACTIVE.value, CustomerStatus.RESTRICTED.value})
# A customer's interactions, newest first, ties broken by id.
TIMELINE = Listing("interactions", (KeyPart.TIME, KeyPart.UUID), descending=True)
KEY = (InteractionRow.occurred_at, InteractionRow.id)


def _columns(with_payload: bool) -> list[Any]:
    t = InteractionRow
    return [
        t.id, t.customer_id, t.channel, t.type, t.occurred_at, t.amount_minor, t.currency,
        t.external_id, t.payload_ct if with_payload else literal(None).label("payload_ct"),
        t.recorded_at, t.payload_ct.is_not(None).label("has_payload"),
    ]  # fmt: skip


def _newest(
    with_payload: bool, filters: Sequence[ColumnElement[bool]] = (), *, oldest: bool = False
) -> Select[Any]:
    """One customer's status and newest interactions (``:id``, at most ``:n``; the
    oldest with ``oldest``): the customer left-joined to its matching rows, so an empty
    page still has a row (with a null interaction). Rows of a customer who is not live
    are not joined."""
    t, c = InteractionRow, CustomerRow
    joined = and_(t.customer_id == c.id, c.status.in_(sorted(LIVE)), *filters)
    return (
        select(c.status.label("customer_status"), *_columns(with_payload))
        .select_from(c.__table__.outerjoin(t.__table__, joined))
        .where(c.id == bindparam("id"))
        .order_by(*TIMELINE.order(KEY, reverse=oldest))
        .limit(bindparam("n"))
    )


# The statements of the common case, built once (see vault/customers/queries.py).
_NEWEST = {True: Prepared(_newest(True)), False: Prepared(_newest(False))}
_STATUS_OF_ONE = select(CustomerRow.id, CustomerRow.status).where(CustomerRow.id == bindparam("id"))


def one_timeline(
    session: Session,
    customer_id: uuid.UUID,
    filters: list[ColumnElement[bool]],
    first: int,
    with_payload: bool,
    *,
    oldest: bool = False,
) -> tuple[str, list[Any]]:
    """The customer's status and its newest ``first + 1`` matching rows (the oldest,
    oldest first, with ``oldest``; none unless the customer is live), in one statement;
    an unknown id raises :class:`CustomerNotFound`."""
    params = {"id": customer_id, "n": first + 1}
    if filters or oldest:
        statement = _newest(with_payload, filters, oldest=oldest)
        found = list(session.execute(statement, params).all())
    else:
        found = _NEWEST[with_payload].rows(session, params)
    if not found:
        raise CustomerNotFound(customer_id)
    return found[0].customer_status, [r for r in found if r.id is not None]


def customer_statuses(session: Session, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Each customer's status; an unknown id raises :class:`CustomerNotFound`."""
    if len(ids) == 1:
        found = session.execute(_STATUS_OF_ONE, {"id": ids[0]}).all()
    else:
        dialect = session.get_bind().dialect.name
        statuses = select(CustomerRow.id, CustomerRow.status)
        found = session.execute(statuses.where(id_in(CustomerRow.id, ids, dialect))).all()
    known: dict[uuid.UUID, str] = {row.id: row.status for row in found}
    for cid in ids:
        if cid not in known:
            raise CustomerNotFound(cid)
    return known


def ranked(
    session: Session,
    customer_ids: list[uuid.UUID],
    filters: list[ColumnElement[bool]],
    first: int,
    *,
    with_payload: bool,
) -> list[Any]:
    """The first ``first + 1`` interactions of each customer, newest first, in one
    statement (a window function per customer)."""
    t = InteractionRow
    dialect = session.get_bind().dialect.name
    rank = (
        func.row_number()
        .over(partition_by=t.customer_id, order_by=(t.occurred_at.desc(), t.id.desc()))
        .label("rank")
    )
    where = [id_in(t.customer_id, customer_ids, dialect), *filters]
    ranked = select(*_columns(with_payload), rank).where(*where).subquery()
    return list(
        session.execute(
            select(ranked)
            .where(ranked.c.rank <= first + 1)
            .order_by(ranked.c.customer_id, ranked.c.rank)
        ).all()
    )


def timeline_filters(
    channel: str | None,
    kind: str | None,
    since: datetime | None,
    until: datetime | None,
) -> list[ColumnElement[bool]]:
    """The conditions of a timeline's filters; bad names or naive times raise
    :class:`InvalidInput` naming the argument."""
    t = InteractionRow
    where: list[ColumnElement[bool]] = []
    if channel is not None:
        where.append(t.channel == check_word(Channel, channel, field="channel").value)
    if kind is not None:
        where.append(t.type == check_word(InteractionType, kind, field="type").value)
    for name, bound in (("since", since), ("until", until)):
        if bound is not None and bound.tzinfo is None:
            raise InvalidInput(name, "must be a datetime with a time zone")
    if since is not None:
        where.append(t.occurred_at >= since)
    if until is not None:
        where.append(t.occurred_at < until)
    return where


def any_beside(
    session: Session, customer_id: uuid.UUID, filters: list[ColumnElement[bool]]
) -> bool:
    """Whether the customer has a matching interaction (one ``LIMIT 1`` probe)."""
    t = InteractionRow
    stmt = select(t.id).where(t.customer_id == customer_id, *filters).limit(1)
    return session.execute(stmt).first() is not None


def count_of(session: Session, customer_id: uuid.UUID, filters: list[ColumnElement[bool]]) -> int:
    """How many of the customer's interactions match (nothing is decrypted)."""
    t = InteractionRow
    stmt = select(func.count()).select_from(t).where(t.customer_id == customer_id, *filters)
    return int(session.scalar(stmt) or 0)


def owner_of(session: Session, interaction_id: uuid.UUID) -> uuid.UUID | None:
    """The customer an interaction belongs to (None: no such interaction)."""
    t = InteractionRow
    return session.scalar(select(t.customer_id).where(t.id == interaction_id))


def one_row(session: Session, interaction_id: uuid.UUID, with_payload: bool) -> Any:  # noqa: ANN401 - a row
    """One interaction's row, its payload ciphertext only ``with_payload``."""
    stmt = select(*_columns(with_payload)).where(InteractionRow.id == interaction_id)
    return session.execute(stmt).first()


def interaction_of(row: Any, key: DataKey | None, *, hidden: bool) -> Interaction:  # noqa: ANN401
    """The interaction a row stands for, its payload decrypted with the owner's key;
    ``hidden`` marks a payload the caller's policy withholds."""
    payload = None
    if key is not None and row.payload_ct is not None:
        payload = json.loads(key.decrypt(row.payload_ct, field=PAYLOAD_FIELD, record_id=row.id))
    amount = None
    if row.amount_minor is not None and row.currency is not None:
        amount = from_minor(row.amount_minor, row.currency)
    return Interaction(
        id=row.id,
        customer_id=row.customer_id,
        channel=Channel(row.channel),
        type=InteractionType(row.type),
        occurred_at=row.occurred_at,
        amount=amount,
        currency=row.currency,
        external_id=row.external_id,
        payload=payload,
        recorded_at=row.recorded_at,
        payload_hidden=hidden and bool(row.has_payload),
    )
