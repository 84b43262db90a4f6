"""Whether the unit's purpose may process a customer: consent, restriction, objection.

Decided inside the domain layer, from the database on every call, so that a
withdrawal or an objection applies to the very next request and no edge can
skip it. The rules, from the purpose registry (``policies/purposes.toml``):

* a purpose whose legal basis is consent reaches only customers with a current,
  unexpired grant for it;
* a restricted customer (Art. 18) is processed only for purposes marked
  ``during_restriction`` (compliance, the data subject's own requests);
* an objection blocks the purpose it names, and an objection to direct
  marketing blocks every ``direct_marketing`` purpose at once (Art. 21).

Listings and lookups take :meth:`ProcessingGate.clause` into their SQL, so a
refused customer is simply not there; a request for one named customer raises.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, or_, select, true
from sqlalchemy.orm import InstrumentedAttribute, Session

from policies.purposes import DIRECT_MARKETING, PurposeInfo, purpose_info
from vault.authorization.authorizer import Authorizer
from vault.authorization.context import access_of
from vault.errors import (
    ConsentRequired,
    ObjectionInForce,
    ProcessingRefused,
    ProcessingRestricted,
)
from vault.storage.models import ConsentStateRow, CustomerRow, ObjectionRow
from vault.storage.sql import id_in
from vault.types import ConsentState, CustomerStatus

__all__ = ["ProcessingGate"]

_RESTRICTED = CustomerStatus.RESTRICTED.value


class ProcessingGate:
    def __init__(self, authz: Authorizer, clock: Callable[[], datetime]) -> None:
        self._authz = authz
        self._clock = clock

    def __repr__(self) -> str:
        return "ProcessingGate()"

    @staticmethod
    def purpose(session: Session) -> PurposeInfo:
        return purpose_info(access_of(session).purpose)

    @staticmethod
    def _scopes(info: PurposeInfo) -> list[str]:
        scopes = [info.name.value] if info.objectable else []
        if info.direct_marketing:
            scopes.append(DIRECT_MARKETING)
        return scopes

    def _consented(
        self, info: PurposeInfo, customer: InstrumentedAttribute[uuid.UUID]
    ) -> ColumnElement[bool]:
        s = ConsentStateRow
        return exists().where(
            s.customer_id == customer,
            s.purpose == info.name.value,
            s.state == ConsentState.GRANTED.value,
            or_(s.expires_at.is_(None), s.expires_at > self._clock()),
        )

    @staticmethod
    def _objected(
        scopes: list[str], customer: InstrumentedAttribute[uuid.UUID]
    ) -> ColumnElement[bool]:
        return exists().where(ObjectionRow.customer_id == customer, ObjectionRow.scope.in_(scopes))

    def clause(self, session: Session, purpose: str | None = None) -> ColumnElement[bool]:
        """A condition on ``customers`` that keeps only the customers this unit's purpose
        (or ``purpose``, for work done on behalf of several: webhook deliveries) may
        process (``true`` when the purpose needs no check)."""
        info = self.purpose(session) if purpose is None else purpose_info(purpose)
        customer: InstrumentedAttribute[uuid.UUID] = CustomerRow.id
        parts: list[ColumnElement[bool]] = []
        if not info.during_restriction:
            parts.append(CustomerRow.status != _RESTRICTED)
        if info.needs_consent:
            parts.append(self._consented(info, customer))
        scopes = self._scopes(info)
        if scopes:
            parts.append(~self._objected(scopes, customer))
        return and_(*parts) if parts else true()

    def check(self, session: Session, statuses: Iterable[tuple[uuid.UUID, str]]) -> None:
        """Raise :class:`ProcessingRefused` (and audit the refusal) for the first customer of
        ``(id, status)`` pairs that this unit's purpose may not process."""
        pairs = list(statuses)
        refused = self.refused(session, pairs)
        for cid, _status in pairs:
            kind = refused.get(cid)
            if kind is not None:
                error = kind(cid, access_of(session).purpose, _DETAIL[kind])
                raise self._authz.denied(session, error, cid)

    def refused(
        self, session: Session, statuses: Iterable[tuple[uuid.UUID, str]]
    ) -> dict[uuid.UUID, type[ProcessingRefused]]:
        """Each customer of ``(id, status)`` pairs the purpose may not process, and why."""
        info = self.purpose(session)
        pairs = list(statuses)
        out: dict[uuid.UUID, type[ProcessingRefused]] = {}
        if not info.during_restriction:
            out.update({cid: ProcessingRestricted for cid, st in pairs if st == _RESTRICTED})
        scopes = self._scopes(info)
        if not scopes and not info.needs_consent:
            return out
        rest = [cid for cid, _st in pairs if cid not in out]
        if not rest:
            return out
        dialect = session.get_bind().dialect.name
        if scopes:
            objected = session.scalars(
                select(ObjectionRow.customer_id)
                .where(id_in(ObjectionRow.customer_id, rest, dialect))
                .where(ObjectionRow.scope.in_(scopes))
            )
            out.update(dict.fromkeys(objected, ObjectionInForce))
        if info.needs_consent:
            consented = set(
                session.scalars(
                    select(CustomerRow.id)
                    .where(id_in(CustomerRow.id, rest, dialect))
                    .where(self._consented(info, CustomerRow.id))
                )
            )
            out.update(
                {cid: ConsentRequired for cid in rest if cid not in consented and cid not in out}
            )
        return out


_DETAIL: dict[type[ProcessingRefused], str] = {
    ConsentRequired: "no current consent to this purpose",
    ProcessingRestricted: "processing is restricted at the customer's request",
    ObjectionInForce: "the customer objected to this processing",
}
