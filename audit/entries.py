"""Audit entries: what happened, to whom, by whom, why; never a PII value.

An entry's canonical bytes (sorted-key compact JSON, UTF-8) are what the Merkle
tree hashes and what an export carries, byte for byte, so that anyone can
recompute the tree from an export alone.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

__all__ = ["ENTRY_VERSION", "AuditAction", "AuditEntry", "EntryError", "Outcome"]

ENTRY_VERSION = 1
# Detail values are counts, ids and enum words only; free text never enters the log.
_SAFE_TEXT = re.compile(r"^[A-Za-z0-9_.:/@+|-]{0,128}$")


class EntryError(ValueError):
    """An entry is malformed or would carry something that is not allowed in the log."""


class AuditAction(StrEnum):
    # One entry per request per customer: every resource and field read, and how each
    # resolved (clear, masked, hidden). Entries written before it say pii.read and
    # interactions.read (two per customer); they stay in the log as they were.
    PII_ACCESS = "pii.access"
    PII_READ = "pii.read"  # before pii.access: the customer's fields
    CUSTOMER_LOOKUP = "customer.lookup"
    CUSTOMER_CREATE = "customer.create"
    CUSTOMER_UPDATE = "customer.update"
    CUSTOMER_MERGE = "customer.merge"
    CUSTOMER_EXPORT = "customer.export"
    CUSTOMER_ERASE = "customer.erase"
    INTERACTIONS_RECORD = "interactions.record"
    INTERACTIONS_READ = "interactions.read"  # before pii.access: the timeline
    CONSENT_CHANGE = "consent.change"
    POLICY_CHANGE = "policy.change"
    KEY_ROTATION = "keys.rotate"
    TOKEN_FAILURE = "auth.token_failure"  # noqa: S105 - an action name, not a secret
    ACCESS_DENIED = "access.denied"
    # The trail (or a filtered part of it) handed out in bulk: a JSONL or CSV download,
    # `cvault audit export`, a GraphQL auditLog page. Console searches written before
    # audit.search say audit.export (one per page of the trail read); they stay as they were.
    AUDIT_EXPORT = "audit.export"
    # One page of the console's audit search shown, with its filters (ids, times and
    # enum words; a free-text filter only when an entry shown carries it).
    AUDIT_SEARCH = "audit.search"
    DATA_IMPORT = "data.import"
    RETENTION_RUN = "retention.run"  # expired records deleted (or counted, dry run)
    DSR_CHANGE = "dsr.change"  # a data subject request filed, verified, extended, decided
    LEGAL_HOLD = "legal_hold.change"  # a legal hold placed or lifted
    SEGMENT_CHANGE = "segment.change"  # a segment definition created, updated or deleted
    SEGMENT_READ = "segment.read"  # a segment's definition, size, members or a preview read
    SEGMENT_REFRESH = "segment.refresh"  # memberships recomputed (counts entered and left)
    INSIGHTS_READ = "insights.read"  # a customer's metrics or channel analytics read
    WEBHOOK_CHANGE = "webhook.change"  # a webhook registered or disabled
    WEBHOOK_READ = "webhook.read"  # webhooks listed
    WEBHOOK_DELIVERY = "webhook.delivery"  # one delivery run: counts fanned out, sent, failed
    WEBHOOK_DELIVERED = "webhook.delivered"  # one customer's event received by a webhook
    SIGN_IN = "auth.sign_in"  # a page sign-in: code requested, signed in, failed, signed out
    DOCUMENTS_CHANGE = "documents.change"  # trusted GraphQL documents registered or revoked
    # A listing's totalCount: how many records match, counted without reading any of them.
    CUSTOMERS_COUNT = "customers.count"
    INTERACTIONS_COUNT = "interactions.count"  # one customer's timeline
    AUDIT_COUNT = "audit.count"  # the audit log, or one customer's access history
    DSR_COUNT = "dsr.count"  # data subject requests
    # An access anomaly the detector found: kind, principal, hour, count, threshold.
    SECURITY_ALERT = "security.alert"


class Outcome(StrEnum):
    SUCCESS = "success"
    DENIED = "denied"
    FAILED = "failed"


def _check_detail(detail: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in detail.items():
        if not _SAFE_TEXT.match(key):
            raise EntryError("detail keys must be short identifiers")
        scalar = value is None or isinstance(value, bool | int)
        if scalar or (isinstance(value, str) and _SAFE_TEXT.match(value)):
            out[key] = value
        elif isinstance(value, list | tuple) and all(
            isinstance(v, str) and _SAFE_TEXT.match(v) for v in value
        ):
            out[key] = list(value)
        else:
            raise EntryError(f"detail {key!r} must be a number, a flag or a short identifier")
    return out


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit record. ``fields`` maps field names to how they resolved
    (clear, masked, hidden) or to what happened to them (written, cleared)."""

    action: AuditAction
    outcome: Outcome
    actor: str
    role: str
    purpose: str
    request_id: str
    time: datetime
    customer_id: uuid.UUID | None = None
    fields: Mapping[str, str] = field(default_factory=dict)
    client: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    entry_id: uuid.UUID = field(default_factory=uuid.uuid4)

    def __post_init__(self) -> None:
        if self.time.tzinfo is None:
            raise EntryError("audit time must carry a time zone")
        for name in ("actor", "role", "purpose", "request_id"):
            if not _SAFE_TEXT.match(getattr(self, name)):
                raise EntryError(f"{name} must be a short identifier")
        for key, value in self.fields.items():
            if not _SAFE_TEXT.match(key) or not _SAFE_TEXT.match(value):
                raise EntryError("fields map identifiers to identifiers")
        if self.client is not None and not _SAFE_TEXT.match(self.client):
            raise EntryError("client must be a pseudonymous hash")
        object.__setattr__(self, "detail", _check_detail(self.detail))

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": ENTRY_VERSION,
            "id": str(self.entry_id),
            "time": self.time.astimezone(UTC).isoformat(timespec="microseconds"),
            "actor": self.actor,
            "role": self.role,
            "purpose": self.purpose,
            "action": self.action.value,
            "outcome": self.outcome.value,
            "customer": None if self.customer_id is None else str(self.customer_id),
            "fields": dict(sorted(self.fields.items())),
            "request": self.request_id,
            "client": self.client,
            "detail": dict(sorted(self.detail.items())),
        }

    def canonical(self) -> bytes:
        """The exact bytes the Merkle tree hashes."""
        return canonical_json(self.to_dict())

    @classmethod
    def from_canonical(cls, data: bytes) -> AuditEntry:
        try:
            raw = json.loads(data)
            entry = cls(
                action=AuditAction(raw["action"]),
                outcome=Outcome(raw["outcome"]),
                actor=raw["actor"],
                role=raw["role"],
                purpose=raw["purpose"],
                request_id=raw["request"],
                time=datetime.fromisoformat(raw["time"]),
                customer_id=None if raw["customer"] is None else uuid.UUID(raw["customer"]),
                fields=raw["fields"],
                client=raw["client"],
                detail=raw["detail"],
                entry_id=uuid.UUID(raw["id"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise EntryError("not a canonical audit entry") from exc
        if raw.get("v") != ENTRY_VERSION or entry.canonical() != data:
            raise EntryError("not a canonical audit entry")
        return entry


def canonical_json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")
