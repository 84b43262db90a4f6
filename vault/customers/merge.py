"""Folding a duplicate customer into the one kept: its empty PII fields filled (re-sealed
under the kept record's key), tags, attributes (PII ones re-sealed), locale and tier
combined, interactions re-sealed and moved, external ids moved, refusals (objections,
withheld consents) carried, and the merged record emptied into a redirect.

The service authorizes, loads and locks both rows, destroys the merged record's data key
and audits; this module moves the data.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from audit.entries import AuditAction
from vault.audit_trail.log import AuditBuffer
from vault.crypto import DataKey
from vault.customers.custom_attributes import open_value, seal_value
from vault.customers.validation import check_tags
from vault.logs import get_logger
from vault.storage.models import (
    ConsentStateRow,
    CustomerExternalIdRow,
    CustomerRow,
    InteractionRow,
    ObjectionRow,
)
from vault.types import PAYLOAD_FIELD, ConsentState, CustomerStatus, PiiField

log = get_logger("vault.customers.service")

__all__ = ["Folded", "fold", "merge_refusals", "move_interactions"]

# Checks one PII value and sets it, encrypted under the key, on the row.
Seal = Callable[[CustomerRow, DataKey, PiiField, object], None]


@dataclass(frozen=True, slots=True)
class Folded:
    """What a fold changed."""

    filled_fields: list[str]
    moved_interactions: int
    refusals_carried: int
    moved_external_ids: int


def fold(
    session: Session,
    keep: CustomerRow,
    gone: CustomerRow,
    keys: tuple[DataKey, DataKey],
    *,
    seal: Seal,
    now: datetime,
) -> Folded:
    """Fold ``gone`` into ``keep`` (both loaded for update; ``keys`` are theirs, in that
    order) and leave ``gone`` a merged redirect without PII."""
    keep_key, gone_key = keys
    filled: list[str] = []
    for name in PiiField:
        token = getattr(gone, f"{name}_ct")
        if getattr(keep, f"{name}_ct") is None and token is not None:
            value = gone_key.decrypt_text(token, field=name)
            seal(keep, keep_key, name, value)
            filled.append(name.value)
    keep.tags = check_tags([*keep.tags, *gone.tags])
    clear = {**gone.attributes, **keep.attributes}
    sealed = dict(keep.sealed_attributes or {})
    for attr, token in (gone.sealed_attributes or {}).items():
        if attr not in sealed and attr not in keep.attributes:  # re-sealed under keep's key
            sealed[attr] = seal_value(keep_key, attr, open_value(gone_key, attr, token))
            filled.append(f"attr:{attr}")
    keep.attributes = {k: v for k, v in clear.items() if k not in sealed}
    keep.sealed_attributes = sealed or None
    keep.locale = keep.locale or gone.locale
    keep.tier = keep.tier or gone.tier
    keep.updated_at = now
    flag_modified(keep, "updated_at")  # written (and the version moved on) even if unchanged

    moved = move_interactions(session, gone_key, keep_key)
    stricter = merge_refusals(session, keep.id, gone.id)
    moved_ext = session.execute(
        update(CustomerExternalIdRow)
        .where(CustomerExternalIdRow.customer_id == gone.id)
        .values(customer_id=keep.id)
    )
    session.execute(
        update(CustomerRow)
        .where(CustomerRow.merged_into_id == gone.id)
        .values(merged_into_id=keep.id, version=CustomerRow.version + 1)
    )
    for name in PiiField:
        setattr(gone, f"{name}_ct", None)
    gone.email_bidx = None
    gone.phone_bidx = None
    gone.match_bidx = None
    gone.sealed_attributes = None
    gone.status = CustomerStatus.MERGED.value
    gone.merged_into_id = keep.id
    gone.updated_at = now
    return Folded(
        filled_fields=filled,
        moved_interactions=moved,
        refusals_carried=stricter,
        moved_external_ids=int(getattr(moved_ext, "rowcount", 0) or 0),
    )


def record_merge(
    audit: AuditBuffer, keep_id: uuid.UUID, gone_id: uuid.UUID, folded: Folded
) -> None:
    """Audit the merge on both records (the fields filled, what moved) and log it, with
    ids and counts only."""
    detail = {
        "kept": str(keep_id),
        "merged": str(gone_id),
        "moved_interactions": folded.moved_interactions,
        "refusals_carried": folded.refusals_carried,
    }
    for subject in (keep_id, gone_id):
        audit.add(
            AuditAction.CUSTOMER_MERGE,
            customer_id=subject,
            fields=dict.fromkeys(folded.filled_fields, "written"),
            detail=detail,
        )
    log.info(
        "customer.merged",
        customer_id=str(keep_id),
        merged_id=str(gone_id),
        moved_interactions=folded.moved_interactions,
        filled_fields=folded.filled_fields,
    )


def move_interactions(session: Session, old: DataKey, new: DataKey) -> int:
    """Re-seal payloads under the surviving customer's key, then re-point the rows."""
    rows = session.execute(
        select(InteractionRow.id, InteractionRow.payload_ct).where(
            InteractionRow.customer_id == old.customer_id,
            InteractionRow.payload_ct.is_not(None),
        )
    ).all()
    params = []
    for interaction_id, token in rows:
        if token is None:
            continue
        plain = old.decrypt(token, field=PAYLOAD_FIELD, record_id=interaction_id)
        params.append(
            {
                "row_id": interaction_id,
                "payload": new.encrypt(plain, field=PAYLOAD_FIELD, record_id=interaction_id),
            }
        )
    if params:
        session.connection().execute(
            update(InteractionRow.__table__)  # type: ignore[arg-type]
            .where(InteractionRow.__table__.c.id == bindparam("row_id"))
            .values(payload_ct=bindparam("payload")),
            params,
        )
    result = session.execute(
        update(InteractionRow)
        .where(InteractionRow.customer_id == old.customer_id)
        .values(customer_id=new.customer_id)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def merge_refusals(session: Session, keep_id: uuid.UUID, gone_id: uuid.UUID) -> int:
    """Carry the merged record's refusals to the kept one, so a merge never reopens what
    the person closed: its objections, and each consent it withdrew or denied (the
    stricter state wins; a grant is never carried, and of two grants the earlier expiry
    holds). The state points at the merged record's event, which stays in its ledger.
    Returns how many objections and consent states changed."""
    changed = 0
    kept_scopes = set(
        session.scalars(select(ObjectionRow.scope).where(ObjectionRow.customer_id == keep_id))
    )
    for row in session.scalars(select(ObjectionRow).where(ObjectionRow.customer_id == gone_id)):
        if row.scope not in kept_scopes:
            session.add(
                ObjectionRow(
                    customer_id=keep_id,
                    scope=row.scope,
                    objected_at=row.objected_at,
                    request_id=row.request_id,
                )
            )
            changed += 1
    kept = {
        r.purpose: r
        for r in session.scalars(
            select(ConsentStateRow).where(ConsentStateRow.customer_id == keep_id)
        )
    }
    granted = ConsentState.GRANTED.value
    for theirs in session.scalars(
        select(ConsentStateRow).where(ConsentStateRow.customer_id == gone_id)
    ).all():
        mine = kept.get(theirs.purpose)
        if theirs.state != granted:
            if mine is None:
                mine = ConsentStateRow(customer_id=keep_id, purpose=theirs.purpose)
                session.add(mine)
            elif mine.state != granted:
                continue  # both refuse: the kept record's own refusal stands
            mine.state, mine.changed_at = theirs.state, theirs.changed_at
            mine.expires_at, mine.event_id = None, theirs.event_id
            changed += 1
        elif (
            mine is not None
            and mine.state == granted
            and theirs.expires_at is not None
            and (mine.expires_at is None or theirs.expires_at < mine.expires_at)
        ):
            mine.expires_at = theirs.expires_at
            changed += 1
    session.flush()
    return changed
