"""GraphQL for the access policy: the lines in force, why a field reaches a role, and
replacing the policy (administrators; audited)."""

from __future__ import annotations

import strawberry

from api.graphql.context import Ctx, atomic

__all__ = ["AccessExplanation", "Policy", "PolicyMutation", "PolicyQuery"]


@strawberry.type
class AccessExplanation:
    resolution: str
    rule: list[str] | None
    reason: str


@strawberry.type
class Policy:
    version: int
    lines: list[str]


@strawberry.type
class PolicyQuery:
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
class PolicyMutation:
    @strawberry.mutation(description="Replace the access policy (administrators); audited.")
    def replace_policy(self, info: Ctx, lines: list[str]) -> Policy | None:
        ctx = info.context
        with atomic(info) as session:
            version = ctx.vault.policies.replace(session, lines)
        return Policy(version=version, lines=lines)
