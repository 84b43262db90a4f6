"""GraphQL for consent: the purpose registry, receipts, and granting, withdrawing and
denying a purpose.

Thin, like every resolver: parse, call the consent ledger with the caller's unit of
work, map the result (the types are in :mod:`api.graphql.types.consent`). Data subject
requests live in :mod:`api.graphql.requests`.
"""

from __future__ import annotations

from typing import Annotated, cast

import strawberry
from strawberry.scalars import JSON

from api.graphql.context import Ctx, atomic
from api.graphql.types.common import IdArg, parse_id
from api.graphql.types.consent import ConsentChangeInput, ConsentEvent, Purpose, consent_event
from consent import ConsentChange
from policies.purposes import registry
from vault.types import ConsentChannel as ConsentChannelEnum
from vault.types import ConsentMethod as ConsentMethodEnum
from vault.types import ConsentState as ConsentStateEnum

__all__ = ["ConsentMutation", "ConsentQuery"]

PurposeArg = Annotated[
    str, strawberry.argument(description="A consent-based purpose, e.g. marketing_email.")
]
HowArg = Annotated[
    ConsentChangeInput | None,
    strawberry.argument(description="How and where the change was made (default: an API call)."),
]


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
                notice_version=info.notice_version,
            )
            for p, info in registry().items()
        ]

    @strawberry.field(description="A consent receipt (signed JSON), by consent event id.")
    def consent_receipt(self, info: Ctx, id: IdArg) -> JSON:
        ctx = info.context
        receipt_id = parse_id(ctx, id, kind="consent receipt")
        return cast(JSON, ctx.privacy.ledger.receipt(ctx.session, receipt_id))


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
        subject = parse_id(ctx, customer_id, "customerId")
        record = ctx.privacy.ledger.record(session, subject, change)
    return consent_event(record)


@strawberry.type
class ConsentMutation:
    @strawberry.mutation(description="Grant a consent-based purpose; returns the receipt.")
    def grant_consent(
        self, info: Ctx, customer_id: IdArg, purpose: PurposeArg, how: HowArg = None
    ) -> ConsentEvent | None:
        return _change(info, customer_id, purpose, ConsentStateEnum.GRANTED, how)

    @strawberry.mutation(description="Withdraw a consent: one call, as easy as granting.")
    def withdraw_consent(
        self, info: Ctx, customer_id: IdArg, purpose: PurposeArg, how: HowArg = None
    ) -> ConsentEvent | None:
        return _change(info, customer_id, purpose, ConsentStateEnum.WITHDRAWN, how)

    @strawberry.mutation(description="Record that the customer said no when asked.")
    def deny_consent(
        self, info: Ctx, customer_id: IdArg, purpose: PurposeArg, how: HowArg = None
    ) -> ConsentEvent | None:
        return _change(info, customer_id, purpose, ConsentStateEnum.DENIED, how)
