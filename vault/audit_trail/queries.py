"""Reading the audit trail: search pages and streamed exports for compliance officers,
and for a data subject its own access history (GDPR Art. 15). Reads of the trail are
themselves audited.

The access history lists the recipients of the customer's data too (Art. 15(1)(c)): each
``webhook.delivered`` entry names a webhook by id only, and a page resolves it to a
:class:`Recipient` (the webhook's purpose and the host of its URL, never its path or
query, which may carry a token) from the ``webhooks`` table when it is read.
Webhooks are never deleted and their URL never changes, so the answer is stable."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from audit.entries import AuditAction
from audit.export import ProofTree
from audit.merkle import leaf_hash
from policies import AccessDenied, Action, Purpose, Role
from vault.audit_trail.log import AuditFilter, AuditLog, CheckpointInfo
from vault.authorization.authorizer import SYSTEM_ROLE, Authorizer
from vault.authorization.context import access_of, buffer_of
from vault.errors import InvalidInput, VaultError
from vault.pagination import MAX_PAGE, Page
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
    AuditAction.PII_READ.value,
    AuditAction.INTERACTIONS_READ.value,
    AuditAction.CUSTOMER_EXPORT.value,
    AuditAction.CUSTOMER_UPDATE.value,
    AuditAction.CUSTOMER_MERGE.value,
    AuditAction.ACCESS_DENIED.value,
    AuditAction.WEBHOOK_DELIVERED.value,  # a recipient received the customer's data
]


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
    cursor: str
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


def _cursor(row_id: int) -> str:
    return base64.urlsafe_b64encode(str(row_id).encode()).decode()


def _uncursor(cursor: str) -> int:
    try:
        return int(base64.urlsafe_b64decode(cursor.encode()).decode())
    except (ValueError, UnicodeError, binascii.Error):
        raise InvalidInput("after", "is not a cursor this API returned") from None


class AuditQueries:
    def __init__(self, audit: AuditLog, authz: Authorizer) -> None:
        self._audit = audit
        self._authz = authz

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

    def page(
        self,
        session: Session,
        *,
        first: int = 20,
        after: str | None = None,
        filter_: AuditFilter | None = None,
    ) -> Page[AuditRecord]:
        """Entries newest first, for compliance officers."""
        self._require_compliance(session)
        page = self._entries(session, first, after, filter_ or AuditFilter(), None)
        buffer_of(session).add(
            AuditAction.AUDIT_EXPORT, detail={"entries": len(page.items), "kind": "graphql"}
        )
        return page

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

    def access_history(
        self, session: Session, customer_id: uuid.UUID, *, first: int = 20, after: str | None = None
    ) -> Page[AuditRecord]:
        """Who accessed this customer's data, when and why: the customer's own, or for a
        compliance officer."""
        ctx = access_of(session)
        if ctx.actor.role == Role.DATA_SUBJECT.value:
            self._authz.check_owner(session, customer_id)
        else:
            self._require_compliance(session)
        page = self._entries(
            session, first, after, AuditFilter(customer_id=customer_id), ACCESS_ACTIONS
        )
        buffer_of(session).read(customer_id, {"access_history": "clear"})  # this read, too
        return page

    def _entries(
        self,
        session: Session,
        first: int,
        after: str | None,
        filter_: AuditFilter,
        actions: list[str] | None,
    ) -> Page[AuditRecord]:
        if not 1 <= first <= MAX_PAGE:
            raise InvalidInput("first", f"must be between 1 and {MAX_PAGE}")
        e = AuditEntryRow
        stmt = filter_.apply(
            select(e.id, AuditLogRow.position, e.canonical).outerjoin(
                AuditLogRow, AuditLogRow.entry_pk == e.id
            )
        )
        if actions is not None:
            stmt = stmt.where(e.action.in_(actions))
        if after is not None:
            stmt = stmt.where(e.id < _uncursor(after))
        rows = session.execute(stmt.order_by(e.id.desc()).limit(first + 1)).all()
        shown = rows[:first]
        items = _with_recipients(
            session, [_record(row_id, position, canonical) for row_id, position, canonical in shown]
        )
        end = items[-1].cursor if items else None
        return Page(items=items, end_cursor=end, has_next_page=len(rows) > first)

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
        cursor=_cursor(row_id),
    )
