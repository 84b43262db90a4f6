"""Identity resolution: is this person already on file?

A customer is the same person as a live record that has the same email address or the
same phone number (by blind index, then re-checked on the decrypted value: blind indexes
are short on purpose, so a shared index is only a candidate), or one of the same
``(source, external_id)``. Merged records (a redirect, no PII) and erased ones (a
tombstone) are nobody. Lookups are batched: :meth:`Identities.owners` answers a whole
import chunk with one statement per field and per 500 values.

The name + birth date match key (:meth:`Identities.match_key`) is not an identity: two
people share names and birthdays. It only proposes duplicate candidates
(:mod:`vault.customers.duplicates`).

Whether a caller learns the existing record's id is :meth:`Identities.shown`: only when
it could read that customer (a data subject its own record; a consent-based purpose a
customer who consented). The value itself never leaves: errors name the field.

The check reads, then the caller writes: :meth:`Identities.claim` makes that safe under
concurrency. On PostgreSQL it takes a transaction-scoped advisory lock per email and
phone blind index and per ``(source, external_id)`` claimed, in one statement and in a
sorted order (no deadlock between two writers claiming the same keys), so a second
writer of the same person waits for the first to commit and then sees it. The lock keys
are derived from the blind index (already stored, deliberately short: unrelated people
sharing one only wait for each other) and from a CRC of the external id (stored in
clear): never the email or phone. On SQLite every unit of work begins ``BEGIN
IMMEDIATE`` (:mod:`vault.storage.db`): writers already run one at a time, check and
insert in the same write transaction, so there is nothing more to take.

A refusal is audited (:meth:`Identities.refusal`): the action refused (``customer.create``
or ``customer.update``, outcome ``denied``), the field, and the existing id only when
the caller may read it; never a value.
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any, Final

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from audit.entries import AuditAction, Outcome
from policies import Role
from vault.authorization.context import access_of, buffer_of
from vault.crypto import BlindIndexer, DataKey
from vault.customers.models import READABLE, ExternalId
from vault.customers.normalize import (
    normalise_email,
    normalise_full_name,
    normalise_phone,
    parse_birth_date,
)
from vault.customers.queries import owner_of
from vault.customers.validation import check_external_id
from vault.errors import DuplicateCustomer, InvalidInput
from vault.keys import DataKeys
from vault.privacy.processing import ProcessingGate
from vault.storage.models import CustomerExternalIdRow, CustomerRow
from vault.types import PiiField

__all__ = ["CONTACTS", "Contact", "Identities"]

# The fields that identify a person on their own.
CONTACTS: Final = (PiiField.EMAIL, PiiField.PHONE)
# A contact to look for: the field and its normal form.
Contact = tuple[PiiField, str]
_CHUNK: Final = 500
# The advisory lock space of identity claims: PostgreSQL's two-key form (its keys never
# meet the one-key locks of the audit sequencer, the scheduler or the in-use guard),
# the first key "cvi" and the kind of claim, the second the folded blind index or CRC.
_LOCK_SPACE: Final = 0x63766900
_LOCK_KINDS: Final = {PiiField.EMAIL: 1, PiiField.PHONE: 2}
_LOCK_EXTERNAL_ID: Final = 3
_CLAIM = (
    "SELECT count(pg_advisory_xact_lock(k1, k2)) "
    "FROM unnest(CAST(:k1 AS integer[]), CAST(:k2 AS integer[])) AS t(k1, k2)"
)


def _int32(value: int) -> int:
    """``value`` folded to a signed 32-bit integer (PostgreSQL's ``integer``)."""
    folded = (value ^ (value >> 32)) & 0xFFFFFFFF
    return folded - (1 << 32) if folded >= 1 << 31 else folded


class Identities:
    """Finds the live customers a contact belongs to, and tells who may learn of them."""

    def __init__(
        self,
        keys: DataKeys,
        gate: ProcessingGate,
        indexer: BlindIndexer,
        region: str | None,
    ) -> None:
        self._keys = keys
        self._gate = gate
        self._bidx = indexer
        self._region = region

    def __repr__(self) -> str:
        return "Identities()"

    # -- contacts -------------------------------------------------------------

    def contacts(self, email: object, phone: object) -> list[Contact]:
        """The normal forms of an email address and a phone number given (strings only;
        anything the input rules refuse is left to them)."""
        found: list[Contact] = []
        try:
            if isinstance(email, str):
                found.append((PiiField.EMAIL, normalise_email(email)))
            if isinstance(phone, str):
                found.append((PiiField.PHONE, normalise_phone(phone, region=self._region)))
        except InvalidInput:
            return found  # the create or update refuses the value with its own rule
        return found

    def owners(self, session: Session, wanted: Iterable[Contact]) -> dict[Contact, list[uuid.UUID]]:
        """The live customers each contact belongs to, oldest first (absent when none):
        one statement per field and per 500 contacts, candidates decrypted and compared."""
        asked = set(wanted)
        by_field: dict[PiiField, set[int]] = {}
        for field, value in asked:
            by_field.setdefault(field, set()).add(self._bidx.index(field, value))
        out: dict[Contact, list[uuid.UUID]] = {}
        for field, indexes in by_field.items():
            bidx = CustomerRow.email_bidx if field is PiiField.EMAIL else CustomerRow.phone_bidx
            token = CustomerRow.email_ct if field is PiiField.EMAIL else CustomerRow.phone_ct
            values = sorted(indexes)
            for start in range(0, len(values), _CHUNK):
                rows = session.execute(
                    select(CustomerRow.id, bidx, token)
                    .where(bidx.in_(values[start : start + _CHUNK]))
                    .where(CustomerRow.status.in_(READABLE))
                    .order_by(CustomerRow.created_at, CustomerRow.id)
                ).all()
                for cid, value in self._opened(session, field, [(r[0], r[2]) for r in rows]):
                    if (field, value) in asked:
                        out.setdefault((field, value), []).append(cid)
        return out

    def _opened(
        self, session: Session, field: PiiField, rows: list[tuple[uuid.UUID, bytes | None]]
    ) -> list[tuple[uuid.UUID, str]]:
        """Each row's value of ``field`` decrypted and in normal form; rows without one,
        and those whose key the keyring shredded (an erasure a restore undid), left out."""
        rows = [(cid, t) for cid, t in rows if t is not None]
        if not rows:
            return []
        erased = self._keys.shredded([cid for cid, _ in rows])
        rows = [(cid, t) for cid, t in rows if cid not in erased]
        keys = self._keys.get_many(session, [cid for cid, _ in rows]) if rows else {}
        out: list[tuple[uuid.UUID, str]] = []
        for cid, t in rows:
            if t is None:
                continue
            value = keys[cid].decrypt_text(t, field=field)
            if field is PiiField.EMAIL:
                value = normalise_email(value)
            out.append((cid, value))
        return out

    # -- claims: check, then write, one writer of a person at a time ------------------

    def lock_keys(
        self, contacts: Iterable[Contact], refs: Iterable[ExternalId] = ()
    ) -> list[tuple[int, int]]:
        """The advisory lock keys of these contacts and external ids, sorted, each once."""
        keys = {
            (_LOCK_SPACE + _LOCK_KINDS[field], _int32(self._bidx.index(field, value)))
            for field, value in contacts
        }
        for ref in refs:
            crc = zlib.crc32(f"{ref.source}\x00{ref.external_id}".encode())
            keys.add((_LOCK_SPACE + _LOCK_EXTERNAL_ID, _int32(crc)))
        return sorted(keys)

    def claim(
        self, session: Session, contacts: Iterable[Contact], refs: Iterable[ExternalId] = ()
    ) -> int:
        """Hold, until the transaction ends, every other writer claiming one of these
        contacts or external ids (PostgreSQL: one statement, keys in sorted order; SQLite:
        the unit of work already holds the write lock). Take it before the check. Returns
        how many keys were claimed."""
        keys = self.lock_keys(contacts, refs)
        if keys and session.get_bind().dialect.name == "postgresql":
            session.execute(text(_CLAIM), {"k1": [a for a, _ in keys], "k2": [b for _, b in keys]})
        return len(keys)

    @contextmanager
    def refusal(
        self, session: Session, action: AuditAction, customer_id: uuid.UUID | None = None
    ) -> Iterator[None]:
        """Audit a :class:`DuplicateCustomer` raised inside as ``action`` denied (written
        even though the unit of work rolls back), then let it go on."""
        try:
            yield
        except DuplicateCustomer as refused:
            buffer = buffer_of(session)
            buffer.denials.append(
                buffer.entry(
                    action,
                    customer_id,
                    {refused.field: "duplicate"},
                    Outcome.DENIED,
                    self.refusal_detail(refused.existing_id),
                )
            )
            raise

    @staticmethod
    def refusal_detail(existing: uuid.UUID | None, **more: Any) -> dict[str, Any]:  # noqa: ANN401
        """What a duplicate refusal's audit entry says: the reason and, when the caller
        may read it, the customer on file."""
        detail: dict[str, Any] = {"reason": "duplicate", **more}
        if existing is not None:
            detail["existing"] = str(existing)
        return detail

    def check_free(
        self,
        session: Session,
        contacts: list[Contact],
        *,
        exclude: uuid.UUID | None = None,
    ) -> None:
        """Raise :class:`DuplicateCustomer` when another live customer has one of the
        contacts; it names the field, and the id when the caller may read that customer.
        Call it after :meth:`claim` (with the external ids :meth:`add_external_ids` then
        checks as it adds them), before any row lock: claims first, then rows, in every
        writer, so none waits for the other in the opposite order."""
        if not contacts:
            return
        found = self.owners(session, contacts)
        for contact in contacts:
            others = [cid for cid in found.get(contact, []) if cid != exclude]
            if others:
                raise DuplicateCustomer(contact[0].value, self.shown(session, others[0]))

    def add_external_ids(
        self, session: Session, customer_id: uuid.UUID, refs: Sequence[ExternalId], where: str
    ) -> None:
        """Give the customer these external ids; one another customer has is refused
        (:class:`DuplicateCustomer`, ``externalIds``) and nothing of the write is kept."""
        checked = [check_external_id(ref, f"{where}[{i}]") for i, ref in enumerate(refs)]
        for source, ext in dict.fromkeys(checked):
            owner = owner_of(session, source, ext)
            if owner is not None and owner != customer_id:
                raise DuplicateCustomer("externalIds", self.shown(session, owner))
            if owner is None:
                session.add(
                    CustomerExternalIdRow(source=source, external_id=ext, customer_id=customer_id)
                )

    def shown(self, session: Session, customer_id: uuid.UUID) -> uuid.UUID | None:
        """``customer_id`` when this unit's caller may read that customer, else None: a
        data subject only its own record, and no purpose a customer it may not process."""
        return customer_id if customer_id in self.shown_many(session, [customer_id]) else None

    def shown_many(self, session: Session, ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        """The customers of ``ids`` this unit's caller may read (see :meth:`shown`), in
        one statement per 500 ids."""
        wanted = list(dict.fromkeys(ids))
        actor = access_of(session).actor
        if actor.role == Role.DATA_SUBJECT.value:
            wanted = [cid for cid in wanted if cid == actor.customer_id]
        statuses: list[tuple[uuid.UUID, str]] = []
        for start in range(0, len(wanted), _CHUNK):
            rows = session.execute(
                select(CustomerRow.id, CustomerRow.status).where(
                    CustomerRow.id.in_(wanted[start : start + _CHUNK])
                )
            ).all()
            statuses += [(cid, status) for cid, status in rows]
        refused = self._gate.refused(session, statuses) if statuses else {}
        return {cid for cid, _ in statuses if cid not in refused}

    # -- the name + birth date match key ------------------------------------------

    def match_key(self, first_name: object, last_name: object, birth_date: object) -> int | None:
        """The match key of a full name and birth date, None unless all three are given
        (the birth date as an ISO date or a ``date``)."""
        if not (isinstance(first_name, str) and isinstance(last_name, str)):
            return None
        if not isinstance(birth_date, str | date):
            return None
        try:
            born = parse_birth_date(birth_date).isoformat()
        except InvalidInput:
            return None
        return self._bidx.match_key(normalise_full_name(first_name, last_name), born)

    def refresh_match_key(self, row: CustomerRow, key: DataKey) -> None:
        """Recompute the row's match key from its stored names and birth date."""
        parts = [
            getattr(row, f"{name}_ct")
            for name in (PiiField.FIRST_NAME, PiiField.LAST_NAME, PiiField.BIRTH_DATE)
        ]
        if any(token is None for token in parts):
            row.match_bidx = None
            return
        first, last, born = (
            key.decrypt_text(token, field=name)
            for token, name in zip(
                parts,
                (PiiField.FIRST_NAME, PiiField.LAST_NAME, PiiField.BIRTH_DATE),
                strict=True,
            )
        )
        row.match_bidx = self.match_key(first, last, born)
