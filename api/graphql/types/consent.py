"""Consent's types: the purpose registry, where a customer's consents stand, the ledger's
events with their receipts, and how a change was made."""

from __future__ import annotations

from datetime import datetime
from typing import cast

import strawberry
from strawberry.scalars import JSON

from api.graphql.types.common import described_enum
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

ConsentState = described_enum(
    ConsentStateEnum,
    "ConsentState",
    "A consent event, and the state it leaves for its purpose.",
    {
        "GRANTED": "Consent given: the purpose may process the customer.",
        "WITHDRAWN": "Consent taken back: processing stops from the next request.",
        "DENIED": "Consent refused when asked.",
    },
)
ConsentChannel = described_enum(
    ConsentChannelEnum,
    "ConsentChannel",
    "Where a consent was given or withdrawn.",
    {
        "WEB": "A web page.",
        "EMAIL": "An e-mail (a link in it).",
        "SMS": "A text message.",
        "APP": "A mobile app.",
        "STORE": "In a store.",
        "PHONE": "A phone call.",
        "API": "Another system, through the API.",
    },
)
ConsentMethod = described_enum(
    ConsentMethodEnum,
    "ConsentMethod",
    "How a consent was expressed.",
    {
        "FORM": "A form submitted.",
        "CHECKBOX": "A checkbox ticked.",
        "EMAIL_LINK": "A link followed in an e-mail.",
        "VERBAL": "Said aloud (recorded by staff).",
        "IMPORT": "Imported from another system's records.",
    },
)


@strawberry.type(description="A purpose of the registry and the legal basis it rests on.")
class Purpose:
    name: str = strawberry.field(description="The purpose's name, as X-Purpose takes it.")
    legal_basis: str = strawberry.field(
        description="consent, contract, legitimate_interest or legal_obligation."
    )
    description: str = strawberry.field(description="What the purpose is for.")
    direct_marketing: bool = strawberry.field(
        description="Whether it is direct marketing (an objection closes it)."
    )
    needs_consent: bool = strawberry.field(
        description="Whether it reaches only customers who granted consent."
    )
    notice_version: str | None = strawberry.field(
        description="The current notice version a consent to it is recorded under when a "
        "change names none."
    )


@strawberry.type(description="Where one consent-based purpose stands for a customer.")
class Consent:
    purpose: str = strawberry.field(description="The purpose's name.")
    state: ConsentStateEnum | None = strawberry.field(
        description="The last event's state; null if none was ever recorded."
    )
    changed_at: datetime | None = strawberry.field(description="When it last changed.")
    expires_at: datetime | None = strawberry.field(description="When a grant lapses, if ever.")
    effective: bool = strawberry.field(
        description="Whether the purpose may process the customer now (granted, unexpired)."
    )


@strawberry.type(description="One change in a customer's consent ledger, with its receipt.")
class ConsentEvent:
    id: strawberry.ID = strawberry.field(description="The event's id.")
    customer_id: strawberry.ID = strawberry.field(description="The customer's id.")
    purpose: str = strawberry.field(description="The purpose's name.")
    state: ConsentStateEnum = strawberry.field(description="What the event recorded.")
    occurred_at: datetime = strawberry.field(description="When it happened.")
    source_channel: ConsentChannelEnum = strawberry.field(description="Where it happened.")
    notice_version: str = strawberry.field(
        description="The privacy notice version shown at the time."
    )
    method: ConsentMethodEnum = strawberry.field(description="How it was expressed.")
    expires_at: datetime | None = strawberry.field(description="When a grant lapses, if ever.")
    actor: str = strawberry.field(description="Who recorded it.")
    receipt: JSON = strawberry.field(
        description="The signed consent receipt (Kantara fields), verifiable offline."
    )


@strawberry.input(description="How and where the change was made; defaults suit an API call.")
class ConsentChangeInput:
    source_channel: ConsentChannelEnum = strawberry.field(
        default=ConsentChannelEnum.API, description="Where the change was made."
    )
    notice_version: str | None = strawberry.field(
        default=None,
        description="The privacy notice version the customer saw (none: the purpose's "
        "current version from the purpose registry).",
    )
    method: ConsentMethodEnum = strawberry.field(
        default=ConsentMethodEnum.FORM, description="How the customer expressed it."
    )
    expires_at: datetime | None = strawberry.field(
        default=None, description="When a grant lapses (none: it does not)."
    )


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
