"""Resolvers: parse arguments, call one vault service, map the result. Nothing else."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from strawberry.types.nodes import SelectedField

from api.graphql.context import GraphQLContext, atomic, path_of
from api.graphql.types import (
    REFUSED,
    Ctx,
    Customer,
    CustomerConnection,
    CustomerEdge,
    CustomerFilter,
    CustomerInput,
    CustomerPatchInput,
    InteractionConnection,
    InteractionInput,
    PageInfo,
    interaction_connection,
    parse_id,
)
from vault.customers import Customer as CustomerRecord
from vault.customers import CustomerFilter as CustomerFilterRecord
from vault.customers import CustomerInput as CustomerInputRecord
from vault.customers import CustomerPatch, ExternalId
from vault.errors import InvalidInput
from vault.interactions.service import InteractionInput as InteractionInputRecord
from vault.pagination import encode_cursor
from vault.types import Channel as ChannelEnum
from vault.types import InteractionType as InteractionTypeEnum

__all__ = ["customer_interactions", "customer_record", "own_record"]


def _args_key(*args: Any) -> tuple[Any, ...]:  # noqa: ANN401
    return tuple(args)


def customer_interactions(  # noqa: PLR0917 - the GraphQL field's arguments, in order
    info: Ctx,
    customer_id: uuid.UUID,
    first: int,
    after: str | None,
    channel: str | None,
    kind: str | None,
    since: datetime | None,
    until: datetime | None,
) -> InteractionConnection | None:
    """A customer's timeline; when a list of customers was asked for, the whole list's
    timelines were fetched in one statement beforehand (see :func:`customers`)."""
    ctx = info.context
    key = (customer_id, _args_key(first, after, channel, kind, since, until))
    page = ctx.timelines.get(key)
    if page is None:
        try:
            page = ctx.vault.interactions.timeline(
                ctx.session, customer_id, first=first, after=after, channel=channel,
                type=kind, since=since, until=until,
            )  # fmt: skip
        except REFUSED:
            ctx.redacted.append(path_of(info))
            return None
    return interaction_connection(page.items, page.end_cursor, page.has_next_page)


def prefetch_timelines(info: Ctx, customer_ids: list[uuid.UUID]) -> None:
    """If the query asks for ``interactions`` on a list of customers, fetch all their
    first pages at once (a bounded number of statements however long the list)."""
    if not customer_ids:
        return
    ctx = info.context
    for selection in _selected(info.selected_fields, ("edges", "node", "interactions")):
        args = _timeline_args(selection.arguments)
        if args is None:
            continue  # a cursor, or an argument to check one by one: resolved per customer
        first, channel, kind, since, until = args
        try:
            pages = ctx.vault.interactions.timelines(
                ctx.session, customer_ids, first=first, channel=channel, type=kind,
                since=since, until=until,
            )  # fmt: skip
        except REFUSED:
            return  # each customer's field then resolves (or is redacted) on its own
        except InvalidInput:
            continue  # each customer's field reports the problem itself
        for cid, page in pages.items():
            ctx.timelines[(cid, _args_key(first, None, channel, kind, since, until))] = page


def _timeline_args(
    raw: dict[str, Any],
) -> tuple[int, str | None, str | None, datetime | None, datetime | None] | None:
    """The arguments as the field resolver will see them; None if they cannot be
    normalised here (the per-customer resolver then validates and reports them)."""
    if raw.get("after") is not None:
        return None
    try:
        first = int(raw.get("first", 10))
        channel = _enum_value(ChannelEnum, raw.get("channel"))
        kind = _enum_value(InteractionTypeEnum, raw.get("type"))
        since = _datetime(raw.get("since"))
        until = _datetime(raw.get("until"))
    except (TypeError, ValueError, KeyError):
        return None
    return first, channel, kind, since, until


def _enum_value(kind: type[ChannelEnum] | type[InteractionTypeEnum], value: object) -> str | None:
    """A GraphQL enum argument: a member, its name (a literal ``CHAT``) or its value."""
    if value is None:
        return None
    if isinstance(value, kind):
        return value.value
    text = str(value)
    return kind[text].value if text in kind.__members__ else kind(text).value


def _datetime(value: object) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    parsed = datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        raise ValueError("naive datetime")
    return parsed


def _selected(selections: list[Any], path: tuple[str, ...]) -> list[Any]:
    """The fields at ``path`` below ``selections``, looking through fragments."""
    for name in path:
        selections = [
            child
            for selection in selections
            for child in _fields(getattr(selection, "selections", None) or [])
            if child.name == name
        ]
    return selections


def _fields(selections: list[Any]) -> list[Any]:
    """Fields of a selection set, with named and inline fragments spread out."""
    found = []
    for selection in selections:
        if isinstance(selection, SelectedField):
            found.append(selection)
        else:  # FragmentSpread or InlineFragment
            found.extend(_fields(getattr(selection, "selections", None) or []))
    return found


def customer_record(ctx: GraphQLContext, customer_id: str) -> CustomerRecord:
    """``customer(id:)``: the customer as the caller's policy lets it see the record."""
    return ctx.vault.customers.get(ctx.session, parse_id(customer_id))


def own_record(ctx: GraphQLContext) -> CustomerRecord:
    """``me``: a data subject's own record."""
    own = ctx.access.actor.customer_id
    if own is None:
        raise InvalidInput("me", "only a data subject's token names a customer")
    return ctx.vault.customers.get(ctx.session, own)


def customer(info: Ctx, customer_id: str) -> Customer:
    return Customer(record=customer_record(info.context, customer_id))


def customer_by_email(info: Ctx, email: str) -> Customer | None:
    ctx = info.context
    found = ctx.vault.customers.find_by_email(ctx.session, email)
    return Customer(record=found[0]) if found else None


def customer_by_phone(info: Ctx, phone: str) -> Customer | None:
    ctx = info.context
    found = ctx.vault.customers.find_by_phone(ctx.session, phone)
    return Customer(record=found[0]) if found else None


def me(info: Ctx) -> Customer:
    return Customer(record=own_record(info.context))


def customers(
    info: Ctx, first: int, after: str | None, filter_: CustomerFilter | None
) -> CustomerConnection:
    ctx = info.context
    record_filter = None
    if filter_ is not None:
        record_filter = CustomerFilterRecord(
            tier=filter_.tier,
            locale=filter_.locale,
            tag=filter_.tag,
            statuses=list(filter_.status or []),
            created_after=filter_.created_after,
            created_before=filter_.created_before,
        )
    page = ctx.vault.customers.page(ctx.session, first=first, after=after, filter_=record_filter)
    prefetch_timelines(info, [c.id for c in page.items])
    return CustomerConnection(
        edges=[
            CustomerEdge(node=Customer(record=c), cursor=encode_cursor(c.created_at, c.id))
            for c in page.items
        ],
        page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
    )


def _object(value: object, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(field, "must be a JSON object")
    return value


def _external_ids(values: list[Any] | None) -> list[ExternalId]:
    return [ExternalId(v.source, v.external_id) for v in values or []]


def _address(free: object, parts: Any) -> Any:  # noqa: ANN401
    """The address given as free text or in parts (not both); strawberry.UNSET stays."""
    from strawberry import UNSET  # noqa: PLC0415

    from vault.customers.addresses import PostalAddress  # noqa: PLC0415

    if parts is UNSET or (parts is None and free is not UNSET):
        return free
    if parts is None:  # postalAddress: null alone clears the address
        return None
    if free is not None and free is not UNSET:
        raise InvalidInput("postalAddress", "give address or postalAddress, not both")
    return PostalAddress(
        street=parts.street, city=parts.city, region=parts.region,
        postal_code=parts.postal_code, country=parts.country,
    )  # fmt: skip


def create_customer(info: Ctx, data: CustomerInput) -> Customer:
    ctx = info.context
    record = CustomerInputRecord(
        email=data.email, phone=data.phone, first_name=data.first_name,
        last_name=data.last_name, birth_date=data.birth_date,
        address=_address(data.address, data.postal_address), locale=data.locale,
        tier=data.tier, tags=data.tags or [],
        attributes=_object(data.attributes, "attributes"),
        external_ids=_external_ids(data.external_ids),
    )  # fmt: skip
    with atomic(info) as session:
        return Customer(record=ctx.vault.customers.create(session, record))


def update_customer(info: Ctx, customer_id: str, data: CustomerPatchInput) -> Customer:
    from strawberry import UNSET  # noqa: PLC0415

    from vault.customers import UNSET as DOMAIN_UNSET  # noqa: PLC0415

    def keep(value: Any) -> Any:  # noqa: ANN401
        return DOMAIN_UNSET if value is UNSET else value

    ctx = info.context
    patch = CustomerPatch(
        email=keep(data.email), phone=keep(data.phone), first_name=keep(data.first_name),
        last_name=keep(data.last_name), birth_date=keep(data.birth_date),
        address=keep(_address(data.address, data.postal_address)),
        locale=keep(data.locale), tier=keep(data.tier), tags=keep(data.tags),
        attributes=keep(data.attributes),
        add_external_ids=_external_ids(data.add_external_ids),
    )  # fmt: skip
    with atomic(info) as session:
        return Customer(record=ctx.vault.customers.update(session, parse_id(customer_id), patch))


def record_interactions(info: Ctx, items: list[InteractionInput]) -> tuple[int, int]:
    ctx = info.context
    records = [
        InteractionInputRecord(
            channel=i.channel.value, type=i.type.value, occurred_at=i.occurred_at,
            customer_id=None if i.customer_id is None else parse_id(i.customer_id, "customerId"),
            customer_source=i.source, customer_external_id=i.customer_external_id,
            amount=i.amount, currency=i.currency, external_id=i.external_id,
            payload=None if i.payload is None else _object(i.payload, "payload"),
        )
        for i in items
    ]  # fmt: skip
    with atomic(info) as session:
        result = ctx.vault.interactions.record_many(session, records)
    return result.inserted, result.duplicates
