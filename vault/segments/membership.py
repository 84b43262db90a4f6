"""Materialised segment membership: the ``segment_memberships`` stays (``entered_at``,
``left_at``), the ``segment_outbox`` row each entry or leave writes for webhooks, and
the reads of current members.

A refresh evaluates a segment's compiled statement, diffs the result against the open
stays, closes the stays that ended, opens new ones and writes their events, all in the
caller's transaction. Reads of members take the caller's processing clause and see
only active customers. No policy check or audit entry here:
:class:`~vault.segments.service.SegmentService` makes both around every call.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, Select, delete, func, insert, select, update
from sqlalchemy.orm import Session

from vault.crypto.handles import Handles
from vault.keyset import KeyPart, Listing, keyset_rows
from vault.pagination import Page, Window
from vault.segments.models import RefreshResult, SegmentEvent
from vault.storage.models import (
    CustomerRow,
    SegmentMembershipRow,
    SegmentOutboxRow,
    SegmentRow,
)
from vault.storage.sql import id_in
from vault.types import CustomerStatus

__all__ = [
    "apply_diff",
    "close_stays",
    "count_members",
    "forget_customer",
    "member_page",
    "open_members",
    "refresh_among",
    "refresh_segment",
    "segments_of",
]

_CHUNK = 5_000


def refresh_segment(
    session: Session, segment_id: uuid.UUID, members: Select[Any], now: datetime
) -> RefreshResult:
    """Make the open stays of the segment those of ``members`` (every customer's)."""
    target = set(session.scalars(members))
    return apply_diff(session, segment_id, target, open_members(session, segment_id, None), now)


def refresh_among(
    session: Session,
    segment_id: uuid.UUID,
    members: Select[Any],
    customer_ids: Sequence[uuid.UUID],
    now: datetime,
) -> RefreshResult:
    """The same for these customers only (``members`` is the rule compiled for them,
    ``among=customer_ids``); everyone else's stays are left as they are."""
    target = set(session.scalars(members))
    current = open_members(session, segment_id, customer_ids)
    return apply_diff(session, segment_id, target, current, now)


def open_members(
    session: Session, segment_id: uuid.UUID, among: Sequence[uuid.UUID] | None
) -> set[uuid.UUID]:
    """The customers with an open stay in the segment (of ``among``, or all)."""
    m = SegmentMembershipRow
    stmt = select(m.customer_id).where(m.segment_id == segment_id, m.left_at.is_(None))
    if among is not None:
        stmt = stmt.where(id_in(m.customer_id, among, session.get_bind().dialect.name))
    return set(session.scalars(stmt))


def apply_diff(
    session: Session,
    segment_id: uuid.UUID,
    target: set[uuid.UUID],
    current: set[uuid.UUID],
    now: datetime,
) -> RefreshResult:
    """Make ``target`` the segment's open stays where ``current`` are: close the stays of
    those who left, open one for each who entered, an outbox row for each."""
    entered = sorted(target - current)
    left = sorted(current - target)
    close_stays(session, segment_id, left, now)
    for start in range(0, len(entered), _CHUNK):
        chunk = entered[start : start + _CHUNK]
        session.execute(
            insert(SegmentMembershipRow),
            [{"segment_id": segment_id, "customer_id": c, "entered_at": now} for c in chunk],
        )
        _events(session, segment_id, chunk, SegmentEvent.ENTERED, now)
    return RefreshResult(segment_id, len(target), len(entered), len(left))


def close_stays(
    session: Session, segment_id: uuid.UUID, left: list[uuid.UUID], now: datetime
) -> None:
    """End these customers' open stays at ``now``, each with its ``left`` event."""
    m = SegmentMembershipRow
    dialect = session.get_bind().dialect.name
    for start in range(0, len(left), _CHUNK):
        chunk = left[start : start + _CHUNK]
        session.execute(
            update(m)
            .where(
                m.segment_id == segment_id,
                m.left_at.is_(None),
                id_in(m.customer_id, chunk, dialect),
            )
            .values(left_at=now)
            .execution_options(synchronize_session=False)
        )
        _events(session, segment_id, chunk, SegmentEvent.LEFT, now)


def _events(
    session: Session,
    segment_id: uuid.UUID,
    customers: list[uuid.UUID],
    event: SegmentEvent,
    now: datetime,
) -> None:
    if customers:
        session.execute(
            insert(SegmentOutboxRow),
            [
                {"segment_id": segment_id, "customer_id": c, "event": event.value, "at": now}
                for c in customers
            ],
        )


def forget_customer(session: Session, customer_id: uuid.UUID) -> None:
    """Drop the customer's stays (open and past) and its events not yet handed to
    webhooks (an erased customer is no one's audience)."""
    for statement in (
        delete(SegmentMembershipRow).where(SegmentMembershipRow.customer_id == customer_id),
        delete(SegmentOutboxRow).where(
            SegmentOutboxRow.customer_id == customer_id,
            SegmentOutboxRow.delivered_at.is_(None),
        ),
    ):
        session.execute(statement.execution_options(synchronize_session=False))


# -- reading current members -------------------------------------------------------------


def _member_filters(
    segment_id: uuid.UUID, clause: ColumnElement[bool]
) -> list[ColumnElement[bool]]:
    return [
        SegmentMembershipRow.segment_id == segment_id,
        SegmentMembershipRow.left_at.is_(None),
        CustomerRow.status == CustomerStatus.ACTIVE.value,
        clause,
    ]


def count_members(session: Session, segment_id: uuid.UUID, clause: ColumnElement[bool]) -> int:
    """Current members (active customers) that ``clause`` lets through."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(SegmentMembershipRow)
            .join(CustomerRow, CustomerRow.id == SegmentMembershipRow.customer_id)
            .where(*_member_filters(segment_id, clause))
        )
        or 0
    )


# A segment's current members, by customer id.
MEMBERS: Final = Listing("members", (KeyPart.UUID,))


def member_page(
    session: Session,
    segment_id: uuid.UUID,
    clause: ColumnElement[bool],
    *,
    handles: Handles,
    window: Window,
) -> Page[uuid.UUID]:
    """A page of current member ids (ordered by id) that ``clause`` lets through."""
    member = SegmentMembershipRow.customer_id
    stmt = (
        select(member)
        .join(CustomerRow, CustomerRow.id == member)
        .where(*_member_filters(segment_id, clause))
    )
    rows = keyset_rows(
        session, stmt, (member,), listing=MEMBERS, handles=handles, window=window,
        key=lambda r: (r.customer_id,),
    )  # fmt: skip
    return rows.with_items([r.customer_id for r in rows.items])


def segments_of(session: Session, customer_id: uuid.UUID) -> list[SegmentRow]:
    """The live segments the customer has an open stay in, oldest first."""
    return list(
        session.scalars(
            select(SegmentRow)
            .join(SegmentMembershipRow, SegmentMembershipRow.segment_id == SegmentRow.id)
            .where(
                SegmentMembershipRow.customer_id == customer_id,
                SegmentMembershipRow.left_at.is_(None),
                SegmentRow.deleted_at.is_(None),
            )
            .order_by(SegmentRow.created_at, SegmentRow.id)
        )
    )
