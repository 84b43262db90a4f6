"""Duplicate detection for a batch of imported customers, before anything is written.

A row is a duplicate when its ``(source, external_id)`` is stored, when its email or
phone belongs to a live customer on file (:meth:`Identities.owners`: one statement per
field for the whole batch), or when an earlier row of the same batch is the same
person (same email, phone or external id). What happens to it is the import's
``on_duplicate``: ``skip`` it, ``link`` it (its external id goes to the customer it
matches, so the interactions that name it land there), or ``fail`` it (rejected with
its line). Rows are compared in normal form; no value is kept beyond the batch.

Before anything is looked up, :func:`claim_batch` claims the batch's emails, phones and
external ids (:meth:`Identities.claim`: one statement per batch on PostgreSQL), so a
create or another import of the same person waits for the batch to commit and then
sees it. A row refused as a duplicate is audited (:func:`audit_refusals`): one
``customer.create`` entry, outcome ``denied``, with its line, the field and the customer
it duplicates; never a value.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from audit.entries import AuditAction, Outcome
from vault.authorization.context import buffer_of
from vault.customers import CustomerInput, ExternalId
from vault.customers.identity import Contact, Identities
from vault.storage.models import CustomerExternalIdRow
from vault.types import PiiField

__all__ = ["Match", "OnDuplicate", "audit_refusals", "claim_batch", "match_batch", "ref_owners"]

_SQL_CHUNK: Final = 500


class OnDuplicate(StrEnum):
    """What an import does with a row for a customer already on file."""

    SKIP = "skip"
    LINK = "link"
    FAIL = "fail"


# A customer on file (its id) or one an earlier row of the batch creates (its index).
_Target = uuid.UUID | int


@dataclass(frozen=True, slots=True)
class Match:
    """Who a row duplicates: a customer on file (``target`` its id) or the customer an
    earlier row of the batch creates (``target`` that row's index in the batch);
    ``field`` says by what. ``others``: further customers on file it matches too (then
    the row is ambiguous)."""

    field: str
    target: _Target
    others: tuple[uuid.UUID, ...] = ()


def claim_batch(
    session: Session,
    identities: Identities,
    rows: Sequence[tuple[CustomerInput, ExternalId | None]],
) -> list[list[Contact]]:
    """Claim the batch's contacts and external ids (one statement), before any look-up;
    returns each row's contacts for :func:`match_batch`."""
    contacts = [identities.contacts(data.email, data.phone) for data, _ in rows]
    refs = [ref for _, ref in rows if ref is not None]
    identities.claim(session, [c for found in contacts for c in found], refs)
    return contacts


def audit_refusals(
    session: Session, identities: Identities, refused: Sequence[tuple[int, str, uuid.UUID]]
) -> None:
    """One ``customer.create`` entry (denied) per row refused as a duplicate, given as
    (line, field, the customer it duplicates): that id only when the caller may read it
    (one statement for the batch)."""
    if not refused:
        return
    shown = identities.shown_many(session, [cid for _, _, cid in refused])
    buffer = buffer_of(session)
    for line, field, cid in refused:
        existing = cid if cid in shown else None
        buffer.add(
            AuditAction.CUSTOMER_CREATE,
            fields={field: "duplicate"},
            outcome=Outcome.DENIED,
            detail=identities.refusal_detail(existing, by="import", line=line),
        )


def ref_owners(session: Session, refs: Sequence[ExternalId]) -> dict[tuple[str, str], uuid.UUID]:
    """The customer each stored ``(source, external_id)`` belongs to."""
    pairs = list(dict.fromkeys((r.source, r.external_id) for r in refs))
    found: dict[tuple[str, str], uuid.UUID] = {}
    table = CustomerExternalIdRow
    for start in range(0, len(pairs), _SQL_CHUNK):
        chunk = pairs[start : start + _SQL_CHUNK]
        rows = session.execute(
            select(table.source, table.external_id, table.customer_id).where(
                tuple_(table.source, table.external_id).in_(chunk)
            )
        )
        found.update(((source, ext), owner) for source, ext, owner in rows)
    return found


def match_batch(
    session: Session,
    identities: Identities,
    rows: Sequence[tuple[CustomerInput, ExternalId | None]],
    owners_of_refs: dict[tuple[str, str], uuid.UUID],
    contacts: list[list[Contact]] | None = None,
) -> list[Match | None]:
    """Each row's match (None: a new customer), in one pass over the batch; ``contacts``
    each row's, as :func:`claim_batch` returned them (else found here)."""
    if contacts is None:
        contacts = [identities.contacts(data.email, data.phone) for data, _ in rows]
    on_file = identities.owners(session, [c for found in contacts for c in found])
    seen: dict[Contact | tuple[str, str], _Target] = {}
    out: list[Match | None] = []
    for index, ((_, ref), found) in enumerate(zip(rows, contacts, strict=True)):
        keys: list[Contact | tuple[str, str]] = list(found)
        ref_key = None if ref is None else (ref.source, ref.external_id)
        if ref_key is not None:
            keys.append(ref_key)
        match = _match(ref_key, found, on_file, owners_of_refs)
        if match is None:
            earlier = next(((k, seen[k]) for k in keys if k in seen), None)
            if earlier is not None:
                match = Match(_field_of(earlier[0]), earlier[1])
        target: _Target = index if match is None else match.target
        for k in keys:
            seen.setdefault(k, target)
        out.append(match)
    return out


def _match(
    ref_key: tuple[str, str] | None,
    found: list[Contact],
    on_file: dict[Contact, list[uuid.UUID]],
    owners_of_refs: dict[tuple[str, str], uuid.UUID],
) -> Match | None:
    """The row's match among the customers on file, by external id first; the other
    customers on file it matches too are ``others``."""
    hits: list[tuple[str, uuid.UUID]] = []
    if ref_key is not None and ref_key in owners_of_refs:
        hits.append(("external_id", owners_of_refs[ref_key]))
    hits += [(c[0].value, on_file[c][0]) for c in found if c in on_file]
    if not hits:
        return None
    field, first = hits[0]
    others = tuple(dict.fromkeys(cid for _, cid in hits[1:] if cid != first))
    return Match(field, first, others)


def _field_of(key: Contact | tuple[str, str]) -> str:
    head = key[0]
    return head.value if isinstance(head, PiiField) else "external_id"
