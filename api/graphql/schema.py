"""The schema: queries and mutations named by the contract in issue 3."""

from __future__ import annotations

import strawberry

from api.graphql import resolvers
from api.graphql.context import atomic
from api.graphql.privacy import ConsentMutation, ConsentQuery
from api.graphql.requests import RequestMutation, RequestQuery
from api.graphql.segments import SegmentMutation, SegmentQuery, WebhookMutation, WebhookQuery
from api.graphql.types import (
    AccessExplanation,
    AuditCheckpoint,
    AuditEntryConnection,
    AuditFilterInput,
    AuditInclusionProof,
    Ctx,
    Customer,
    CustomerConnection,
    CustomerFilter,
    CustomerInput,
    CustomerPatchInput,
    IdArg,
    InteractionInput,
    MergeResult,
    Policy,
    RecordResult,
    audit_connection,
    parse_id,
)
from audit.entries import AuditAction
from audit.export import b64
from vault.audit_trail.log import AuditFilter
from vault.errors import InvalidInput
from vault.interactions.service import MAX_BATCH
from vault.pagination import MAX_PAGE

__all__ = ["Mutation", "Query", "build_schema"]


@strawberry.type
class Query(ConsentQuery, RequestQuery, SegmentQuery, WebhookQuery):
    @strawberry.field
    def customer(self, info: Ctx, id: IdArg) -> Customer:
        return resolvers.customer(info, id)

    @strawberry.field
    def customer_by_email(self, info: Ctx, email: str) -> Customer | None:
        return resolvers.customer_by_email(info, email)

    @strawberry.field
    def customer_by_phone(self, info: Ctx, phone: str) -> Customer | None:
        return resolvers.customer_by_phone(info, phone)

    @strawberry.field(description=f"A page of customers, at most {MAX_PAGE} at a time.")
    def customers(
        self,
        info: Ctx,
        first: int = 20,
        after: str | None = None,
        filter: CustomerFilter | None = None,
    ) -> CustomerConnection:
        return resolvers.customers(info, first, after, filter)

    @strawberry.field(description="A data subject's own record.")
    def me(self, info: Ctx) -> Customer:
        return resolvers.me(info)

    @strawberry.field(description="The audit trail, newest first (compliance officers).")
    def audit_log(
        self,
        info: Ctx,
        first: int = 20,
        after: str | None = None,
        filter: AuditFilterInput | None = None,
    ) -> AuditEntryConnection:
        ctx = info.context
        page = ctx.vault.trail.page(
            ctx.session, first=first, after=after, filter_=_audit_filter(filter)
        )
        return audit_connection(page)

    @strawberry.field(description="The latest signed tree head of the audit log.")
    def audit_checkpoint(self, info: Ctx) -> AuditCheckpoint | None:
        ctx = info.context
        found = ctx.vault.trail.checkpoint(ctx.session)
        if found is None:
            return None
        return AuditCheckpoint(
            tree_size=found.tree_size,
            root_hash=b64(found.root_hash),
            note=found.note,
            created_at=found.created_at,
            public_key=ctx.vault.audit.public_vkey,
        )

    @strawberry.field(description="An entry's inclusion proof into the latest checkpoint.")
    def audit_inclusion_proof(self, info: Ctx, entry_id: strawberry.ID) -> AuditInclusionProof:
        ctx = info.context
        proof = ctx.vault.trail.inclusion_proof(ctx.session, parse_id(entry_id, "entryId"))
        return AuditInclusionProof(
            entry_id=strawberry.ID(str(proof.entry_id)),
            position=proof.position,
            tree_size=proof.tree_size,
            leaf_hash=b64(proof.leaf_hash),
            proof=[b64(p) for p in proof.proof],
            checkpoint=proof.checkpoint,
        )

    @strawberry.field(description="The access policy in force (administrators).")
    def policy(self, info: Ctx) -> Policy:
        version, lines = info.context.vault.policies.current(info.context.session)
        return Policy(version=version, lines=lines)

    @strawberry.field(description="Which policy line decides how a field reaches a role.")
    def explain_access(self, info: Ctx, role: str, field: str, purpose: str) -> AccessExplanation:
        found = info.context.vault.authz.explain(info.context.session, role, field, purpose)
        return AccessExplanation(
            resolution=found.resolution.value,
            rule=None if found.rule is None else list(found.rule),
            reason=found.reason,
        )


@strawberry.type
class Mutation(ConsentMutation, RequestMutation, SegmentMutation, WebhookMutation):
    @strawberry.mutation
    def create_customer(self, info: Ctx, input: CustomerInput) -> Customer | None:
        return resolvers.create_customer(info, input)

    @strawberry.mutation
    def update_customer(
        self,
        info: Ctx,
        id: IdArg,
        input: CustomerPatchInput,
    ) -> Customer | None:
        return resolvers.update_customer(info, id, input)

    @strawberry.mutation
    def merge_customers(self, info: Ctx, keep_id: IdArg, merge_id: IdArg) -> MergeResult | None:
        ctx = info.context
        with atomic(info) as session:
            result = ctx.vault.customers.merge(
                session, parse_id(keep_id, "keepId"), parse_id(merge_id, "mergeId")
            )
        return MergeResult(
            customer=Customer(record=result.customer),
            merged_id=strawberry.ID(str(result.merged_id)),
            moved_interactions=result.moved_interactions,
            filled_fields=result.filled_fields,
        )

    @strawberry.mutation(description="Replace the access policy (administrators); audited.")
    def replace_policy(self, info: Ctx, lines: list[str]) -> Policy | None:
        ctx = info.context
        with atomic(info) as session:
            version = ctx.vault.policies.replace(session, lines)
        return Policy(version=version, lines=lines)

    @strawberry.mutation(description=f"At most {MAX_BATCH} per call; idempotent on externalId.")
    def record_interactions(
        self, info: Ctx, interactions: list[InteractionInput]
    ) -> RecordResult | None:
        if len(interactions) > MAX_BATCH:
            raise InvalidInput("interactions", f"at most {MAX_BATCH} per call")
        inserted, duplicates = resolvers.record_interactions(info, interactions)
        return RecordResult(inserted=inserted, duplicates=duplicates)


def _audit_filter(given: AuditFilterInput | None) -> AuditFilter | None:
    if given is None:
        return None
    try:
        action = None if given.action is None else AuditAction(given.action)
    except ValueError:
        raise InvalidInput("filter.action", "is not an audit action") from None
    return AuditFilter(
        since=given.since,
        until=given.until,
        actor=given.actor,
        customer_id=None if given.customer_id is None else parse_id(given.customer_id),
        action=action,
    )


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(query=Query, mutation=Mutation)
