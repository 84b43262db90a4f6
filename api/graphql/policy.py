"""GraphQL for the access policy: the lines in force, why a field reaches a role, and
replacing the policy (administrators; audited)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from api.graphql.context import Ctx, atomic

__all__ = ["AccessExplanation", "Policy", "PolicyMutation", "PolicyQuery"]


@strawberry.type(description="How a field reaches a role for a purpose, and why.")
class AccessExplanation:
    resolution: str = strawberry.field(description="clear, masked or hidden.")
    rule: list[str] | None = strawberry.field(
        description="The deciding policy line; null when nothing allows it (default deny)."
    )
    reason: str = strawberry.field(description="Why, in words.")
    mask_format: str | None = strawberry.field(
        description="The mask format a masked field shows (default, last4, country_code, "
        "first_letter, local_hidden, domain_only, initials, year_only, country_only, "
        "redacted); null when the field is not masked."
    )
    format_rule: list[str] | None = strawberry.field(
        description="The p3 policy line that names the mask format; null for the default."
    )


@strawberry.type(description="The access policy: Casbin lines, versioned.")
class Policy:
    version: int = strawberry.field(description="0 is the shipped default.")
    lines: list[str] = strawberry.field(description="The policy lines (CSV).")


@strawberry.type
class PolicyQuery:
    @strawberry.field(description="The access policy in force (administrators).")
    def policy(self, info: Ctx) -> Policy:
        version, lines = info.context.vault.policies.current(info.context.session)
        return Policy(version=version, lines=lines)

    @strawberry.field(description="Which policy line decides how a field reaches a role.")
    def explain_access(
        self,
        info: Ctx,
        role: Annotated[str, strawberry.argument(description="A role, e.g. support_agent.")],
        field: Annotated[str, strawberry.argument(description="A field, e.g. email.")],
        purpose: Annotated[str, strawberry.argument(description="A purpose, e.g. support.")],
    ) -> AccessExplanation:
        found = info.context.vault.authz.explain(info.context.session, role, field, purpose)
        return AccessExplanation(
            resolution=found.resolution.value,
            rule=None if found.rule is None else list(found.rule),
            reason=found.reason,
            mask_format=found.mask_format,
            format_rule=None if found.format_rule is None else list(found.format_rule),
        )


@strawberry.type
class PolicyMutation:
    @strawberry.mutation(description="Replace the access policy (administrators); audited.")
    def replace_policy(
        self,
        info: Ctx,
        lines: Annotated[
            list[str], strawberry.argument(description="The whole new policy, line by line.")
        ],
    ) -> Policy | None:
        ctx = info.context
        with atomic(info) as session:
            version = ctx.vault.policies.replace(session, lines)
        return Policy(version=version, lines=lines)
