"""The consent ledger: append-only consent events, the current state they leave, receipts.

Every change (granted, withdrawn, denied) is one row in ``consent_events`` that
the database refuses to change or delete, and one upsert of ``consent_state``
(customer x purpose), in the caller's unit of work together with its audit
entry. Withdrawing is the same single call as granting (Art. 7(3)). Each change
yields a signed consent receipt (Kantara Consent Receipt v1.1 fields, see
:mod:`consent.receipts`). Evidence (user agent, client address) is kept as keyed
pseudonyms, never the values.

Enforcement of consent lives below, in :mod:`vault.privacy.processing`, so that every
read path applies it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from audit.checkpoint import Signer
from audit.entries import AuditAction
from consent.receipts import CONSENT_RECEIPT_VERSION, sign_receipt
from policies.purposes import Purpose, PurposeInfo, RegistryError, purpose_info, registry
from vault.authorization.authorizer import Authorizer
from vault.authorization.context import access_of, buffer_of
from vault.crypto import BlindIndexer
from vault.errors import CustomerNotFound, InvalidInput, VaultError
from vault.storage.models import ConsentEventRow, ConsentStateRow, CustomerRow
from vault.text import check_text, check_word
from vault.types import ConsentChannel, ConsentMethod, ConsentState, CustomerStatus

__all__ = ["ConsentChange", "ConsentLedger", "ConsentRecord", "ConsentStatus", "ReceiptNotFound"]

RECEIPT_VERSION = CONSENT_RECEIPT_VERSION
_EVIDENCE_CHARS = 2000
_LIVE = (CustomerStatus.ACTIVE.value, CustomerStatus.RESTRICTED.value)
_EXPLICIT = {ConsentMethod.FORM, ConsentMethod.CHECKBOX, ConsentMethod.EMAIL_LINK}


class ReceiptNotFound(VaultError):
    code = "NOT_FOUND"

    def __init__(self, event_id: uuid.UUID) -> None:
        super().__init__(f"consent receipt {event_id} not found")


@dataclass(frozen=True, slots=True)
class ConsentChange:
    """One change a customer makes: grant, withdraw or deny a purpose."""

    purpose: str
    state: str
    source_channel: str = ConsentChannel.API.value
    # None: the purpose's current notice version from the registry (purposes.toml).
    notice_version: str | None = None
    method: str = ConsentMethod.FORM.value
    user_agent: str | None = field(default=None, repr=False)
    client_address: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """A stored consent event and its signed receipt."""

    id: uuid.UUID
    customer_id: uuid.UUID
    purpose: Purpose
    state: ConsentState
    occurred_at: datetime
    source_channel: ConsentChannel
    notice_version: str
    method: ConsentMethod
    expires_at: datetime | None
    actor: str
    receipt: dict[str, Any] = field(repr=False)


@dataclass(frozen=True, slots=True)
class ConsentStatus:
    """Where one consent-based purpose stands for one customer."""

    purpose: Purpose
    state: ConsentState | None  # None: never asked
    changed_at: datetime | None
    expires_at: datetime | None
    effective: bool  # granted and not expired: the purpose may process the customer


class ConsentLedger:
    def __init__(
        self,
        authz: Authorizer,
        indexer: BlindIndexer,
        signer: Signer,
        *,
        clock: Callable[[], datetime],
        controller: str,
        policy_url: str = "",
        language: str = "en",
        jurisdiction: str = "EU",
    ) -> None:
        self._authz = authz
        self._indexer = indexer
        self._signer = signer
        self._clock = clock
        self._controller = controller
        self._policy_url = policy_url
        self._language = language
        self._jurisdiction = jurisdiction

    def __repr__(self) -> str:
        return "ConsentLedger()"

    # -- changes ----------------------------------------------------------

    def record(
        self, session: Session, customer_id: uuid.UUID, change: ConsentChange
    ) -> ConsentRecord:
        """Append a consent event, update the current state, sign a receipt; audited."""
        self._authz.check_writes(session, ["consent"], customer_id)
        self._authz.check_owner(session, customer_id)
        info = _consent_purpose(change.purpose)
        state = check_word(ConsentState, change.state, field="state")
        channel = check_word(ConsentChannel, change.source_channel, field="sourceChannel")
        method = check_word(ConsentMethod, change.method, field="method")
        notice = _notice_version(info, change.notice_version)
        now = self._clock()
        expires = change.expires_at
        if expires is not None:
            if expires.tzinfo is None:
                raise InvalidInput("expiresAt", "must be a datetime with a time zone")
            if state is not ConsentState.GRANTED:
                raise InvalidInput("expiresAt", "applies to a granted consent only")
            if expires <= now:
                raise InvalidInput("expiresAt", "must be in the future")
        row = session.scalar(select(CustomerRow).where(CustomerRow.id == customer_id))
        if row is None or row.status not in _LIVE:
            raise CustomerNotFound(customer_id)
        ctx = access_of(session)
        event_id = uuid.uuid4()
        receipt = sign_receipt(
            self._signer,
            self._receipt_body(
                event_id, customer_id, info, state, channel, method, notice, now, expires
            ),
        )
        session.add(
            ConsentEventRow(
                id=event_id,
                customer_id=customer_id,
                purpose=info.name.value,
                event=state.value,
                occurred_at=now,
                recorded_at=now,
                source_channel=channel.value,
                notice_version=notice,
                method=method.value,
                evidence_user_agent=self._evidence("consent.user_agent", change.user_agent),
                evidence_address=self._evidence("consent.client_address", change.client_address),
                expires_at=expires,
                actor=ctx.actor.subject,
                request_id=ctx.request_id,
                receipt=json.dumps(receipt, sort_keys=True, ensure_ascii=False),
            )
        )
        current = session.get(ConsentStateRow, (customer_id, info.name.value))
        if current is None:
            current = ConsentStateRow(customer_id=customer_id, purpose=info.name.value)
            session.add(current)
        current.state = state.value
        current.changed_at = now
        current.expires_at = expires
        current.event_id = event_id
        session.flush()
        buffer_of(session).add(
            AuditAction.CONSENT_CHANGE,
            customer_id=customer_id,
            fields={"consent": "written"},
            detail={"purpose": info.name.value, "state": state.value, "event": str(event_id)},
        )
        return ConsentRecord(
            id=event_id,
            customer_id=customer_id,
            purpose=info.name,
            state=state,
            occurred_at=now,
            source_channel=channel,
            notice_version=notice,
            method=method,
            expires_at=expires,
            actor=ctx.actor.subject,
            receipt=receipt,
        )

    def grant(self, session: Session, customer_id: uuid.UUID, purpose: str) -> ConsentRecord:
        """Grant with the defaults (an API call, the purpose's current notice, a form)."""
        return self.record(session, customer_id, ConsentChange(purpose, ConsentState.GRANTED))

    def withdraw(self, session: Session, customer_id: uuid.UUID, purpose: str) -> ConsentRecord:
        """Withdraw: one call, as easy as granting (Art. 7(3))."""
        return self.record(session, customer_id, ConsentChange(purpose, ConsentState.WITHDRAWN))

    # -- reads ------------------------------------------------------------

    def status(self, session: Session, customer_id: uuid.UUID) -> list[ConsentStatus]:
        """Every consent-based purpose and where it stands for the customer."""
        self._check_read(session, customer_id)
        rows = {
            r.purpose: r
            for r in session.scalars(
                select(ConsentStateRow).where(ConsentStateRow.customer_id == customer_id)
            )
        }
        now = self._clock()
        out = []
        for purpose, info in registry().items():
            if not info.needs_consent:
                continue
            row = rows.get(purpose.value)
            state = ConsentState(row.state) if row is not None else None
            expires = row.expires_at if row is not None else None
            out.append(
                ConsentStatus(
                    purpose=purpose,
                    state=state,
                    changed_at=row.changed_at if row is not None else None,
                    expires_at=expires,
                    effective=state is ConsentState.GRANTED and (expires is None or expires > now),
                )
            )
        buffer_of(session).read(customer_id, {"consent": "clear"})
        return out

    def history(self, session: Session, customer_id: uuid.UUID) -> list[ConsentRecord]:
        """Every consent event of the customer, oldest first, with its receipt."""
        self._check_read(session, customer_id)
        rows = session.scalars(
            select(ConsentEventRow)
            .where(ConsentEventRow.customer_id == customer_id)
            .order_by(ConsentEventRow.occurred_at, ConsentEventRow.seq)
        ).all()
        buffer_of(session).read(customer_id, {"consent": "clear"})
        return [_record(r) for r in rows]

    def receipt(self, session: Session, event_id: uuid.UUID) -> dict[str, Any]:
        """The signed receipt of one consent event."""
        self._authz.check_reads(session, "consent")
        row = session.scalar(select(ConsentEventRow).where(ConsentEventRow.id == event_id))
        if row is None:
            raise ReceiptNotFound(event_id)
        self._check_read(session, row.customer_id)
        buffer_of(session).read(row.customer_id, {"consent": "clear"})
        result: dict[str, Any] = json.loads(row.receipt)
        return result

    # -- helpers ----------------------------------------------------------

    def _check_read(self, session: Session, customer_id: uuid.UUID) -> None:
        self._authz.check_reads(session, "consent", customer_id)
        self._authz.check_owner(session, customer_id)
        if session.get(CustomerRow, customer_id) is None:
            raise CustomerNotFound(customer_id)

    def _evidence(self, field_name: str, value: str | None) -> str | None:
        """A keyed pseudonym of what the device said. Evidence never blocks a change (a
        withdrawal must always go through): an overlong value is cut, an unusable one is
        kept as no evidence."""
        if value is None or not value.strip():
            return None
        try:
            text = check_text(value[:_EVIDENCE_CHARS], field=field_name, max_length=_EVIDENCE_CHARS)
        except InvalidInput:
            return None
        return self._indexer.pseudonym(field_name, text.strip())

    def _receipt_body(  # noqa: PLR0917 - one private call site, every argument named there
        self,
        event_id: uuid.UUID,
        customer_id: uuid.UUID,
        info: PurposeInfo,
        state: ConsentState,
        channel: ConsentChannel,
        method: ConsentMethod,
        notice: str,
        now: datetime,
        expires: datetime | None,
    ) -> dict[str, Any]:
        """Kantara Consent Receipt v1.1 fields; ``piiPrincipalId`` is the pseudonymous id."""
        return {
            "version": RECEIPT_VERSION,
            "jurisdiction": self._jurisdiction,
            "consentTimestamp": int(now.timestamp()),
            "collectionMethod": f"{method.value} via {channel.value}",
            "consentReceiptID": str(event_id),
            "language": self._language,
            "piiPrincipalId": str(customer_id),
            "piiControllers": [{"piiController": self._controller, "onBehalf": False}],
            "policyUrl": self._policy_url,
            "services": [
                {
                    "service": "customer-vault",
                    "purposes": [
                        {
                            "purpose": info.description,
                            "purposeCategory": [info.name.value],
                            "consentType": "EXPLICIT" if method in _EXPLICIT else "IMPLICIT",
                            "piiCategory": list(info.data_categories),
                            "primaryPurpose": False,
                            "termination": expires.isoformat() if expires else "on withdrawal",
                            "thirdPartyDisclosure": False,
                        }
                    ],
                }
            ],
            "sensitive": False,
            "spiCat": [],
            "state": state.value,
            "noticeVersion": notice,
            "legalBasis": info.legal_basis.value,
        }


def _consent_purpose(name: str) -> PurposeInfo:
    try:
        info = purpose_info(name)
    except RegistryError:
        raise InvalidInput("purpose", "is not a registered purpose") from None
    if not info.needs_consent:
        raise InvalidInput("purpose", f"rests on {info.legal_basis.value}, not on consent")
    return info


def _notice_version(info: PurposeInfo, given: str | None) -> str:
    """The notice version the change was made under: the one given, else the purpose's
    current one from the registry; a purpose without one needs it given."""
    if given is None:
        if info.notice_version is None:
            raise InvalidInput(
                "noticeVersion",
                f"is required: purpose {info.name.value} has no current notice version "
                "in purposes.toml",
            )
        return info.notice_version
    notice = check_text(given, field="noticeVersion", max_length=64).strip()
    if not notice:
        raise InvalidInput("noticeVersion", "must not be empty")
    return notice


def _record(row: ConsentEventRow) -> ConsentRecord:
    return ConsentRecord(
        id=row.id,
        customer_id=row.customer_id,
        purpose=Purpose(row.purpose),
        state=ConsentState(row.event),
        occurred_at=row.occurred_at,
        source_channel=ConsentChannel(row.source_channel),
        notice_version=row.notice_version,
        method=ConsentMethod(row.method),
        expires_at=row.expires_at,
        actor=row.actor,
        receipt=json.loads(row.receipt),
    )
