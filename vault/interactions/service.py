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
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, Unpack

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from audit.entries import AuditAction
from policies import AccessDenied, Action, Resolution
from vault.authorization.authorizer import Authorizer
from vault.authorization.context import access_of, buffer_of
from vault.crypto.handles import Handles
from vault.errors import InteractionNotFound, InvalidInput
from vault.interactions.copy import COLUMNS, Row, insert_rows
from vault.interactions.models import IngestResult, Interaction, InteractionInput, TimelineOptions
from vault.interactions.timeline import (
    KEY,
    LIVE,
    TIMELINE,
    any_beside,
    count_of,
    customer_statuses,
    interaction_of,
    one_row,
    one_timeline,
    owner_of,
    ranked,
    timeline_filters,
)
from vault.interactions.validation import validate
from vault.keys import DataKeys, StoredKey
from vault.keyset import Bounds, keyset_page
from vault.logs import get_logger
from vault.pagination import Page, Window
from vault.privacy.processing import ProcessingGate
from vault.storage.models import CustomerExternalIdRow, CustomerRow, DataKeyRow
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

_LIVE = frozenset({CustomerStatus.ACTIVE.value, CustomerStatus.RESTRICTED.value})
# Each named customer's status and merge target with its stored data key, in one
# statement: the keys of a batch need no statement of their own (DataKeys.read_beside).
_OWNERS = (
    select(
        CustomerRow.id, CustomerRow.status, CustomerRow.merged_into_id,
        DataKeyRow.key_id, DataKeyRow.kek_version, DataKeyRow.wrapped_key,
    )
    .select_from(CustomerRow)
    .outerjoin(DataKeyRow, DataKeyRow.customer_id == CustomerRow.id)
)  # fmt: skip
_OWNERS_BY_IDS_PG = Prepared(_OWNERS.where(id_in_param(CustomerRow.id, "ids")))
_Status = dict[uuid.UUID, tuple[str, uuid.UUID | None]]


class InteractionService:
    def __init__(
        self,
        keys: DataKeys,
        authz: Authorizer,
        *,
        handles: Handles,
        clock: Callable[[], datetime],
        gate: ProcessingGate | None = None,
        on_recorded: Callable[[Session, Sequence[uuid.UUID]], object] | None = None,
    ) -> None:
        self._keys = keys
        self._authz = authz
        self._handles = handles
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
        stored: dict[uuid.UUID, StoredKey] = {}
        owners, unique, statuses = self._resolve_customers(session, items, stored)
        self._gate.check(session, [(cid, statuses[cid][0]) for cid in unique])
        keys = self._keys.read_beside(session, unique, stored)
        now = self._clock()
        rows: list[Row] = []
        row_ids = new_ids(len(items))
        seen: set[str] = set()
        duplicates = 0
        # One tuple per row in the COPY column order; the owner's key is looked up per row
        # (one hash of a UUID), everything else is per batch.
        for i, (item, owner, row_id) in enumerate(zip(items, owners, row_ids, strict=True)):
            channel, kind, occurred, minor, currency, ext, payload = validate(item, i)
            if ext is not None:
                if ext in seen:
                    duplicates += 1
                    continue
                seen.add(ext)
            sealed = (
                None
                if payload is None
                else keys[owner].encrypt(payload, field=PAYLOAD_FIELD, record_id=row_id)
            )
            rows.append((row_id, owner, channel, kind, occurred, minor, currency, ext, sealed, now))
        inserted = insert_rows(session, rows)
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
    def _insert(session: Session, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert rows given as column -> value mappings, skipping external ids already
        stored; return how many landed (tests drive the storage race through it)."""
        return insert_rows(session, [tuple(r[c] for c in COLUMNS) for r in rows])

    def _resolve_customers(
        self,
        session: Session,
        items: Sequence[InteractionInput],
        stored: dict[uuid.UUID, StoredKey],
    ) -> tuple[list[uuid.UUID], list[uuid.UUID], _Status]:
        """The owning customer of each item (following merges), the distinct owners in
        order of first appearance, and the status of each customer seen (its stored data
        key into ``stored``); unknown or erased ones raise, naming the first item that
        names them. Statuses are read afresh for every batch, never cached: a restriction,
        erasure or merge committed by another process is seen by the next batch.

        Each distinct customer is resolved once: hashing a UUID is a Python-level call,
        so the per-item work is one dictionary lookup."""
        wanted = self._named_customers(session, items)
        named = list(dict.fromkeys(wanted))
        status = self._statuses(session, named, stored)
        resolved: dict[uuid.UUID, uuid.UUID] = {}
        for cid in named:
            state = status.get(cid)
            if state is None or state[0] not in _LIVE:
                where = wanted.index(cid)
                resolved[cid] = self._follow_merges(session, cid, status, stored, where)
        if not resolved:  # nobody merged: each item is owned by the customer it names
            return wanted, named, status
        owners = [resolved.get(cid, cid) for cid in wanted]
        unique = list(dict.fromkeys(owners))
        return owners, unique, status

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
        status: _Status,
        stored: dict[uuid.UUID, StoredKey],
        index: int,
    ) -> uuid.UUID:
        current = customer_id
        for _hop in range(16):
            state = status.get(current)
            if state is None or state[0] != CustomerStatus.MERGED.value or state[1] is None:
                break
            current = state[1]
            if current not in status:
                status.update(self._statuses(session, [current], stored))
        state = status.get(current)
        where = f"interactions[{index}].customerId"
        if state is None:
            raise InvalidInput(where, "names no known customer")
        if state[0] not in (CustomerStatus.ACTIVE.value, CustomerStatus.RESTRICTED.value):
            raise InvalidInput(where, f"customer is {state[0]}; nothing is recorded")
        return current

    @staticmethod
    def _statuses(
        session: Session, ids: Collection[uuid.UUID], stored: dict[uuid.UUID, StoredKey]
    ) -> _Status:
        """(status, merged into) of each id found; its data key row into ``stored``."""
        out: _Status = {}
        id_list = list(ids)
        dialect = session.get_bind().dialect.name
        for start in range(0, len(id_list), 1000):
            chunk = id_list[start : start + 1000]
            if dialect == "postgresql":
                rows = _OWNERS_BY_IDS_PG.rows(session, {"ids": chunk})
            else:
                rows = list(session.execute(_OWNERS.where(id_in(CustomerRow.id, chunk, dialect))))
            for cid, status, into, key_id, kek_version, blob in rows:
                out[cid] = (status, into)
                stored[cid] = (key_id, kek_version, blob)
        return out

    def timeline(
        self,
        session: Session,
        customer_id: uuid.UUID,
        **options: Unpack[TimelineOptions],
    ) -> Page[Interaction]:
        """One customer's interactions, newest first, keyset-paginated on (occurred_at, id)
        in either direction; the options and their defaults are those of :meth:`timelines`."""
        return self.timelines(session, [customer_id], **options)[customer_id]

    def _may_read(self, session: Session, ids: list[uuid.UUID]) -> bool:
        """Refuse a caller who may not read these customers' timelines (ownership, the
        policy's ``interactions``); whether it may see their payloads."""
        reads = self._authz.reads(session)
        for cid in ids:
            self._authz.check_owner(session, cid)
        if reads.get("interactions") == Resolution.HIDDEN:
            ctx = access_of(session)
            error = AccessDenied(ctx.actor.role, ctx.purpose, "interactions", Action.READ)
            raise self._authz.denied(session, error, ids[0] if len(ids) == 1 else None)
        return reads.get("interaction_payload") == Resolution.CLEAR

    def _live(self, session: Session, known: dict[uuid.UUID, str]) -> list[uuid.UUID]:
        """The customers whose timelines are read, once the processing gate let the
        caller's purpose through: not erased or merged (their rows wait for the purge),
        nor erased again after a restored backup undid it (on the keyring's shred list)."""
        live = [cid for cid, status in known.items() if status in LIVE]
        erased = self._keys.shredded(live) if live else set()
        live = [cid for cid in live if cid not in erased]
        self._gate.check(session, [(cid, known[cid]) for cid in live])
        return live

    @staticmethod
    def _audit_read(session: Session, customer_id: uuid.UUID, with_payload: bool) -> None:
        buffer_of(session).read(
            customer_id,
            {"interactions": "clear", "interaction_payload": "clear" if with_payload else "hidden"},
        )

    def timelines(
        self,
        session: Session,
        customer_ids: Sequence[uuid.UUID],
        *,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        channel: str | None = None,
        type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        with_payload: bool = True,
    ) -> dict[uuid.UUID, Page[Interaction]]:
        """The first page of several customers' timelines in one statement (a window
        function per customer), so a list of customers with their interactions costs a
        bounded number of queries; 20 by default. ``after``, ``before`` and ``last``
        apply to a single customer only (see :class:`~vault.pagination.Window`)."""
        ids = list(dict.fromkeys(customer_ids))
        with_payload = self._may_read(session, ids) and with_payload
        window = Window.of(first=first, after=after, last=last, before=before, default=20)
        if len(ids) != 1:
            for name in ("after", "before", "last"):
                if getattr(window, name) is not None:
                    raise InvalidInput(name, "applies to one customer's timeline at a time")
        filters = timeline_filters(channel, type, since, until)
        bounds = Bounds.of(TIMELINE, self._handles, window, KEY)
        size, rows = window.size, list[Any]()
        if len(ids) == 1:
            # The status and the page in one statement; rows are used only if the gate
            # below lets this purpose process the customer.
            status, rows = one_timeline(
                session, ids[0], [*filters, *bounds.where], size, with_payload,
                oldest=window.backward,
            )  # fmt: skip
            known = {ids[0]: status}
        else:
            known = customer_statuses(session, ids)
        live = self._live(session, known)
        if len(ids) > 1 and live:
            rows = ranked(session, live, filters, size, with_payload=with_payload)
        grouped: dict[uuid.UUID, list[Any]] = {cid: [] for cid in ids}
        for row in rows:
            if row.customer_id in live:
                grouped[row.customer_id].append(row)
        needs_keys = [c for c, rs in grouped.items() if any(r.payload_ct for r in rs[:size])]
        keys = self._keys.get_many(session, needs_keys) if needs_keys else {}
        other = bounds.other_side(TIMELINE, window, KEY)
        pages: dict[uuid.UUID, Page[Interaction]] = {}
        for cid, group in grouped.items():
            shown, more = group[:size], len(group) > size
            if window.backward:
                shown.reverse()
            key = keys.get(cid)
            beside = (
                other is not None and cid in live and any_beside(session, cid, [*filters, other])
            )
            pages[cid] = keyset_page(
                [interaction_of(r, key, hidden=not with_payload) for r in shown],
                [(r.occurred_at, r.id) for r in shown],
                listing=TIMELINE, handles=self._handles,
                has_next_page=beside if window.backward else more,
                has_previous_page=more if window.backward else beside,
            )  # fmt: skip
            if cid in live:
                self._audit_read(session, cid, with_payload)
        return pages

    def get(self, session: Session, interaction_id: uuid.UUID) -> Interaction:
        """One interaction, under exactly the checks and audit of its customer's
        timeline: ownership, the policy's ``interactions`` (and ``interaction_payload``
        for the payload), the processing gate, a ``pii.access`` entry for the
        customer. Not found when its customer is erased or merged away."""
        owner = owner_of(session, interaction_id)
        if owner is None:
            raise InteractionNotFound(interaction_id)
        with_payload = self._may_read(session, [owner])
        if not self._live(session, customer_statuses(session, [owner])):
            raise InteractionNotFound(interaction_id)
        row = one_row(session, interaction_id, with_payload)
        if row is None:  # pragma: no cover - deleted between two statements of the unit
            raise InteractionNotFound(interaction_id)
        key = self._keys.get_many(session, [owner]).get(owner) if row.payload_ct else None
        found = interaction_of(row, key, hidden=not with_payload)
        self._audit_read(session, owner, with_payload)
        return found

    def count(
        self,
        session: Session,
        customer_id: uuid.UUID,
        *,
        channel: str | None = None,
        type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        """How many interactions :meth:`timeline` lists for the customer under these
        filters, under the same checks, without reading any: audited as one
        ``interactions.count`` entry for the customer (none when it is erased: 0)."""
        self._may_read(session, [customer_id])
        filters = timeline_filters(channel, type, since, until)
        if not self._live(session, customer_statuses(session, [customer_id])):
            return 0
        found = count_of(session, customer_id, filters)
        buffer_of(session).add(
            AuditAction.INTERACTIONS_COUNT, customer_id=customer_id, detail={"count": found}
        )
        return found
