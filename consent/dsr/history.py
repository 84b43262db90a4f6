"""A data subject request's history: each step is a ``dsr_events`` row and an audit
entry, and requests are read back as :class:`~consent.dsr.requests.DsrView` with
their history.

A step's history row and audit entry name the request, its type and status, never
a value from the request's details.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from audit.entries import AuditAction
from consent.dsr.requests import DsrView, request_view
from policies import Resource
from vault.authorization.context import access_of, buffer_of
from vault.runtime import Vault
from vault.storage.models import DsrEventRow, DsrRequestRow
from vault.types import DsrStatus

__all__ = ["RequestHistory"]

_REQUESTS = Resource.DATA_REQUESTS.value


class RequestHistory:
    """Writes the steps of requests and reads requests back with their history."""

    def __init__(self, vault: Vault) -> None:
        self._vault = vault

    def __repr__(self) -> str:
        return "RequestHistory()"

    def step(
        self,
        session: Session,
        row: DsrRequestRow,
        status: DsrStatus,
        *,
        note: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Move the request to ``status`` (or note a step in place): a history row and an
        audit entry, never with a value from the request's details."""
        ctx = access_of(session)
        row.status = status.value
        session.add(
            DsrEventRow(
                request_id=row.id, at=self._vault.clock(), status=status.value,
                actor=ctx.actor.subject, note=note,
            )
        )  # fmt: skip
        session.flush()
        buffer_of(session).add(
            AuditAction.DSR_CHANGE,
            customer_id=row.customer_id,
            fields={_REQUESTS: "written"},
            detail={
                "request": str(row.id),
                "type": row.type,
                "status": status.value,
                **(detail or {}),
            },
        )

    def events(
        self, session: Session, request_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, list[DsrEventRow]]:
        """The history rows of the requests, oldest first, by request id."""
        out: dict[uuid.UUID, list[DsrEventRow]] = {}
        if not request_ids:
            return out
        rows = session.scalars(
            select(DsrEventRow)
            .where(DsrEventRow.request_id.in_(request_ids))
            .order_by(DsrEventRow.at, DsrEventRow.id)
        )
        for event in rows:
            out.setdefault(event.request_id, []).append(event)
        return out

    def view(self, session: Session, row: DsrRequestRow) -> DsrView:
        """The request with its history and whether it is overdue."""
        events = self.events(session, [row.id]).get(row.id, [])
        return request_view(row, events, self._vault.clock())

    def views_of(self, session: Session, customer_id: uuid.UUID) -> list[DsrView]:
        """Every request of one customer, oldest first (for the export)."""
        authz = self._vault.authz
        authz.check_reads(session, _REQUESTS, customer_id)
        authz.check_owner(session, customer_id)
        rows = session.scalars(
            select(DsrRequestRow)
            .where(DsrRequestRow.customer_id == customer_id)
            .order_by(DsrRequestRow.received_at, DsrRequestRow.id)
        ).all()
        events = self.events(session, [r.id for r in rows])
        buffer_of(session).read(customer_id, {_REQUESTS: "clear"})
        now = self._vault.clock()
        return [request_view(r, events.get(r.id, []), now) for r in rows]
