"""Duplicate candidates: pairs of live customers that may be one person, each to be
merged (``CustomerService.merge``) or left alone by someone who looked.

A pair shares an email address, a phone number, or a full name and birth date. The
database finds the candidates by blind index (``email_bidx``, ``phone_bidx``,
``match_bidx``); every candidate is decrypted and compared in normal form inside the
vault, since blind indexes are short on purpose and a shared one proves nothing.
Merged and erased records are nobody's duplicate. Which record a pair keeps is a
proposal: the older one.

``reindex`` computes the name + birth date match key of records written before it
existed (migration 0017), without moving their version: it is derived, not a change.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import ColumnElement, bindparam, func, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from audit.entries import AuditAction
from vault.authorization.authorizer import Authorizer
from vault.authorization.context import buffer_of
from vault.customers.identity import Identities
from vault.customers.models import READABLE
from vault.customers.normalize import normalise_email, normalise_full_name
from vault.keys import DataKeys
from vault.logs import get_logger
from vault.privacy.processing import ProcessingGate
from vault.storage.models import CustomerRow
from vault.types import PiiField

__all__ = ["CandidatePair", "DuplicateReason", "Duplicates"]

log = get_logger("vault.customers.duplicates")
_CHUNK: Final = 500
_NAME_FIELDS: Final = (PiiField.FIRST_NAME, PiiField.LAST_NAME, PiiField.BIRTH_DATE)


class DuplicateReason(StrEnum):
    """Why two customers may be one person."""

    EMAIL = "email"
    PHONE = "phone"
    NAME_AND_BIRTH_DATE = "name_and_birth_date"


@dataclass(frozen=True, slots=True)
class CandidatePair:
    """Two live customers that may be one person: ``keep_id`` the older record (the one a
    merge would keep), ``duplicate_id`` the newer; ``reasons`` what they share."""

    keep_id: uuid.UUID
    duplicate_id: uuid.UUID
    reasons: tuple[DuplicateReason, ...]


_SOURCES: Final[tuple[tuple[DuplicateReason, InstrumentedAttribute[int | None]], ...]] = (
    (DuplicateReason.EMAIL, CustomerRow.email_bidx),
    (DuplicateReason.PHONE, CustomerRow.phone_bidx),
    (DuplicateReason.NAME_AND_BIRTH_DATE, CustomerRow.match_bidx),
)


class Duplicates:
    """Finds duplicate candidates and backfills the match key."""

    def __init__(
        self, keys: DataKeys, authz: Authorizer, gate: ProcessingGate, identities: Identities
    ) -> None:
        self._keys = keys
        self._authz = authz
        self._gate = gate
        self._identities = identities

    def __repr__(self) -> str:
        return "Duplicates()"

    def candidates(self, session: Session, *, limit: int = 100) -> list[CandidatePair]:
        """Up to ``limit`` candidate pairs among the customers the caller may list and
        process, oldest keep first. Audited as one lookup (how many pairs, no value)."""
        self._authz.check_listing(session)
        self._authz.reads(session)
        allowed = self._gate.clause(session)
        found: dict[tuple[uuid.UUID, uuid.UUID], set[DuplicateReason]] = {}
        created: dict[uuid.UUID, datetime] = {}
        for reason, column in _SOURCES:
            for keep, dup in self._pairs(
                session, reason, column, allowed, created=created, limit=limit
            ):
                found.setdefault((keep, dup), set()).add(reason)
        order = sorted(found, key=lambda p: (created[p[0]], p[0], created[p[1]], p[1]))[:limit]
        pairs = [
            CandidatePair(a, b, tuple(r for r in DuplicateReason if r in found[(a, b)]))
            for a, b in order
        ]
        buffer_of(session).add(
            AuditAction.CUSTOMER_LOOKUP,
            fields={r.value: "searched" for r in DuplicateReason},
            detail={"by": "duplicates", "matches": len(pairs)},
        )
        return pairs

    def _pairs(
        self,
        session: Session,
        reason: DuplicateReason,
        column: InstrumentedAttribute[int | None],
        allowed: ColumnElement[bool],
        *,
        created: dict[uuid.UUID, datetime],
        limit: int,
    ) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """The pairs sharing ``reason``'s value in clear: shared blind indexes first
        (in SQL), then each candidate's value decrypted and compared."""
        live = CustomerRow.status.in_(READABLE)
        buckets = list(
            session.scalars(
                select(column)
                .where(column.is_not(None), live, allowed)
                .group_by(column)
                .having(func.count() > 1)
                .order_by(column)
            )
        )
        out: list[tuple[uuid.UUID, uuid.UUID]] = []
        for start in range(0, len(buckets), _CHUNK):
            rows = session.execute(
                select(CustomerRow.id, CustomerRow.created_at, column, *_tokens(reason))
                .where(column.in_(buckets[start : start + _CHUNK]), live, allowed)
                .order_by(CustomerRow.created_at, CustomerRow.id)
            ).all()
            groups: dict[tuple[int, str], list[uuid.UUID]] = {}
            for row, value in self._values(session, reason, rows):
                created[row.id] = row.created_at
                groups.setdefault((row[2], value), []).append(row.id)
            for ids in groups.values():
                out.extend((ids[0], other) for other in ids[1:])
            if len(out) >= limit:
                break
        return out

    def _values(
        self, session: Session, reason: DuplicateReason, rows: Sequence[Any]
    ) -> list[tuple[Any, str]]:
        """Each row with its value in normal form (rows whose key was shredded left out)."""
        if not rows:
            return []
        erased = self._keys.shredded([r.id for r in rows])
        rows = [r for r in rows if r.id not in erased]
        keys = self._keys.get_many(session, [r.id for r in rows]) if rows else {}
        out: list[tuple[Any, str]] = []
        for row in rows:
            key = keys[row.id]
            if reason is DuplicateReason.EMAIL:
                value = normalise_email(key.decrypt_text(row[3], field=PiiField.EMAIL))
            elif reason is DuplicateReason.PHONE:
                value = key.decrypt_text(row[3], field=PiiField.PHONE)
            else:
                first, last, born = (
                    key.decrypt_text(token, field=name)
                    for token, name in zip(row[3:6], _NAME_FIELDS, strict=True)
                )
                value = f"{normalise_full_name(first, last)}\x00{born}"
            out.append((row, value))
        return out

    def reindex(self, session: Session, *, batch: int = 500) -> int:
        """Compute the match key of every live record that has a full name and birth date
        but no key yet (written before migration 0017). Returns how many got one."""
        self._authz.check_writes(session, [n.value for n in _NAME_FIELDS])
        done = 0
        after: uuid.UUID | None = None
        while True:
            stmt = (
                select(CustomerRow.id, *_tokens(DuplicateReason.NAME_AND_BIRTH_DATE))
                .where(CustomerRow.match_bidx.is_(None), CustomerRow.status.in_(READABLE))
                .where(*(getattr(CustomerRow, f"{n}_ct").is_not(None) for n in _NAME_FIELDS))
                .order_by(CustomerRow.id)
                .limit(batch)
            )
            if after is not None:
                stmt = stmt.where(CustomerRow.id > after)
            rows = session.execute(stmt).all()
            if not rows:
                break
            after = rows[-1].id
            params = []
            erased = self._keys.shredded([r.id for r in rows])
            live = [r for r in rows if r.id not in erased]
            keys = self._keys.get_many(session, [r.id for r in live]) if live else {}
            for row in live:
                first, last, born = (
                    keys[row.id].decrypt_text(token, field=name)
                    for token, name in zip(row[1:4], _NAME_FIELDS, strict=True)
                    if token is not None
                )
                match = self._identities.match_key(first, last, born)
                if match is not None:
                    params.append({"row_id": row.id, "match": match})
            if params:
                table = CustomerRow.__table__
                session.connection().execute(
                    update(table)  # type: ignore[arg-type]
                    .where(table.c.id == bindparam("row_id"))
                    .values(match_bidx=bindparam("match")),
                    params,
                )
            done += len(params)
        log.info("customers.reindexed", count=done)
        return done


def _tokens(reason: DuplicateReason) -> tuple[InstrumentedAttribute[bytes | None], ...]:
    """The encrypted columns a reason compares."""
    if reason is DuplicateReason.EMAIL:
        return (CustomerRow.email_ct,)
    if reason is DuplicateReason.PHONE:
        return (CustomerRow.phone_ct,)
    return (CustomerRow.first_name_ct, CustomerRow.last_name_ct, CustomerRow.birth_date_ct)
