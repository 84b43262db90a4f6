"""Consent's types: the purpose registry, where a customer's consents stand, the ledger's
events with their receipts, and how a change was made."""

from __future__ import annotations

from datetime import datetime
from typing import cast

import strawberry
from strawberry.scalars import JSON

from consent import ConsentRecord, ConsentStatus
from vault.types import ConsentChannel as ConsentChannelEnum
from vault.types import ConsentMethod as ConsentMethodEnum
from vault.types import ConsentState as ConsentStateEnum

__all__ = [
    "Consent",
    "ConsentChangeInput",
    "ConsentChannel",
    "ConsentEvent",
    "ConsentMethod",
    "ConsentState",
    "Purpose",
    "consent_entries",
    "consent_event",
    "consent_history_entries",
]

ConsentState = strawberry.enum(ConsentStateEnum, name="ConsentState")
ConsentChannel = strawberry.enum(ConsentChannelEnum, name="ConsentChannel")
ConsentMethod = strawberry.enum(ConsentMethodEnum, name="ConsentMethod")


@strawberry.type(description="A purpose of the registry and the legal basis it rests on.")
class Purpose:
    name: str
    legal_basis: str
    description: str
    direct_marketing: bool
    needs_consent: bool


@strawberry.type(description="Where one consent-based purpose stands for a customer.")
class Consent:
    purpose: str
    state: ConsentStateEnum | None
    changed_at: datetime | None
    expires_at: datetime | None
    effective: bool


@strawberry.type(description="One change in a customer's consent ledger, with its receipt.")
class ConsentEvent:
    id: strawberry.ID
    customer_id: strawberry.ID
    purpose: str
    state: ConsentStateEnum
    occurred_at: datetime
    source_channel: ConsentChannelEnum
    notice_version: str
    method: ConsentMethodEnum
    expires_at: datetime | None
    actor: str
    receipt: JSON


@strawberry.input(description="How and where the change was made; defaults suit an API call.")
class ConsentChangeInput:
    source_channel: ConsentChannelEnum = ConsentChannelEnum.API
    notice_version: str = "unversioned"
    method: ConsentMethodEnum = ConsentMethodEnum.FORM
    expires_at: datetime | None = None


def consent_entries(statuses: list[ConsentStatus]) -> list[Consent]:
    return [
        Consent(
            purpose=s.purpose.value,
            state=s.state,
            changed_at=s.changed_at,
            expires_at=s.expires_at,
            effective=s.effective,
        )
        for s in statuses
    ]


def consent_event(record: ConsentRecord) -> ConsentEvent:
    return ConsentEvent(
        id=strawberry.ID(str(record.id)),
        customer_id=strawberry.ID(str(record.customer_id)),
        purpose=record.purpose.value,
        state=record.state,
        occurred_at=record.occurred_at,
        source_channel=record.source_channel,
        notice_version=record.notice_version,
        method=record.method,
        expires_at=record.expires_at,
        actor=record.actor,
        receipt=cast(JSON, record.receipt),
    )


def consent_history_entries(records: list[ConsentRecord]) -> list[ConsentEvent]:
    return [consent_event(r) for r in records]
