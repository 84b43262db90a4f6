"""The access and portability bundle (GDPR Art. 15 and 20): what the vault holds on one
customer, machine-readable.

:class:`Exporter` reads through the domain services (policy checks, audit
entries) in whatever context the session carries; the DSR desk runs it as the
data subject's own context, so the profile is in clear (the subject is entitled
to it) and every read is written to the trail. The bundle holds the profile with
its external ids, every interaction with its payload, the consent history with
its signed receipts, objections, the customer's data subject requests with
their history, every segment membership (each stay, with the segment's name,
when the customer entered and left), the access history from the audit log
(who saw the data, when and why) and the recipients it was sent to (GDPR Art.
15(1)(c)): every webhook that received one of the customer's segment events, with its
purpose, the host of its URL, how many events and when the first and last arrived
(from the access history's ``webhook.delivered`` entries, which carry the recipient
on their row too).

The policy grants a data subject no read of segment definitions; the membership
section is read under the subject's right of access (its ``data_requests``
grant, its own record only) and audited as a read of ``segments``.

:meth:`ExportBundle.to_json` is the whole bundle; :meth:`ExportBundle.to_zip`
adds one CSV per table beside it. A bundle holds PII in clear: its repr shows
ids only, and it is never stored.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.dsr.requests import DsrView
from consent.ledger import ConsentLedger, ConsentRecord
from policies import Resource
from vault.audit_trail.queries import AuditRecord, Recipient
from vault.authorization.context import buffer_of
from vault.customers import Customer
from vault.interactions import Interaction
from vault.pagination import MAX_PAGE, every_item
from vault.runtime import Vault
from vault.storage.models import ObjectionRow, SegmentMembershipRow, SegmentRow
from vault.types import DsrType

__all__ = ["BUNDLE_FORMAT", "ExportBundle", "Exporter"]

BUNDLE_FORMAT = "customer-vault/export/v1"

_TABLES: dict[str, tuple[str, ...]] = {
    "profile.csv": ("field", "value"),
    "interactions.csv": (
        "id", "occurred_at", "channel", "type", "amount", "currency", "external_id",
        "recorded_at", "payload",
    ),
    "consents.csv": (
        "id", "purpose", "state", "occurred_at", "source_channel", "notice_version", "method",
        "expires_at", "actor", "receipt",
    ),
    "objections.csv": ("scope", "objected_at", "request_id"),
    "requests.csv": (
        "id", "type", "status", "received_at", "due_at", "extended_at", "extension_reason",
        "verified_at", "completed_at", "rejection_reason", "requested_by", "history",
    ),
    "segments.csv": ("segment_id", "segment", "entered_at", "left_at", "segment_deleted"),
    "access_history.csv": (
        "time", "actor", "role", "purpose", "action", "outcome", "fields", "detail",
        "request_id", "entry_id", "recipient",
    ),
    "recipients.csv": ("webhook_id", "purpose", "host", "events", "first_at", "last_at"),
}  # fmt: skip
_SECTIONS = {
    "profile.csv": "profile",
    "interactions.csv": "interactions",
    "consents.csv": "consents",
    "objections.csv": "objections",
    "requests.csv": "requests",
    "segments.csv": "segments",
    "access_history.csv": "access_history",
    "recipients.csv": "recipients",
}


@dataclass(frozen=True, slots=True)
class ExportBundle:
    """Everything stored for one customer, as JSON-ready values."""

    customer_id: uuid.UUID
    request_id: uuid.UUID
    kind: DsrType
    generated_at: datetime
    controller: str = field(repr=False)
    profile: dict[str, Any] = field(repr=False)
    interactions: list[dict[str, Any]] = field(repr=False)
    consents: list[dict[str, Any]] = field(repr=False)
    objections: list[dict[str, Any]] = field(repr=False)
    requests: list[dict[str, Any]] = field(repr=False)
    segments: list[dict[str, Any]] = field(repr=False)
    access_history: list[dict[str, Any]] = field(repr=False)
    recipients: list[dict[str, Any]] = field(repr=False)

    def counts(self) -> dict[str, int]:
        """How many items each section holds (what the request's result records)."""
        return {
            "interactions": len(self.interactions),
            "consents": len(self.consents),
            "objections": len(self.objections),
            "requests": len(self.requests),
            "segments": len(self.segments),
            "access_history": len(self.access_history),
            "recipients": len(self.recipients),
        }

    def document(self) -> dict[str, Any]:
        return {
            "format": BUNDLE_FORMAT,
            "kind": self.kind.value,
            "customer_id": str(self.customer_id),
            "request_id": str(self.request_id),
            "generated_at": self.generated_at.isoformat(),
            "controller": self.controller,
            "profile": self.profile,
            "interactions": self.interactions,
            "consents": self.consents,
            "objections": self.objections,
            "requests": self.requests,
            "segments": self.segments,
            "access_history": self.access_history,
            "recipients": self.recipients,
            "counts": self.counts(),
        }

    def to_json(self) -> bytes:
        """The whole bundle as UTF-8 JSON (names in every script kept as they are)."""
        return json.dumps(self.document(), ensure_ascii=False, indent=2).encode("utf-8")

    def to_zip(self) -> bytes:
        """``bundle.json`` and one CSV per table, in a deflated zip."""
        stamp = self.generated_at
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(_entry("bundle.json", stamp), self.to_json())
            for name, columns in _TABLES.items():
                archive.writestr(_entry(name, stamp), _csv(columns, self._rows(name)))
        return buffer.getvalue()

    def _rows(self, name: str) -> Iterator[dict[str, Any]]:
        if name == "profile.csv":
            for key, value in self.profile.items():
                yield {"field": key, "value": value}
            return
        rows: list[dict[str, Any]] = getattr(self, _SECTIONS[name])
        yield from rows


class Exporter:
    """Builds a bundle through the vault's services, under the session's context."""

    def __init__(self, vault: Vault, ledger: ConsentLedger) -> None:
        self._vault = vault
        self._ledger = ledger

    def __repr__(self) -> str:
        return "Exporter()"

    def build(
        self,
        session: Session,
        customer_id: uuid.UUID,
        *,
        request_id: uuid.UUID,
        kind: DsrType,
        requests: Sequence[DsrView],
    ) -> ExportBundle:
        vault = self._vault
        customer = vault.customers.get(session, customer_id)
        history = list(self._access_history(session, customer.id))
        return ExportBundle(
            customer_id=customer.id,
            request_id=request_id,
            kind=kind,
            generated_at=vault.clock(),
            controller=vault.settings.controller,
            profile=_profile(customer),
            interactions=[_interaction(i) for i in self._interactions(session, customer.id)],
            consents=[_consent(c) for c in self._ledger.history(session, customer.id)],
            objections=self._objections(session, customer.id),
            requests=[_request(r) for r in requests],
            segments=self._segments(session, customer.id),
            access_history=[_access(a) for a in history],
            recipients=_recipients(history),
        )

    def _interactions(self, session: Session, customer_id: uuid.UUID) -> Iterator[Interaction]:
        timeline = self._vault.interactions.timeline
        return every_item(lambda after: timeline(session, customer_id, first=MAX_PAGE, after=after))

    def _access_history(self, session: Session, customer_id: uuid.UUID) -> Iterator[AuditRecord]:
        history = self._vault.trail.access_history
        return every_item(lambda after: history(session, customer_id, first=MAX_PAGE, after=after))

    def _segments(self, session: Session, customer_id: uuid.UUID) -> list[dict[str, Any]]:
        """Every stay of the customer in a segment, deleted segments included."""
        authz = self._vault.authz
        authz.check_reads(session, Resource.DATA_REQUESTS.value, customer_id)
        authz.check_owner(session, customer_id)
        m = SegmentMembershipRow
        rows = session.execute(
            select(m.segment_id, SegmentRow.name, m.entered_at, m.left_at, SegmentRow.deleted_at)
            .join(SegmentRow, SegmentRow.id == m.segment_id)
            .where(m.customer_id == customer_id)
            .order_by(m.entered_at, m.id)
        ).all()
        buffer_of(session).read(customer_id, {Resource.SEGMENTS.value: "clear"})
        return [
            {
                "segment_id": str(segment_id),
                "segment": name,
                "entered_at": _time(entered),
                "left_at": _time(left),
                "segment_deleted": deleted is not None,
            }
            for segment_id, name, entered, left, deleted in rows
        ]

    def _objections(self, session: Session, customer_id: uuid.UUID) -> list[dict[str, Any]]:
        authz = self._vault.authz
        authz.check_reads(session, Resource.CONSENT.value, customer_id)
        authz.check_owner(session, customer_id)
        rows = session.scalars(
            select(ObjectionRow)
            .where(ObjectionRow.customer_id == customer_id)
            .order_by(ObjectionRow.objected_at, ObjectionRow.scope)
        ).all()
        buffer_of(session).read(customer_id, {Resource.CONSENT.value: "clear"})
        return [
            {
                "scope": r.scope,
                "objected_at": _time(r.objected_at),
                "request_id": None if r.request_id is None else str(r.request_id),
            }
            for r in rows
        ]


# -- JSON-ready rows ------------------------------------------------------------------


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _profile(c: Customer) -> dict[str, Any]:
    return {
        "id": str(c.id),
        "status": c.status.value,
        "email": c.email,
        "phone": c.phone,
        "first_name": c.first_name,
        "last_name": c.last_name,
        "birth_date": c.birth_date,
        "address": c.address,
        "postal_address": None if c.postal_address is None else c.postal_address.parts(),
        "locale": c.locale,
        "tier": c.tier,
        "tags": list(c.tags),
        "attributes": dict(c.attributes),
        "external_ids": [
            {"source": e.source, "external_id": e.external_id} for e in c.external_ids
        ],
        "created_at": _time(c.created_at),
        "updated_at": _time(c.updated_at),
    }


def _interaction(i: Interaction) -> dict[str, Any]:
    return {
        "id": str(i.id),
        "occurred_at": _time(i.occurred_at),
        "channel": i.channel.value,
        "type": i.type.value,
        "amount": None if i.amount is None else _decimal(i.amount),
        "currency": i.currency,
        "external_id": i.external_id,
        "recorded_at": _time(i.recorded_at),
        "payload": i.payload,
    }


def _decimal(value: Decimal) -> str:
    return format(value, "f")


def _consent(c: ConsentRecord) -> dict[str, Any]:
    return {
        "id": str(c.id),
        "purpose": c.purpose.value,
        "state": c.state.value,
        "occurred_at": _time(c.occurred_at),
        "source_channel": c.source_channel.value,
        "notice_version": c.notice_version,
        "method": c.method.value,
        "expires_at": _time(c.expires_at),
        "actor": c.actor,
        "receipt": c.receipt,
    }


def _request(r: DsrView) -> dict[str, Any]:
    return {
        "id": str(r.id),
        "type": r.type.value,
        "status": r.status.value,
        "received_at": _time(r.received_at),
        "due_at": _time(r.due_at),
        "extended_at": _time(r.extended_at),
        "extension_reason": r.extension_reason,
        "verified_at": _time(r.verified_at),
        "completed_at": _time(r.completed_at),
        "rejection_reason": r.rejection_reason,
        "requested_by": r.requested_by,
        "history": [
            {"at": _time(e.at), "status": e.status.value, "actor": e.actor, "note": e.note}
            for e in r.history
        ],
    }


def _access(a: AuditRecord) -> dict[str, Any]:
    return {
        "time": _time(a.time),
        "actor": a.actor,
        "role": a.role,
        "purpose": a.purpose,
        "action": a.action,
        "outcome": a.outcome,
        "fields": dict(a.fields),
        "detail": dict(a.detail),
        "request_id": a.request_id,
        "entry_id": str(a.entry_id),
        "recipient": None if a.recipient is None else _recipient(a.recipient),
    }


def _recipient(r: Recipient) -> dict[str, Any]:
    return {"webhook_id": str(r.webhook_id), "purpose": r.purpose, "host": r.host}


def _recipients(history: Sequence[AuditRecord]) -> list[dict[str, Any]]:
    """One row per recipient: how many of the customer's events it received, first and
    last (the history is newest first), oldest recipient first."""
    found: dict[Recipient, list[datetime]] = {}
    for a in history:
        if a.recipient is not None:
            found.setdefault(a.recipient, []).append(a.time)
    rows = [
        {**_recipient(r), "events": len(t), "first_at": _time(min(t)), "last_at": _time(max(t))}
        for r, t in found.items()
    ]
    return sorted(rows, key=lambda row: (row["first_at"], row["webhook_id"]))


# -- files ----------------------------------------------------------------------------


def _entry(name: str, when: datetime) -> zipfile.ZipInfo:
    stamp = (when.year, when.month, when.day, when.hour, when.minute, when.second)
    info = zipfile.ZipInfo(name, date_time=stamp)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o600 << 16
    return info


def _cell(value: Any) -> str:  # noqa: ANN401 - any JSON-ready value
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _csv(columns: tuple[str, ...], rows: Iterator[dict[str, Any]]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return text.getvalue().encode("utf-8")
