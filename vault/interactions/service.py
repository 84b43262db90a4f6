"""Interactions: bulk, idempotent ingest and a customer's timeline.

A batch is validated whole before anything is written and committed whole by
the caller's unit of work: either every new row lands or none does. Rows whose
external id is already stored are skipped and counted, never duplicated.
:class:`InteractionService` checks the policy and the processing gate, resolves each
item's customer (following merges), encrypts payloads and writes the audit; the
checks of one item live in :mod:`~vault.interactions.validation`, the writing in
:mod:`~vault.interactions.copy`, the timeline statements in
:mod:`~vault.interactions.timeline`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Unpack

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from audit.entries import AuditAction
from policies import AccessDenied, Action, Resolution
from vault.authorization.authorizer import Authorizer
from vault.authorization.context import access_of, buffer_of
from vault.errors import InvalidInput
from vault.interactions.copy import insert_rows
from vault.interactions.models import IngestResult, Interaction, InteractionInput, TimelineOptions
from vault.interactions.timeline import (
    LIVE,
    customer_statuses,
    interaction_of,
    one_timeline,
    ranked,
    timeline_filters,
)
from vault.interactions.validation import validate
from vault.keys import DataKeys
from vault.logs import get_logger
from vault.pagination import MAX_PAGE, Page, encode_cursor
from vault.privacy.processing import ProcessingGate
from vault.storage.models import CustomerExternalIdRow, CustomerRow
from vault.storage.sql import Prepared, id_in, id_in_param, new_ids
from vault.types import PAYLOAD_FIELD, CustomerStatus

__all__ = [
    "MAX_BATCH",
    "IngestResult",
    "Interaction",
    "InteractionInput",
    "InteractionService",
    "Page",
]

MAX_BATCH = 1000
log = get_logger("vault.interactions.service")

_OWNERS = select(CustomerRow.id, CustomerRow.status, CustomerRow.merged_into_id)
_OWNERS_BY_IDS_PG = Prepared(_OWNERS.where(id_in_param(CustomerRow.id, "ids")))


class InteractionService:
    def __init__(
        self,
        keys: DataKeys,
        authz: Authorizer,
        *,
        clock: Callable[[], datetime],
        gate: ProcessingGate | None = None,
        on_recorded: Callable[[Session, Sequence[uuid.UUID]], object] | None = None,
    ) -> None:
        self._keys = keys
        self._authz = authz
        self._clock = clock
        self._gate = gate or ProcessingGate(authz, clock)
        # Derived state that follows new interactions (segment memberships, metrics), in
        # the same unit of work: the ingest and its consequences commit together.
        self._on_recorded = on_recorded

    def __repr__(self) -> str:
        return "InteractionService()"

    def record_many(self, session: Session, items: Sequence[InteractionInput]) -> IngestResult:
        """Validate and store a batch (at most ``MAX_BATCH``); idempotent on external id."""
        audit = buffer_of(session)
        if len(items) > MAX_BATCH:
            raise InvalidInput("interactions", f"at most {MAX_BATCH} per batch")
        wanted = ["interactions"]
        if any(item.payload is not None for item in items):
            wanted.append("interaction_payload")
        self._authz.check_writes(session, wanted)
        if not items:
            return IngestResult(0, 0)
        owners, statuses = self._resolve_customers(session, items)
        unique = list(dict.fromkeys(owners))
        self._gate.check(session, [(cid, statuses[cid][0]) for cid in unique])
        keys = self._keys.get_many(session, unique)
        now = self._clock()
        rows: list[dict[str, Any]] = []
        row_ids = new_ids(len(items))
        seen: set[str] = set()
        duplicates = 0
        for i, (item, owner) in enumerate(zip(items, owners, strict=True)):
            where = f"interactions[{i}]"
            row = validate(item, where)
            if row["external_id"] is not None:
                if row["external_id"] in seen:
                    duplicates += 1
                    continue
                seen.add(row["external_id"])
            row_id = row_ids[i]
            row["id"] = row_id
            row["customer_id"] = owner
            row["recorded_at"] = now
            payload = row.pop("payload")
            row["payload_ct"] = (
                None
                if payload is None
                else keys[owner].encrypt(payload, field=PAYLOAD_FIELD, record_id=row_id)
            )
            rows.append(row)
        inserted = self._insert(session, rows)
        result = IngestResult(inserted=inserted, duplicates=duplicates + len(rows) - inserted)
        if inserted and self._on_recorded is not None:
            self._on_recorded(session, unique)
        audit.add(
            AuditAction.INTERACTIONS_RECORD,
            fields={"interactions": "written"},
            detail={
                "inserted": result.inserted,
                "duplicates": result.duplicates,
                "customers": len(keys),
            },
        )
        log.info(
            "interactions.recorded",
            inserted=result.inserted,
            duplicates=result.duplicates,
            customers=len(keys),
        )
        return result

    @staticmethod
    def _insert(session: Session, rows: list[dict[str, Any]]) -> int:
        """Insert, skipping rows whose external id is stored; return how many landed."""
        return insert_rows(session, rows)

    def _resolve_customers(
        self, session: Session, items: Sequence[InteractionInput]
    ) -> tuple[list[uuid.UUID], dict[uuid.UUID, tuple[str, uuid.UUID | None]]]:
        """The owning customer of each item, following merges, and the status of each
        customer seen; unknown or erased ones raise."""
        wanted = self._named_customers(session, items)
        status = self._statuses(session, set(wanted))
        resolved: dict[uuid.UUID, uuid.UUID] = {}
        owners: list[uuid.UUID] = []
        for i, cid in enumerate(wanted):
            owner = resolved.get(cid)
            if owner is None:
                owner = resolved[cid] = self._follow_merges(session, cid, status, i)
            owners.append(owner)
        return owners, status

    def _named_customers(
        self, session: Session, items: Sequence[InteractionInput]
    ) -> list[uuid.UUID]:
        """Each item's customer id, looking up (source, external id) references in bulk."""
        refs = list(
            {
                (it.customer_source, it.customer_external_id)
                for it in items
                if it.customer_id is None and it.customer_external_id is not None
            }
        )
        by_ref: dict[tuple[str | None, str | None], uuid.UUID] = {}
        ext = CustomerExternalIdRow
        for start in range(0, len(refs), 500):
            pairs = tuple_(ext.source, ext.external_id).in_(refs[start : start + 500])
            for source, external_id, cid in session.execute(
                select(ext.source, ext.external_id, ext.customer_id).where(pairs)
            ):
                by_ref[(source, external_id)] = cid
        wanted: list[uuid.UUID] = []
        for i, it in enumerate(items):
            named = it.customer_id or by_ref.get((it.customer_source, it.customer_external_id))
            if named is None:
                raise InvalidInput(
                    f"interactions[{i}].customer",
                    "names no known customer (give customerId, or source and externalId)",
                )
            wanted.append(named)
        return wanted

    def _follow_merges(
        self,
        session: Session,
        customer_id: uuid.UUID,
        status: dict[uuid.UUID, tuple[str, uuid.UUID | None]],
        index: int,
    ) -> uuid.UUID:
        current = customer_id
        for _hop in range(16):
            state = status.get(current)
            if state is None or state[0] != CustomerStatus.MERGED.value or state[1] is None:
                break
            current = state[1]
            if current not in status:
                status.update(self._statuses(session, {current}))
        state = status.get(current)
        where = f"interactions[{index}].customerId"
        if state is None:
            raise InvalidInput(where, "names no known customer")
        if state[0] not in (CustomerStatus.ACTIVE.value, CustomerStatus.RESTRICTED.value):
            raise InvalidInput(where, f"customer is {state[0]}; nothing is recorded")
        return current

    def _statuses(
        self, session: Session, ids: set[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[str, uuid.UUID | None]]:
        out: dict[uuid.UUID, tuple[str, uuid.UUID | None]] = {}
        id_list = list(ids)
        dialect = session.get_bind().dialect.name
        for start in range(0, len(id_list), 1000):
            chunk = id_list[start : start + 1000]
            if dialect == "postgresql":
                rows = _OWNERS_BY_IDS_PG.rows(session, {"ids": chunk})
            else:
                rows = list(session.execute(_OWNERS.where(id_in(CustomerRow.id, chunk, dialect))))
            for cid, status, into in rows:
                out[cid] = (status, into)
        return out

    def timeline(
        self,
        session: Session,
        customer_id: uuid.UUID,
        **options: Unpack[TimelineOptions],
    ) -> Page[Interaction]:
        """One customer's interactions, newest first, keyset-paginated on (occurred_at, id);
        the options and their defaults are those of :meth:`timelines`."""
        return self.timelines(session, [customer_id], **options)[customer_id]

    def timelines(
        self,
        session: Session,
        customer_ids: Sequence[uuid.UUID],
        *,
        first: int = 20,
        after: str | None = None,
        channel: str | None = None,
        type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        with_payload: bool = True,
    ) -> dict[uuid.UUID, Page[Interaction]]:
        """The first page of several customers' timelines in one statement (a window
        function per customer), so a list of customers with their interactions costs a
        bounded number of queries. ``after`` applies to a single customer only."""
        audit = buffer_of(session)
        reads = self._authz.reads(session)
        ids = list(dict.fromkeys(customer_ids))
        for cid in ids:
            self._authz.check_owner(session, cid)
        if reads.get("interactions") == Resolution.HIDDEN:
            ctx = access_of(session)
            error = AccessDenied(ctx.actor.role, ctx.purpose, "interactions", Action.READ)
            raise self._authz.denied(session, error, ids[0] if len(ids) == 1 else None)
        with_payload = with_payload and reads.get("interaction_payload") == Resolution.CLEAR
        if not 1 <= first <= MAX_PAGE:
            raise InvalidInput("first", f"must be between 1 and {MAX_PAGE}")
        if after is not None and len(ids) != 1:
            raise InvalidInput("after", "applies to one customer's timeline at a time")
        filters = timeline_filters(channel, type, since, until, after)
        rows: list[Any] = []
        if len(ids) == 1:
            # The status and the page in one statement; rows are used only if the gate
            # below lets this purpose process the customer.
            status, rows = one_timeline(session, ids[0], filters, first, with_payload)
            known = {ids[0]: status}
        else:
            known = customer_statuses(session, ids)
        # An erased (or merged) customer has no timeline: rows waiting for the purge are
        # never read again. Nor has one whose erasure a restored backup undid (its id is
        # on the keyring's shred list): it reads as erased until `erasure reapply`.
        live = [cid for cid in ids if known[cid] in LIVE]
        erased = self._keys.shredded(live) if live else set()
        live = [cid for cid in live if cid not in erased]
        self._gate.check(session, [(cid, known[cid]) for cid in live])
        if len(ids) > 1 and live:
            rows = ranked(session, live, filters, first, with_payload=with_payload)
        grouped: dict[uuid.UUID, list[Any]] = {cid: [] for cid in ids}
        for row in rows:
            if row.customer_id not in erased:
                grouped[row.customer_id].append(row)
        needs_keys = [c for c, rs in grouped.items() if any(r.payload_ct for r in rs[:first])]
        keys = self._keys.get_many(session, needs_keys) if needs_keys else {}
        pages: dict[uuid.UUID, Page[Interaction]] = {}
        for cid, group in grouped.items():
            shown = group[:first]
            key = keys.get(cid)
            items = [interaction_of(r, key, hidden=not with_payload) for r in shown]
            end = encode_cursor(shown[-1].occurred_at, shown[-1].id) if shown else None
            pages[cid] = Page(items=items, end_cursor=end, has_next_page=len(group) > first)
            if known[cid] not in LIVE or cid in erased:
                continue
            audit.read(
                cid,
                {
                    "interactions": "clear",
                    "interaction_payload": "clear" if with_payload else "hidden",
                },
                action=AuditAction.INTERACTIONS_READ,
            )
        return pages
