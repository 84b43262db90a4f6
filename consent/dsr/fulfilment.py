"""Carrying out a verified data subject request, by type (GDPR Art. 15-21).

Runs in the caller's unit of work, inside the desk's ``in_progress`` and
``completed`` steps:

* access / portability: an :class:`~consent.dsr.export.ExportBundle`, read through the
  domain services as the data subject's own context (so it is what the subject
  may see, and every read is audited);
* erasure: :meth:`vault.privacy.erasure.ErasureService.erase` (a legal hold refuses it and
  the request stays verified) and a signed erasure receipt (ids and counts only) kept
  in the request's result; the desk schedules the purge of interactions;
* rectification: the sealed new values through ``vault.customers.update`` (its audit
  entry names the changed fields);
* restriction: the customer's status becomes ``restricted`` until lifted;
* objection: an objection row; one to ``direct_marketing`` stops every marketing
  purpose (``vault.privacy.processing``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from audit.entries import AuditAction
from consent.acting import acting_as, desk_context, owner_context
from consent.dsr.details import open_details
from consent.dsr.export import ExportBundle, Exporter
from consent.dsr.history import RequestHistory
from consent.dsr.requests import RequestStateError
from consent.ledger import ConsentLedger
from consent.receipts import ERASURE_RECEIPT_VERSION, sign_receipt
from vault.authorization.context import buffer_of
from vault.customers import CustomerPatch
from vault.errors import CustomerNotFound
from vault.runtime import Vault
from vault.storage.models import CustomerRow, DsrRequestRow, ObjectionRow
from vault.types import CustomerStatus, DsrType

__all__ = ["ERASURE_RECEIPT_VERSION", "LIVE", "Fulfilled", "Fulfilment", "customer_for_update"]

# The statuses of a customer whose requests are carried out (erasure excepted).
LIVE = (CustomerStatus.ACTIVE.value, CustomerStatus.RESTRICTED.value)
_RESTRICTED = CustomerStatus.RESTRICTED.value
_EFFECT = {
    DsrType.ACCESS: "exported",
    DsrType.PORTABILITY: "exported",
    DsrType.ERASURE: "erased",
    DsrType.RECTIFICATION: "rectified",
    DsrType.RESTRICTION: "restricted",
    DsrType.OBJECTION: "objection",
}


@dataclass(frozen=True, slots=True)
class Fulfilled:
    """What carrying out a request did: its ``effect`` word, the ``result`` kept with the
    request (counts, field names, scope, the receipt; never a PII value), and the
    bundle or the signed receipt handed to the caller."""

    effect: str
    result: dict[str, Any] = field(repr=False)
    bundle: ExportBundle | None = field(default=None, repr=False)
    receipt: dict[str, Any] | None = field(default=None, repr=False)


class Fulfilment:
    """Carries out verified requests; the desk checks the request and records the steps."""

    def __init__(self, vault: Vault, ledger: ConsentLedger, history: RequestHistory) -> None:
        self._vault = vault
        self._history = history
        self._exporter = Exporter(vault, ledger)

    def __repr__(self) -> str:
        return "Fulfilment()"

    def carry_out(self, session: Session, row: DsrRequestRow) -> Fulfilled:
        """Do what the request asks, by its type."""
        kind = DsrType(row.type)
        bundle = receipt = None
        if kind in (DsrType.ACCESS, DsrType.PORTABILITY):
            bundle = self.export(session, row, kind)
            result: dict[str, Any] = {"counts": bundle.counts()}
        elif kind is DsrType.ERASURE:
            receipt = self._erase(session, row)
            result = {"receipt": receipt}
        elif kind is DsrType.RECTIFICATION:
            result = self._rectify(session, row)
        elif kind is DsrType.RESTRICTION:
            result = self._restrict(session, row)
        else:
            result = self._object(session, row)
        return Fulfilled(effect=_EFFECT[kind], result=result, bundle=bundle, receipt=receipt)

    def export(self, session: Session, row: DsrRequestRow, kind: DsrType) -> ExportBundle:
        """The access or portability bundle, read as the data subject's own context."""
        owner = owner_context(session, row.id, row.customer_id)
        with acting_as(session, owner, audit=self._vault.audit, clock=self._vault.clock):
            requests = self._history.views_of(session, row.customer_id)
            return self._exporter.build(
                session, row.customer_id, request_id=row.id, kind=kind, requests=requests
            )

    def _erase(self, session: Session, row: DsrRequestRow) -> dict[str, Any]:
        erased = self._vault.erasure.erase(session, row.customer_id, request_id=row.id)
        now = self._vault.clock()
        body = {
            "version": ERASURE_RECEIPT_VERSION,
            "receiptType": "erasure",
            "jurisdiction": self._vault.settings.receipt_jurisdiction,
            "language": self._vault.settings.receipt_language,
            "legalBasis": "GDPR Art. 17",
            "piiControllers": [{"piiController": self._vault.settings.controller}],
            "piiPrincipalId": str(erased.customer_id),
            "requestId": str(row.id),
            "requestReceivedAt": _iso(row.received_at),
            "requestVerifiedAt": _iso(row.verified_at),
            "erasedAt": _iso(erased.erased_at),
            "issuedAt": _iso(now),
            "method": "crypto-shredding",
            "erased": {
                "dataKey": "destroyed",
                "piiFields": list(erased.pii_fields),
                "externalIds": erased.external_ids_deleted,
                "consentStates": erased.consent_states_deleted,
                "objections": erased.objections_deleted,
            },
            "interactionsPendingPurge": erased.interactions_pending,
            "retained": ["tombstone", "consent_events", "audit_trail", "data_requests"],
        }
        return sign_receipt(self._vault.audit.signer, body)

    def _rectify(self, session: Session, row: DsrRequestRow) -> dict[str, Any]:
        if row.details_ct is None:
            raise RequestStateError(row.id, row.status, "its details are gone")
        key = self._vault.keys.get(session, row.customer_id)
        changes = open_details(key, row.id, row.details_ct)
        with acting_as(
            session, desk_context(session, row.id), audit=self._vault.audit, clock=self._vault.clock
        ):
            self._vault.customers.update(session, row.customer_id, CustomerPatch(**changes))
        return {"fields": sorted(changes)}

    def _restrict(self, session: Session, row: DsrRequestRow) -> dict[str, Any]:
        customer = customer_for_update(session, row.customer_id)
        already = customer.status == _RESTRICTED
        if not already:
            customer.status = _RESTRICTED
            customer.updated_at = self._vault.clock()
            buffer_of(session).add(
                AuditAction.CUSTOMER_UPDATE, customer_id=customer.id, fields={"status": "written"},
                detail={"status": _RESTRICTED, "request": str(row.id)},
            )  # fmt: skip
        return {"status": _RESTRICTED, "already": already}

    def _object(self, session: Session, row: DsrRequestRow) -> dict[str, Any]:
        scope = str((row.result or {}).get("scope", ""))
        if not scope:
            raise RequestStateError(row.id, row.status, "it names no objection scope")
        held = session.get(ObjectionRow, (row.customer_id, scope))
        if held is None:
            session.add(
                ObjectionRow(
                    customer_id=row.customer_id,
                    scope=scope,
                    objected_at=self._vault.clock(),
                    request_id=row.id,
                )
            )
        return {"scope": scope, "already": held is not None}


def customer_for_update(session: Session, customer_id: uuid.UUID) -> CustomerRow:
    """The live customer's row, locked for this unit of work."""
    customer = session.scalar(
        select(CustomerRow).where(CustomerRow.id == customer_id).with_for_update()
    )
    if customer is None or customer.status not in LIVE:
        raise CustomerNotFound(customer_id)
    return customer


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
