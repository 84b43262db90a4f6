"""GraphQL for consent: the purpose registry, a customer's consents, changes, receipts.

Thin, like every resolver: parse, call the consent ledger with the caller's unit of
work, map the result. Data subject requests live in :mod:`api.graphql.requests`.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

import strawberry
from strawberry.scalars import JSON

from api.graphql.context import atomic
from api.graphql.types import Ctx, IdArg, parse_id
from consent import ConsentChange, ConsentRecord, ConsentStatus
from policies.purposes import registry
from vault.types import ConsentChannel as ConsentChannelEnum
from vault.types import ConsentMethod as ConsentMethodEnum
from vault.types import ConsentState as ConsentStateEnum

__all__ = ["ConsentMutation", "ConsentQuery", "consent_entries", "consent_history_entries"]

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


def _event(record: ConsentRecord) -> ConsentEvent:
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
    return [_event(r) for r in records]


@strawberry.type
class ConsentQuery:
    @strawberry.field(description="The purpose registry: every purpose and its legal basis.")
    def purposes(self) -> list[Purpose]:
        return [
            Purpose(
                name=p.value,
                legal_basis=info.legal_basis.value,
                description=info.description,
                direct_marketing=info.direct_marketing,
                needs_consent=info.needs_consent,
            )
            for p, info in registry().items()
        ]

    @strawberry.field(description="A consent receipt (signed JSON), by consent event id.")
    def consent_receipt(self, info: Ctx, id: IdArg) -> JSON:
        ctx = info.context
        return cast(JSON, ctx.privacy.ledger.receipt(ctx.session, parse_id(id)))


def _change(
    info: Ctx,
    customer_id: str,
    purpose: str,
    state: ConsentStateEnum,
    how: ConsentChangeInput | None,
) -> ConsentEvent | None:
    ctx = info.context
    given = how or ConsentChangeInput()
    change = ConsentChange(
        purpose=purpose,
        state=state.value,
        source_channel=ConsentChannelEnum(given.source_channel).value,
        notice_version=given.notice_version,
        method=ConsentMethodEnum(given.method).value,
        user_agent=ctx.evidence.user_agent,
        client_address=ctx.evidence.client_address,
        expires_at=given.expires_at,
    )
    with atomic(info) as session:
        record = ctx.privacy.ledger.record(session, parse_id(customer_id, "customerId"), change)
    return _event(record)


@strawberry.type
class ConsentMutation:
    @strawberry.mutation(description="Grant a consent-based purpose; returns the receipt.")
    def grant_consent(
        self, info: Ctx, customer_id: IdArg, purpose: str, how: ConsentChangeInput | None = None
    ) -> ConsentEvent | None:
        return _change(info, customer_id, purpose, ConsentStateEnum.GRANTED, how)

    @strawberry.mutation(description="Withdraw a consent: one call, as easy as granting.")
    def withdraw_consent(
        self, info: Ctx, customer_id: IdArg, purpose: str, how: ConsentChangeInput | None = None
    ) -> ConsentEvent | None:
        return _change(info, customer_id, purpose, ConsentStateEnum.WITHDRAWN, how)

    @strawberry.mutation(description="Record that the customer said no when asked.")
    def deny_consent(
        self, info: Ctx, customer_id: IdArg, purpose: str, how: ConsentChangeInput | None = None
    ) -> ConsentEvent | None:
        return _change(info, customer_id, purpose, ConsentStateEnum.DENIED, how)
