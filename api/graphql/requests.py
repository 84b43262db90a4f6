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
from typing import Annotated, Any, ClassVar, cast

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
    described_enum,
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

DsrType = described_enum(
    DsrTypeEnum,
    "DsrType",
    "What a data subject asks for (GDPR Art. 15-21).",
    {
        "ACCESS": "A copy of their data (Art. 15).",
        "PORTABILITY": "Their data in a machine-readable form (Art. 20).",
        "ERASURE": "To be forgotten: crypto-shredding (Art. 17).",
        "RECTIFICATION": "A correction of their data (Art. 16).",
        "RESTRICTION": "Processing restricted (Art. 18).",
        "OBJECTION": "An objection to processing, e.g. direct marketing (Art. 21).",
    },
)
DsrStatus = described_enum(
    DsrStatusEnum,
    "DsrStatus",
    "Where a data subject request stands.",
    {
        "RECEIVED": "Filed; the requester's identity is not verified yet.",
        "VERIFIED": "The one-time token was verified.",
        "IN_PROGRESS": "Being carried out.",
        "COMPLETED": "Done.",
        "REJECTED": "Refused, with a recorded reason.",
    },
)
Reason = Annotated[str, strawberry.argument(description="Why, recorded with the change.")]


def _dsr_id(ctx: GraphQLContext, value: str) -> uuid.UUID:
    return parse_id(ctx, value, kind="data subject request")


@strawberry.type(description="One step in a request's history.")
class DsrStep:
    at: datetime = strawberry.field(description="When.")
    status: DsrStatusEnum = strawberry.field(description="The state it moved to.")
    actor: str = strawberry.field(description="Who moved it.")
    note: str | None = strawberry.field(description="A reason or remark.")


@strawberry.type(description="A data subject request and where it stands.")
class DsrRequest(Node):
    NODE_TYPE: ClassVar[str] = "DsrRequest"
    request_id: strawberry.ID = strawberry.field(
        description="The request's id (a UUID), as the CLI and the privacy page name it."
    )
    customer_id: strawberry.ID = strawberry.field(description="The data subject's id.")
    type: DsrTypeEnum = strawberry.field(description="What is asked.")
    status: DsrStatusEnum = strawberry.field(description="Where it stands.")
    received_at: datetime = strawberry.field(description="When it was filed.")
    due_at: datetime = strawberry.field(description="One calendar month after receipt.")
    overdue: bool = strawberry.field(description="Whether it is past due and still open.")
    extended_at: datetime | None = strawberry.field(description="When it was extended.")
    extension_reason: str | None = strawberry.field(description="Why it was extended.")
    verified_at: datetime | None = strawberry.field(description="When identity was verified.")
    completed_at: datetime | None = strawberry.field(description="When it was closed.")
    rejection_reason: str | None = strawberry.field(description="Why it was refused.")
    requested_by: str = strawberry.field(description="Who filed it.")
    result: JSON = strawberry.field(description="What carrying it out did (ids, counts).")
    history: list[DsrStep] = strawberry.field(description="Every step, oldest first.")

    def node_uuid(self) -> uuid.UUID:
        return uuid.UUID(str(self.request_id))


@strawberry.type(description="A data subject request in a page, with its cursor.")
class DsrRequestEdge:
    node: DsrRequest = strawberry.field(description="The request.")
    cursor: str = strawberry.field(description="Pass it as `after` to read on from here.")


@strawberry.type(description="A page of data subject requests, most urgent first.")
class DsrRequestConnection:
    edges: list[DsrRequestEdge] = strawberry.field(description="The requests.")
    page_info: PageInfo = strawberry.field(description="Whether more follow.")
    counter: strawberry.Private[Callable[[], int]]

    @strawberry.field(
        description="How many requests the whole list holds for the caller (the same "
        "filters), counted without reading any; audited as dsr.count."
    )
    def total_count(self) -> int:
        return self.counter()


@strawberry.type(description="A new request; the one-time token is shown this once.")
class FiledDsrRequest:
    request: DsrRequest = strawberry.field(description="The request filed.")
    verification_token: str = strawberry.field(
        description="Give it to the requester: verifyDsrRequest takes it (24 hours, once)."
    )


@strawberry.type(
    description="A processed request: its receipt (erasure), or its bundle when the data "
    "subject carried out its own access or portability request."
)
class ProcessedDsrRequest:
    request: DsrRequest = strawberry.field(description="The request, now completed.")
    bundle: JSON | None = strawberry.field(description="Access and portability: every item.")
    bundle_zip: str | None = strawberry.field(description="The bundle as a zip, base64.")
    receipt: JSON | None = strawberry.field(description="Erasure: the signed receipt.")


@strawberry.type(description="Everything stored about a data subject, as JSON and as a zip.")
class DsrBundle:
    bundle: JSON = strawberry.field(description="Every item, as JSON.")
    bundle_zip: str = strawberry.field(description="bundle.json and one CSV per table, base64.")


def _zip(bundle: ExportBundle) -> str:
    return base64.b64encode(bundle.to_zip()).decode("ascii")


@strawberry.type(description="A legal hold: while active, the customer cannot be erased.")
class LegalHold:
    id: strawberry.ID = strawberry.field(description="The hold's id.")
    customer_id: strawberry.ID = strawberry.field(description="The customer held.")
    reason: str = strawberry.field(description="Why.")
    placed_by: str = strawberry.field(description="Who placed it.")
    placed_at: datetime = strawberry.field(description="When.")
    lifted_at: datetime | None = strawberry.field(description="When it was lifted.")
    active: bool = strawberry.field(description="Whether it is in force.")


@strawberry.input(description="A data subject request to file.")
class DsrRequestInput:
    type: DsrTypeEnum = strawberry.field(description="What is asked.")
    customer_id: strawberry.ID = strawberry.field(description="The data subject's id.")
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
        status: Annotated[
            DsrStatusEnum | None, strawberry.argument(description="In this state only.")
        ] = None,
        overdue: Annotated[
            bool | None,
            strawberry.argument(description="true: only overdue ones; false: only the others."),
        ] = None,
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
    def create_dsr_request(
        self,
        info: Ctx,
        input: Annotated[DsrRequestInput, strawberry.argument(description="The request.")],
    ) -> FiledDsrRequest | None:
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
    def verify_dsr_request(
        self,
        info: Ctx,
        id: IdArg,
        token: Annotated[str, strawberry.argument(description="The token createDsrRequest gave.")],
    ) -> DsrRequest | None:
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
    def reject_dsr_request(self, info: Ctx, id: IdArg, reason: Reason) -> DsrRequest | None:
        ctx = info.context
        with atomic(info) as session:
            view = ctx.privacy.desk.reject(session, _dsr_id(ctx, id), reason=reason)
        return dsr_request(view)

    @strawberry.mutation(description="Extend the due date once, by one or two months.")
    def extend_dsr_request(
        self,
        info: Ctx,
        id: IdArg,
        months: Annotated[int, strawberry.argument(description="1 or 2.")],
        reason: Reason,
    ) -> DsrRequest | None:
        ctx = info.context
        with atomic(info) as session:
            view = ctx.privacy.desk.extend(session, _dsr_id(ctx, id), months=months, reason=reason)
        return dsr_request(view)

    @strawberry.mutation(description="Place a legal hold: the customer cannot be erased.")
    def place_legal_hold(self, info: Ctx, customer_id: IdArg, reason: Reason) -> LegalHold | None:
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
