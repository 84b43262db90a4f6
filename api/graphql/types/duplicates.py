"""Duplicate candidates: two customers that may be one person, and why."""

from __future__ import annotations

import strawberry

from api.graphql.types.common import described_enum
from api.graphql.types.customers import Customer
from vault.customers import DuplicateReason as ReasonEnum

__all__ = ["DuplicateCandidate", "DuplicateReason"]

DuplicateReason = described_enum(
    ReasonEnum,
    "DuplicateReason",
    "What two customers share, compared in clear inside the vault.",
    {
        "EMAIL": "The same email address (normalised).",
        "PHONE": "The same phone number (E.164).",
        "NAME_AND_BIRTH_DATE": "The same full name (normalised) and birth date.",
    },
)


@strawberry.type(
    description="Two live customers that may be one person: merge them with "
    "`mergeCustomers(keepId: keep.id, mergeId: duplicate.id)`, or leave them be."
)
class DuplicateCandidate:
    keep: Customer = strawberry.field(description="The older record: the one to keep.")
    duplicate: Customer = strawberry.field(description="The newer record.")
    reasons: list[DuplicateReason] = strawberry.field(  # type: ignore[valid-type]
        description="What they share."
    )
