"""Reading the audit trail: for compliance officers, search pages in either direction,
one entry by id, counts and streamed exports; for a data subject its own access history
(GDPR Art. 15). Reads of the trail are themselves audited (a count as ``audit.count``).

The access history lists the recipients of the customer's data too (Art. 15(1)(c)): each
``webhook.delivered`` entry names a webhook by id only, and a page resolves it to a
:class:`Recipient` (the webhook's purpose and the host of its URL, never its path or
query, which may carry a token) from the ``webhooks`` table when it is read.
Webhooks are never deleted and their URL never changes, so the answer is stable."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlsplit

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from audit.entries import AuditAction
from audit.export import ProofTree
from audit.merkle import leaf_hash
from policies import AccessDenied, Action, Purpose, Role
from vault.audit_trail.log import AuditFilter, AuditLog, CheckpointInfo
from vault.authorization.authorizer import SYSTEM_ROLE, Authorizer
from vault.authorization.context import access_of, buffer_of
from vault.crypto.handles import Handles
from vault.errors import VaultError
from vault.keyset import KeyPart, Listing, keyset_rows
from vault.pagination import Page, Window
from vault.storage.models import AuditEntryRow, AuditLogRow, WebhookRow

__all__ = [
    "ACCESS_ACTIONS",
    "AuditQueries",
    "AuditRecord",
    "InclusionProof",
    "Recipient",
    "RecordSink",
]

# What a data subject's access history lists: someone saw or searched for their data.
ACCESS_ACTIONS = [
    AuditAction.PII_ACCESS.value,
    AuditAction.PII_READ.value,
    AuditAction.INTERACTIONS_READ.value,
    AuditAction.CUSTOMER_EXPORT.value,
    AuditAction.CUSTOMER_UPDATE.value,
    AuditAction.CUSTOMER_MERGE.value,
    AuditAction.ACCESS_DENIED.value,
    AuditAction.INTERACTIONS_COUNT.value,
    AuditAction.WEBHOOK_DELIVERED.value,  # a recipient received the customer's data
]
# The trail newest first, by the row's sequence number; the log's cursors and an access
# history's are kept apart (each opens only in the list that gave it out).
LOG: Final = Listing("audit_log", (KeyPart.INT,), descending=True)
HISTORY: Final = Listing("access_history", (KeyPart.INT,), descending=True)


class EntryNotFound(VaultError):
    code = "NOT_FOUND"


@dataclass(frozen=True, slots=True)
class Recipient:
    """Who received a customer's data: a webhook, its purpose and its URL's host (not PII;
    the rest of the URL is never shown). ``host`` is None if the webhook is unknown."""

    webhook_id: uuid.UUID
    purpose: str
    host: str | None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    entry_id: uuid.UUID
    position: int | None
    time: datetime
    actor: str
    role: str
    purpose: str
    action: str
    outcome: str
    customer_id: uuid.UUID | None
    fields: dict[str, str]
    request_id: str
    detail: dict[str, Any]
    recipient: Recipient | None = None  # on a webhook.delivered entry read as a page


# Takes one entry of an export and its leaf hash (SHA-256(0x00 || canonical entry), what
# the Merkle tree holds); answers whether it kept the entry.
RecordSink = Callable[[AuditRecord, bytes], bool]


@dataclass(frozen=True, slots=True)
class InclusionProof:
    entry_id: uuid.UUID
    position: int
    tree_size: int
    leaf_hash: bytes
    proof: list[bytes]
    checkpoint: str


class AuditQueries:
    def __init__(self, audit: AuditLog, authz: Authorizer, *, handles: Handles) -> None:
        self._audit = audit
        self._authz = authz
        self._handles = handles

    def __repr__(self) -> str:
        return "AuditQueries()"

    def _require_compliance(self, session: Session) -> None:
        ctx = access_of(session)
        if ctx.actor.role == SYSTEM_ROLE:
            return
        if (ctx.actor.role, ctx.purpose) != (
            Role.COMPLIANCE_OFFICER.value,
            Purpose.COMPLIANCE.value,
        ):
            error = AccessDenied(ctx.actor.role, ctx.purpose, "audit_log", Action.READ)
            raise self._authz.denied(session, error)

    def export(
        self,
        session: Session,
        sink: RecordSink,
        *,
        filter_: AuditFilter | None = None,
        kind: str,
        batch: int = 1_000,
    ) -> int:
        """Every entry the filter selects, oldest first, handed to ``sink`` one at a time
        (constant memory: rows are fetched ``batch`` at a time), for compliance officers.
        The export is audited in the same unit of work (``kind`` and how many entries the
        sink kept); returns that count. Entries not sequenced yet come without a position
        but with their leaf hash."""
        self._require_compliance(session)
        filter_ = filter_ or AuditFilter()
        e = AuditEntryRow
        stmt = filter_.apply(
            select(e.id, AuditLogRow.position, AuditLogRow.leaf_hash, e.canonical).outerjoin(
                AuditLogRow, AuditLogRow.entry_pk == e.id
            )
        ).order_by(e.id)
        kept = 0
        for row_id, position, digest, canonical in session.execute(
            stmt.execution_options(yield_per=batch)
        ):
            record = _record(row_id, position, canonical)
            if sink(record, digest if digest is not None else leaf_hash(canonical)):
                kept += 1
        buffer_of(session).add(
            AuditAction.AUDIT_EXPORT,
            customer_id=filter_.customer_id,
            detail={"kind": kind, "entries": kept, "filtered": not filter_.empty},
        )
        return kept

    def _may_see_history(self, session: Session, customer_id: uuid.UUID) -> None:
        """A customer's access history: the customer's own, or for a compliance officer."""
        ctx = access_of(session)
        if ctx.actor.role == Role.DATA_SUBJECT.value:
            self._authz.check_owner(session, customer_id)
        else:
            self._require_compliance(session)

    def page(
        self,
        session: Session,
        *,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter_: AuditFilter | None = None,
        audited: bool = True,
    ) -> Page[AuditRecord]:
        """Entries newest first, for compliance officers, in either direction (see
        :class:`~vault.pagination.Window`; 20 by default); audited as ``audit.export``.
        ``audited=False`` only for a caller that records its own entry in the same unit
        of work (the console's search: one ``audit.search`` per page shown, however many
        pages of the trail it scanned)."""
        self._require_compliance(session)
        window = Window.of(first=first, after=after, last=last, before=before, default=20)
        page = self._entries(session, window, _listed(filter_ or AuditFilter(), None), LOG)
        if audited:
            buffer_of(session).add(
                AuditAction.AUDIT_EXPORT, detail={"entries": len(page.items), "kind": "graphql"}
            )
        return page

    def count(self, session: Session, *, filter_: AuditFilter | None = None) -> int:
        """How many entries :meth:`page` lists under the filter (compliance officers);
        audited as ``audit.count`` with the number."""
        self._require_compliance(session)
        found = _count(session, _listed(filter_ or AuditFilter(), None))
        buffer_of(session).add(AuditAction.AUDIT_COUNT, detail={"count": found, "kind": "log"})
        return found

    def access_history(
        self,
        session: Session,
        customer_id: uuid.UUID,
        *,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Page[AuditRecord]:
        """Who accessed this customer's data, when and why: the customer's own, or for a
        compliance officer; newest first, in either direction (20 by default)."""
        self._may_see_history(session, customer_id)
        window = Window.of(first=first, after=after, last=last, before=before, default=20)
        listed = _listed(AuditFilter(customer_id=customer_id), ACCESS_ACTIONS)
        page = self._entries(session, window, listed, HISTORY)
        buffer_of(session).read(customer_id, {"access_history": "clear"})  # this read, too
        return page

    def access_history_count(self, session: Session, customer_id: uuid.UUID) -> int:
        """How many entries the customer's access history holds, under the checks of
        :meth:`access_history`; audited as ``audit.count`` for the customer."""
        self._may_see_history(session, customer_id)
        found = _count(session, _listed(AuditFilter(customer_id=customer_id), ACCESS_ACTIONS))
        buffer_of(session).add(
            AuditAction.AUDIT_COUNT, customer_id=customer_id,
            detail={"count": found, "kind": "access_history"},
        )  # fmt: skip
        return found

    def entry(self, session: Session, entry_id: uuid.UUID) -> AuditRecord:
        """One entry, as the listings show it: to a compliance officer any entry (audited
        like a page of one), to a data subject one of its own access history (audited
        like reading it); another customer's entry is refused as that customer's
        access history would be, any other is not found."""
        subject = access_of(session).actor.role == Role.DATA_SUBJECT.value
        if not subject:
            self._require_compliance(session)
        found = session.execute(_columns().where(AuditEntryRow.entry_id == entry_id)).first()
        record = None if found is None else _record(found[0], found[1], found[2])
        if record is None or (subject and record.customer_id is None):
            raise EntryNotFound("the audit entry is not found")
        if not subject:
            buffer_of(session).add(
                AuditAction.AUDIT_EXPORT, detail={"entries": 1, "kind": "graphql"}
            )
            return record
        assert record.customer_id is not None  # noqa: S101 - checked above
        self._authz.check_owner(session, record.customer_id)
        if record.action not in ACCESS_ACTIONS:
            raise EntryNotFound("the audit entry is not found")
        buffer_of(session).read(record.customer_id, {"access_history": "clear"})
        return record

    def _entries(
        self, session: Session, window: Window, stmt: Select[*tuple[Any, ...]], listing: Listing
    ) -> Page[AuditRecord]:
        rows = keyset_rows(
            session, stmt, (AuditEntryRow.id,), listing=listing, handles=self._handles,
            window=window, key=lambda r: (r.id,),
        )  # fmt: skip
        records = [_record(row[0], row[1], row[2]) for row in rows.items]
        return rows.with_items(_with_recipients(session, records))

    def checkpoint(self, session: Session) -> CheckpointInfo | None:
        self._require_compliance(session)
        return self._audit.latest_checkpoint(session)

    def inclusion_proof(self, session: Session, entry_id: uuid.UUID) -> InclusionProof:
        """The audit path of one entry into the latest signed tree."""
        self._require_compliance(session)
        latest = self._audit.latest_checkpoint(session)
        found = session.execute(
            select(AuditLogRow.position, AuditLogRow.leaf_hash)
            .join(AuditEntryRow, AuditEntryRow.id == AuditLogRow.entry_pk)
            .where(AuditEntryRow.entry_id == entry_id)
        ).first()
        if found is None or latest is None or found[0] >= latest.tree_size:
            raise EntryNotFound("the entry is not in a signed checkpoint yet")
        hashes = list(
            session.scalars(
                select(AuditLogRow.leaf_hash)
                .where(AuditLogRow.position < latest.tree_size)
                .order_by(AuditLogRow.position)
            )
        )
        position, digest = found
        return InclusionProof(
            entry_id=entry_id,
            position=position,
            tree_size=latest.tree_size,
            leaf_hash=digest,
            proof=ProofTree(hashes).inclusion_proof(position),
            checkpoint=latest.note,
        )


def _columns() -> Select[*tuple[Any, ...]]:
    e = AuditEntryRow
    return select(e.id, AuditLogRow.position, e.canonical).outerjoin(
        AuditLogRow, AuditLogRow.entry_pk == e.id
    )


def _listed(filter_: AuditFilter, actions: list[str] | None) -> Select[*tuple[Any, ...]]:
    """The entries the filter (and, for an access history, the actions) let through."""
    stmt = filter_.apply(_columns())
    if actions is not None:
        stmt = stmt.where(AuditEntryRow.action.in_(actions))
    return stmt


def _count(session: Session, stmt: Select[*tuple[Any, ...]]) -> int:
    return int(session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)


def _with_recipients(session: Session, records: list[AuditRecord]) -> list[AuditRecord]:
    """The records, each ``webhook.delivered`` one with its :class:`Recipient` (one query
    for the page's webhooks)."""
    wanted = {
        uuid.UUID(r.detail["webhook"])
        for r in records
        if r.action == AuditAction.WEBHOOK_DELIVERED.value and "webhook" in r.detail
    }
    if not wanted:
        return records
    w = WebhookRow
    found = session.execute(select(w.id, w.url).where(w.id.in_(sorted(wanted))))
    urls: dict[uuid.UUID, str] = dict(found.all())
    out = []
    for r in records:
        if r.action == AuditAction.WEBHOOK_DELIVERED.value and "webhook" in r.detail:
            webhook_id = uuid.UUID(r.detail["webhook"])
            url = urls.get(webhook_id)
            host = None if url is None else urlsplit(url).hostname
            r = replace(r, recipient=Recipient(webhook_id, r.purpose, host))  # noqa: PLW2901
        out.append(r)
    return out


def _record(row_id: int, position: int | None, canonical: bytes) -> AuditRecord:
    raw = json.loads(canonical)
    return AuditRecord(
        entry_id=uuid.UUID(raw["id"]),
        position=position,
        time=datetime.fromisoformat(raw["time"]),
        actor=raw["actor"],
        role=raw["role"],
        purpose=raw["purpose"],
        action=raw["action"],
        outcome=raw["outcome"],
        customer_id=None if raw["customer"] is None else uuid.UUID(raw["customer"]),
        fields=dict(raw["fields"]),
        request_id=raw["request"],
        detail=dict(raw["detail"]),
    )
