"""GraphQL for the audit trail: the log's pages, its signed checkpoint, inclusion proofs.

Thin, like every resolver: parse the filter, call the audit trail with the caller's
session, map the result to the types of :mod:`api.graphql.types.audit`.
"""

from __future__ import annotations

from typing import Annotated

import strawberry

from api.graphql.context import Ctx, GraphQLContext
from api.graphql.types.audit import (
    AuditCheckpoint,
    AuditEntryConnection,
    AuditFilterInput,
    AuditInclusionProof,
    audit_connection,
)
from api.graphql.types.common import (
    NO_PAGE,
    AfterArg,
    BeforeArg,
    FirstArg,
    LastArg,
    count_only,
    page_sizes,
    parse_id,
    taken,
)
from audit.entries import AuditAction
from audit.export import b64
from vault.audit_trail.log import AuditFilter
from vault.errors import InvalidInput

__all__ = ["AuditQuery"]


@strawberry.type
class AuditQuery:
    @strawberry.field(description="The audit trail, newest first (compliance officers).")
    def audit_log(  # noqa: PLR0917 - GraphQL arguments
        self,
        info: Ctx,
        first: FirstArg = 20,
        after: AfterArg = None,
        filter: Annotated[
            AuditFilterInput | None, strawberry.argument(description="Which entries.")
        ] = None,
        last: LastArg = None,
        before: BeforeArg = None,
    ) -> AuditEntryConnection:
        ctx = info.context
        first_, last_ = page_sizes(info, first, last)
        wanted = _audit_filter(ctx, filter)

        def count() -> int:
            return ctx.vault.trail.count(ctx.session, filter_=wanted)

        if count_only(info, first_, last_):
            return audit_connection(NO_PAGE, taken(count()))
        page = ctx.vault.trail.page(
            ctx.session, first=first_, after=after, last=last_, before=before, filter_=wanted
        )
        return audit_connection(page, count)

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
    def audit_inclusion_proof(
        self,
        info: Ctx,
        entry_id: Annotated[strawberry.ID, strawberry.argument(description="The entry's id.")],
    ) -> AuditInclusionProof:
        ctx = info.context
        entry = parse_id(ctx, entry_id, "entryId", "audit entry")
        proof = ctx.vault.trail.inclusion_proof(ctx.session, entry)
        return AuditInclusionProof(
            entry_id=strawberry.ID(str(proof.entry_id)),
            position=proof.position,
            tree_size=proof.tree_size,
            leaf_hash=b64(proof.leaf_hash),
            proof=[b64(p) for p in proof.proof],
            checkpoint=proof.checkpoint,
        )


def _audit_filter(ctx: GraphQLContext, given: AuditFilterInput | None) -> AuditFilter | None:
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
        customer_id=(
            None
            if given.customer_id is None
            else parse_id(ctx, given.customer_id, "filter.customerId")
        ),
        action=action,
    )
