"""GraphQL for data subject requests and legal holds: thin calls into the DSR desk.

A data subject files, verifies and follows its own requests; compliance officers see
every request with its due date (``dsrRequests(status, overdue)``), process, reject and
extend them, and place legal holds. Every decision is made in :mod:`consent.dsr.desk`.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar, cast

import strawberry
from strawberry.scalars import JSON

from api.graphql.context import Ctx, GraphQLContext, atomic, path_of
from api.graphql.types.common import (
    NO_PAGE,
    AfterArg,
    BeforeArg,
    FirstArg,
    IdArg,
    LastArg,
    PageInfo,
    count_only,
    page_info,
    page_sizes,
    parse_id,
    taken,
)
from api.graphql.types.node import Node
from consent.dsr.export import ExportBundle
from consent.dsr.requests import DsrInput, DsrView, HoldView
from policies import Role
from vault.pagination import Page
from vault.types import DsrStatus as DsrStatusEnum
from vault.types import DsrType as DsrTypeEnum

__all__ = ["DsrRequest", "RequestMutation", "RequestQuery", "dsr_request"]

DsrType = strawberry.enum(DsrTypeEnum, name="DsrType")
DsrStatus = strawberry.enum(DsrStatusEnum, name="DsrStatus")


def _dsr_id(ctx: GraphQLContext, value: str) -> uuid.UUID:
    return parse_id(ctx, value, kind="data subject request")


@strawberry.type(description="One step in a request's history.")
class DsrStep:
    at: datetime
    status: DsrStatusEnum
    actor: str
    note: str | None


@strawberry.type(description="A data subject request and where it stands.")
class DsrRequest(Node):
    NODE_TYPE: ClassVar[str] = "DsrRequest"
    request_id: strawberry.ID = strawberry.field(
        description="The request's id (a UUID), as the CLI and the privacy page name it."
    )
    customer_id: strawberry.ID
    type: DsrTypeEnum
    status: DsrStatusEnum
    received_at: datetime
    due_at: datetime
    overdue: bool
    extended_at: datetime | None
    extension_reason: str | None
    verified_at: datetime | None
    completed_at: datetime | None
    rejection_reason: str | None
    requested_by: str
    result: JSON
    history: list[DsrStep]

    def node_uuid(self) -> uuid.UUID:
        return uuid.UUID(str(self.request_id))


@strawberry.type
class DsrRequestEdge:
    node: DsrRequest
    cursor: str


@strawberry.type
class DsrRequestConnection:
    edges: list[DsrRequestEdge]
    page_info: PageInfo
    counter: strawberry.Private[Callable[[], int]]

    @strawberry.field(
        description="How many requests the whole list holds for the caller (the same "
        "filters), counted without reading any; audited as dsr.count."
    )
    def total_count(self) -> int:
        return self.counter()


@strawberry.type(description="A new request; the one-time token is shown this once.")
class FiledDsrRequest:
    request: DsrRequest
    verification_token: str


@strawberry.type(
    description="A processed request: its receipt (erasure), or its bundle when the data "
    "subject carried out its own access or portability request."
)
class ProcessedDsrRequest:
    request: DsrRequest
    bundle: JSON | None = strawberry.field(description="Access and portability: every item.")
    bundle_zip: str | None = strawberry.field(description="The bundle as a zip, base64.")
    receipt: JSON | None = strawberry.field(description="Erasure: the signed receipt.")


@strawberry.type(description="Everything stored about a data subject, as JSON and as a zip.")
class DsrBundle:
    bundle: JSON
    bundle_zip: str = strawberry.field(description="bundle.json and one CSV per table, base64.")


def _zip(bundle: ExportBundle) -> str:
    return base64.b64encode(bundle.to_zip()).decode("ascii")


@strawberry.type(description="A legal hold: while active, the customer cannot be erased.")
class LegalHold:
    id: strawberry.ID
    customer_id: strawberry.ID
    reason: str
    placed_by: str
    placed_at: datetime
    lifted_at: datetime | None
    active: bool


@strawberry.input
class DsrRequestInput:
    type: DsrTypeEnum
    customer_id: strawberry.ID
    details: JSON | None = strawberry.field(
        default=None,
        description='Rectification: {"field": "new value"}; objection: {"scope": ...}.',
    )


def dsr_request(view: DsrView) -> DsrRequest:
    """The GraphQL type of a request the desk returned."""
    return DsrRequest(
        request_id=strawberry.ID(str(view.id)),
        customer_id=strawberry.ID(str(view.customer_id)),
        type=view.type,
        status=view.status,
        received_at=view.received_at,
        due_at=view.due_at,
        overdue=view.overdue,
        extended_at=view.extended_at,
        extension_reason=view.extension_reason,
        verified_at=view.verified_at,
        completed_at=view.completed_at,
        rejection_reason=view.rejection_reason,
        requested_by=view.requested_by,
        result=cast(JSON, view.result),
        history=[
            DsrStep(at=e.at, status=e.status, actor=e.actor, note=e.note) for e in view.history
        ],
    )


def _request_connection(page: Page[DsrView], counter: Callable[[], int]) -> DsrRequestConnection:
    return DsrRequestConnection(
        edges=[
            DsrRequestEdge(node=dsr_request(v), cursor=page.cursor(n))
            for n, v in enumerate(page.items)
        ],
        page_info=page_info(page),
        counter=counter,
    )


def _hold(view: HoldView) -> LegalHold:
    return LegalHold(
        id=strawberry.ID(str(view.id)),
        customer_id=strawberry.ID(str(view.customer_id)),
        reason=view.reason,
        placed_by=view.placed_by,
        placed_at=view.placed_at,
        lifted_at=view.lifted_at,
        active=view.active,
    )


@strawberry.type
class RequestQuery:
    @strawberry.field(description="Data subject requests, most urgent first.")
    def dsr_requests(  # noqa: PLR0917 - GraphQL arguments
        self,
        info: Ctx,
        status: DsrStatusEnum | None = None,
        overdue: bool | None = None,
        first: FirstArg = 20,
        after: AfterArg = None,
        last: LastArg = None,
        before: BeforeArg = None,
    ) -> DsrRequestConnection:
        ctx = info.context
        first_, last_ = page_sizes(info, first, last)
        wanted = None if status is None else DsrStatusEnum(status).value

        def count() -> int:
            return ctx.privacy.desk.count(ctx.session, status=wanted, overdue=overdue)

        if count_only(info, first_, last_):
            return _request_connection(NO_PAGE, taken(count()))
        page = ctx.privacy.desk.list(
            ctx.session, status=wanted, overdue=overdue,
            first=first_, after=after, last=last_, before=before,
        )  # fmt: skip
        return _request_connection(page, count)

    @strawberry.field(description="One data subject request with its history.")
    def dsr_request(self, info: Ctx, id: IdArg) -> DsrRequest:
        ctx = info.context
        return dsr_request(ctx.privacy.desk.get(ctx.session, _dsr_id(ctx, id)))

    @strawberry.field(
        description="The bundle of your completed access or portability request (data subjects)."
    )
    def dsr_bundle(self, info: Ctx, id: IdArg) -> DsrBundle:
        ctx = info.context
        bundle = ctx.privacy.desk.bundle(ctx.session, _dsr_id(ctx, id))
        return DsrBundle(bundle=cast(JSON, bundle.document()), bundle_zip=_zip(bundle))

    @strawberry.field(description="A customer's legal holds (compliance officers).")
    def legal_holds(self, info: Ctx, customer_id: IdArg) -> list[LegalHold]:
        ctx = info.context
        holds = ctx.privacy.desk.holds(ctx.session, parse_id(ctx, customer_id, "customerId"))
        return [_hold(h) for h in holds]


@strawberry.type
class RequestMutation:
    @strawberry.mutation(description="File a request; returns the one-time verification token.")
    def create_dsr_request(self, info: Ctx, input: DsrRequestInput) -> FiledDsrRequest | None:
        ctx = info.context
        details: Any = input.details
        data = DsrInput(
            type=DsrTypeEnum(input.type).value,
            customer_id=parse_id(ctx, input.customer_id, "customerId"),
            details=details,
        )
        with atomic(info) as session:
            filed = ctx.privacy.desk.create(session, data)
        return FiledDsrRequest(
            request=dsr_request(filed.request), verification_token=filed.verification_token
        )

    @strawberry.mutation(description="Prove the requester's identity with the one-time token.")
    def verify_dsr_request(self, info: Ctx, id: IdArg, token: str) -> DsrRequest | None:
        ctx = info.context
        # A wrong token's attempt is counted in a transaction of its own (consent.dsr).
        with atomic(info) as session:
            return dsr_request(ctx.privacy.desk.verify(session, _dsr_id(ctx, id), token))

    @strawberry.mutation(description="Carry out a verified request (compliance officers).")
    def process_dsr_request(self, info: Ctx, id: IdArg) -> ProcessedDsrRequest | None:
        ctx = info.context
        with atomic(info) as session:
            outcome = ctx.privacy.desk.process(session, _dsr_id(ctx, id))
        bundle = outcome.bundle
        if bundle is not None and ctx.access.actor.role != Role.DATA_SUBJECT.value:
            # The desk carries the request out; the data itself goes to its subject only,
            # who downloads it with dsrBundle (the CLI writes it to a file for delivery).
            path = path_of(info)
            ctx.redacted.extend((f"{path}.bundle", f"{path}.bundleZip"))
            bundle = None
        return ProcessedDsrRequest(
            request=dsr_request(outcome.request),
            bundle=None if bundle is None else cast(JSON, bundle.document()),
            bundle_zip=None if bundle is None else _zip(bundle),
            receipt=None if outcome.receipt is None else cast(JSON, outcome.receipt),
        )

    @strawberry.mutation(description="Refuse a request, with the reason recorded.")
    def reject_dsr_request(self, info: Ctx, id: IdArg, reason: str) -> DsrRequest | None:
        ctx = info.context
        with atomic(info) as session:
            view = ctx.privacy.desk.reject(session, _dsr_id(ctx, id), reason=reason)
        return dsr_request(view)

    @strawberry.mutation(description="Extend the due date once, by one or two months.")
    def extend_dsr_request(
        self, info: Ctx, id: IdArg, months: int, reason: str
    ) -> DsrRequest | None:
        ctx = info.context
        with atomic(info) as session:
            view = ctx.privacy.desk.extend(session, _dsr_id(ctx, id), months=months, reason=reason)
        return dsr_request(view)

    @strawberry.mutation(description="Place a legal hold: the customer cannot be erased.")
    def place_legal_hold(self, info: Ctx, customer_id: IdArg, reason: str) -> LegalHold | None:
        ctx = info.context
        with atomic(info) as session:
            customer = parse_id(ctx, customer_id, "customerId")
            hold = ctx.privacy.desk.place_hold(session, customer, reason)
        return _hold(hold)

    @strawberry.mutation(description="Lift a legal hold.")
    def lift_legal_hold(self, info: Ctx, id: IdArg) -> LegalHold | None:
        ctx = info.context
        with atomic(info) as session:
            return _hold(ctx.privacy.desk.lift_hold(session, parse_id(ctx, id, kind="legal hold")))

    @strawberry.mutation(description="End a restriction of processing (Art. 18(3)).")
    def lift_restriction(self, info: Ctx, customer_id: IdArg) -> bool | None:
        ctx = info.context
        with atomic(info) as session:
            ctx.privacy.desk.lift_restriction(session, parse_id(ctx, customer_id, "customerId"))
        return True
