"""GraphQL for customers and their interactions: read, find, page, create, change,
merge, record.

Thin, like every resolver: parse the arguments, call one vault service with the
caller's unit of work, map the result to the types of :mod:`api.graphql.types`.
"""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from strawberry import UNSET

from api.graphql.context import Ctx, GraphQLContext, atomic
from api.graphql.timelines import prefetch_timelines
from api.graphql.types.common import (
    NO_PAGE,
    AfterArg,
    BeforeArg,
    FirstArg,
    IdArg,
    LastArg,
    count_only,
    page_sizes,
    parse_id,
    taken,
)
from api.graphql.types.customer_inputs import CustomerFilter, CustomerInput, CustomerPatchInput
from api.graphql.types.customers import (
    Customer,
    CustomerConnection,
    MergeResult,
    customer_connection,
)
from api.graphql.types.duplicates import DuplicateCandidate
from api.graphql.types.interactions import InteractionInput, RecordResult
from vault.customers import UNSET as DOMAIN_UNSET
from vault.customers import Customer as CustomerRecord
from vault.customers import CustomerFilter as CustomerFilterRecord
from vault.customers import CustomerInput as CustomerInputRecord
from vault.customers import CustomerPatch, ExternalId, only_one
from vault.customers.addresses import PostalAddress
from vault.errors import Forbidden, InvalidInput
from vault.interactions import MAX_BATCH
from vault.interactions import InteractionInput as InteractionInputRecord
from vault.pagination import MAX_PAGE

__all__ = [
    "CustomerMutation",
    "CustomerQuery",
    "InteractionMutation",
    "customer_record",
    "own_record",
]


def customer_record(ctx: GraphQLContext, customer_id: str) -> CustomerRecord:
    """``customer(id:)``: the customer as the caller's policy lets it see the record."""
    return ctx.vault.customers.get(ctx.session, parse_id(ctx, customer_id))


def own_record(ctx: GraphQLContext) -> CustomerRecord:
    """``me``: a data subject's own record."""
    own = ctx.access.actor.customer_id
    if own is None:
        raise Forbidden("me: only a data subject's token names a customer")
    return ctx.vault.customers.get(ctx.session, own)


def _record_filter(given: CustomerFilter | None) -> CustomerFilterRecord | None:
    if given is None:
        return None
    return CustomerFilterRecord(
        tier=given.tier,
        locale=given.locale,
        tag=given.tag,
        statuses=list(given.status or []),
        created_after=given.created_after,
        created_before=given.created_before,
    )


@strawberry.type
class CustomerQuery:
    @strawberry.field(description="One customer, by id.")
    def customer(self, info: Ctx, id: IdArg) -> Customer:
        return Customer(record=customer_record(info.context, id))

    @strawberry.field(
        description="The customer with this e-mail address (exact, by blind index); when "
        "several customers have it, the error AMBIGUOUS with their ids (`extensions.ids`)."
    )
    def customer_by_email(
        self,
        info: Ctx,
        email: Annotated[str, strawberry.argument(description="The e-mail address.")],
    ) -> Customer | None:
        ctx = info.context
        found = only_one(ctx.vault.customers.find_by_email(ctx.session, email), "email")
        return None if found is None else Customer(record=found)

    @strawberry.field(
        description="The customer with this phone number (exact, by blind index); when "
        "several customers have it, the error AMBIGUOUS with their ids (`extensions.ids`)."
    )
    def customer_by_phone(
        self,
        info: Ctx,
        phone: Annotated[str, strawberry.argument(description="The phone number.")],
    ) -> Customer | None:
        ctx = info.context
        found = only_one(ctx.vault.customers.find_by_phone(ctx.session, phone), "phone")
        return None if found is None else Customer(record=found)

    @strawberry.field(
        description="Pairs of customers that may be one person (the same email, phone, or "
        "full name and birth date), oldest first; merge each with `mergeCustomers`."
    )
    def duplicate_candidates(
        self,
        info: Ctx,
        first: Annotated[
            int, strawberry.argument(description=f"At most this many pairs (<= {MAX_PAGE}).")
        ] = 20,
    ) -> list[DuplicateCandidate]:
        if not 1 <= first <= MAX_PAGE:
            raise InvalidInput("first", f"must be between 1 and {MAX_PAGE}")
        ctx = info.context
        pairs = ctx.vault.customers.duplicates.candidates(ctx.session, limit=first)
        ids = list(dict.fromkeys(i for p in pairs for i in (p.keep_id, p.duplicate_id)))
        read = {c.id: c for c in ctx.vault.customers.get_many(ctx.session, ids)} if ids else {}
        return [
            DuplicateCandidate(
                keep=Customer(record=read[p.keep_id]),
                duplicate=Customer(record=read[p.duplicate_id]),
                reasons=list(p.reasons),
            )
            for p in pairs
        ]

    @strawberry.field(
        description=f"A page of customers, oldest first, at most {MAX_PAGE} at a time."
    )
    def customers(  # noqa: PLR0917 - GraphQL arguments
        self,
        info: Ctx,
        first: FirstArg = 20,
        after: AfterArg = None,
        filter: Annotated[
            CustomerFilter | None, strawberry.argument(description="Which customers.")
        ] = None,
        last: LastArg = None,
        before: BeforeArg = None,
    ) -> CustomerConnection:
        ctx = info.context
        first_, last_ = page_sizes(info, first, last)
        wanted = _record_filter(filter)

        def count() -> int:
            return ctx.vault.customers.count(ctx.session, filter_=wanted)

        if count_only(info, first_, last_):
            return customer_connection(NO_PAGE, taken(count()))
        page = ctx.vault.customers.page(
            ctx.session, first=first_, after=after, last=last_, before=before, filter_=wanted
        )
        prefetch_timelines(info, [c.id for c in page.items])
        return customer_connection(page, count)

    @strawberry.field(description="A data subject's own record.")
    def me(self, info: Ctx) -> Customer:
        return Customer(record=own_record(info.context))


def _object(value: object, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(field, "must be a JSON object")
    return value


def _external_ids(values: list[Any] | None) -> list[ExternalId]:
    return [ExternalId(v.source, v.external_id) for v in values or []]


_PARTS = ("street", "city", "region", "postal_code", "country")


def _address(free: object, parts: Any) -> Any:  # noqa: ANN401
    """The address given as free text or in parts (not both); strawberry.UNSET stays."""
    if parts is UNSET or (parts is None and free is not UNSET):
        return free
    if parts is None:  # postalAddress: null alone clears the address
        return None
    if free is not None and free is not UNSET:
        raise InvalidInput("postalAddress", "give address or postalAddress, not both")
    if all(getattr(parts, name) is None for name in _PARTS):
        raise InvalidInput("postalAddress", "give at least one part of the address")
    return PostalAddress(
        street=parts.street, city=parts.city, region=parts.region,
        postal_code=parts.postal_code, country=parts.country,
    )  # fmt: skip


def _customer_input(data: CustomerInput) -> CustomerInputRecord:
    return CustomerInputRecord(
        email=data.email, phone=data.phone, first_name=data.first_name,
        last_name=data.last_name, birth_date=data.birth_date,
        address=_address(data.address, data.postal_address), locale=data.locale,
        tier=data.tier, tags=data.tags or [],
        attributes=_object(data.attributes, "attributes"),
        external_ids=_external_ids(data.external_ids),
    )  # fmt: skip


def _keep(value: Any) -> Any:  # noqa: ANN401
    """A patch field left out of the input stays unset in the domain's patch."""
    return DOMAIN_UNSET if value is UNSET else value


def _customer_patch(data: CustomerPatchInput) -> CustomerPatch:
    return CustomerPatch(
        email=_keep(data.email), phone=_keep(data.phone), first_name=_keep(data.first_name),
        last_name=_keep(data.last_name), birth_date=_keep(data.birth_date),
        address=_keep(_address(data.address, data.postal_address)),
        locale=_keep(data.locale), tier=_keep(data.tier), tags=_keep(data.tags),
        attributes=_keep(data.attributes),
        add_external_ids=_external_ids(data.add_external_ids),
    )  # fmt: skip


@strawberry.type
class CustomerMutation:
    @strawberry.mutation(
        description="Create a customer; PII is encrypted under a new data key. A customer "
        "whose email, phone or external id is on file already is refused with the code "
        "DUPLICATE (`extensions.field`; `extensions.existingId` when you may read it)."
    )
    def create_customer(
        self,
        info: Ctx,
        input: Annotated[CustomerInput, strawberry.argument(description="The customer.")],
    ) -> Customer | None:
        ctx = info.context
        record = _customer_input(input)
        with atomic(info) as session:
            return Customer(record=ctx.vault.customers.create(session, record))

    @strawberry.mutation(
        description="Change a customer: only the fields given change. Concurrent updates of "
        "one customer apply one after the other, each to the record as the previous one "
        "left it (different fields all apply; the same field: the last one wins). Give "
        "`expectedVersion` to change only the record you read: when it has changed since, "
        "the update is refused with the code CONFLICT (`extensions.currentVersion`) and "
        "nothing is written. An email, phone or external id another customer has is "
        "refused with the code DUPLICATE."
    )
    def update_customer(
        self,
        info: Ctx,
        id: IdArg,
        input: Annotated[CustomerPatchInput, strawberry.argument(description="What changes.")],
        expected_version: Annotated[
            int | None,
            strawberry.argument(
                description="The `version` of the customer as the caller read it; the "
                "update is refused (CONFLICT) when the record is no longer at that version."
            ),
        ] = None,
    ) -> Customer | None:
        ctx = info.context
        patch = _customer_patch(input)
        with atomic(info) as session:
            changed = ctx.vault.customers.update(
                session, parse_id(ctx, id), patch, expected_version=expected_version
            )
            return Customer(record=changed)

    @strawberry.mutation(
        description="Merge a duplicate (mergeId) into a customer (keepId): interactions move, "
        "missing fields are filled, the duplicate points to the survivor."
    )
    def merge_customers(self, info: Ctx, keep_id: IdArg, merge_id: IdArg) -> MergeResult | None:
        ctx = info.context
        with atomic(info) as session:
            result = ctx.vault.customers.merge(
                session, parse_id(ctx, keep_id, "keepId"), parse_id(ctx, merge_id, "mergeId")
            )
        return MergeResult(
            customer=Customer(record=result.customer),
            merged_id=strawberry.ID(str(result.merged_id)),
            moved_interactions=result.moved_interactions,
            filled_fields=result.filled_fields,
        )


def _interaction_records(
    ctx: GraphQLContext, items: list[InteractionInput]
) -> list[InteractionInputRecord]:
    return [
        InteractionInputRecord(
            channel=i.channel.value, type=i.type.value, occurred_at=i.occurred_at,
            customer_id=(
                None if i.customer_id is None else parse_id(ctx, i.customer_id, "customerId")
            ),
            customer_source=i.source, customer_external_id=i.customer_external_id,
            amount=i.amount, currency=i.currency, external_id=i.external_id,
            payload=None if i.payload is None else _object(i.payload, "payload"),
        )
        for i in items
    ]  # fmt: skip


@strawberry.type
class InteractionMutation:
    @strawberry.mutation(description=f"At most {MAX_BATCH} per call; idempotent on externalId.")
    def record_interactions(
        self,
        info: Ctx,
        interactions: Annotated[
            list[InteractionInput], strawberry.argument(description="The interactions.")
        ],
    ) -> RecordResult | None:
        if len(interactions) > MAX_BATCH:
            raise InvalidInput("interactions", f"at most {MAX_BATCH} per call")
        ctx = info.context
        records = _interaction_records(ctx, interactions)
        with atomic(info) as session:
            result = ctx.vault.interactions.record_many(session, records)
        return RecordResult(inserted=result.inserted, duplicates=result.duplicates)
