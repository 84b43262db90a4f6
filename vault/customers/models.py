"""The values the customers feature exchanges: what a caller gives (``CustomerInput``,
``CustomerPatch`` with its ``UNSET`` sentinel, ``CustomerFilter``, ``ExternalId``) and
what it gets back (``Customer``, ``MergeResult``). Frozen dataclasses; PII fields stay
out of every repr.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum
from typing import Any, Final

from vault.customers.addresses import PostalAddress
from vault.types import CustomerStatus, PiiField

__all__ = [
    "PII",
    "READABLE",
    "UNSET",
    "Customer",
    "CustomerFilter",
    "CustomerInput",
    "CustomerPatch",
    "ExternalId",
    "MergeResult",
]


class _Unset(Enum):
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset.UNSET

# The PII fields' names, as on ``Customer`` and in a caller's read resolutions.
PII: Final = tuple(f.value for f in PiiField)
# The statuses of a live record: one that is read, updated and merged.
READABLE: Final = (CustomerStatus.ACTIVE.value, CustomerStatus.RESTRICTED.value)


@dataclass(frozen=True, slots=True)
class ExternalId:
    """An id from a source system, e.g. ``ExternalId("shopify", "8812")``."""

    source: str
    external_id: str


@dataclass(frozen=True, slots=True)
class CustomerInput:
    email: str | None = field(default=None, repr=False)
    phone: str | None = field(default=None, repr=False)
    first_name: str | None = field(default=None, repr=False)
    last_name: str | None = field(default=None, repr=False)
    birth_date: date | str | None = field(default=None, repr=False)
    address: str | PostalAddress | None = field(default=None, repr=False)
    locale: str | None = None
    tier: str | None = None
    tags: Sequence[str] = ()
    attributes: Mapping[str, Any] = field(default_factory=dict)
    external_ids: Sequence[ExternalId] = ()


@dataclass(frozen=True, slots=True)
class CustomerPatch:
    """A partial update: ``UNSET`` leaves a field alone, ``None`` clears it."""

    email: str | _Unset | None = field(default=UNSET, repr=False)
    phone: str | _Unset | None = field(default=UNSET, repr=False)
    first_name: str | _Unset | None = field(default=UNSET, repr=False)
    last_name: str | _Unset | None = field(default=UNSET, repr=False)
    birth_date: date | str | _Unset | None = field(default=UNSET, repr=False)
    address: str | PostalAddress | _Unset | None = field(default=UNSET, repr=False)
    locale: str | _Unset | None = UNSET
    tier: str | _Unset | None = UNSET
    tags: Sequence[str] | _Unset = UNSET
    attributes: Mapping[str, Any] | _Unset = UNSET
    add_external_ids: Sequence[ExternalId] = ()


@dataclass(frozen=True, slots=True)
class Customer:
    """A decrypted customer. Its repr shows the id and status only."""

    id: uuid.UUID
    status: CustomerStatus
    email: str | None = field(repr=False)
    phone: str | None = field(repr=False)
    first_name: str | None = field(repr=False)
    last_name: str | None = field(repr=False)
    birth_date: str | None = field(repr=False)  # ISO date, or "--MM-DD" when masked
    address: str | None = field(repr=False)  # one line when clear, "City, CC" when masked
    locale: str | None = field(repr=False)
    tier: str | None = field(repr=False)
    tags: list[str] = field(repr=False)
    attributes: dict[str, Any] = field(repr=False)
    external_ids: list[ExternalId] = field(repr=False)
    created_at: datetime = field(repr=False)
    updated_at: datetime = field(repr=False)
    # Grows by one with every change of the record; ``update(expected_version=)`` takes it.
    version: int
    # How each resource reached the caller: clear, masked or hidden (then it is None, or
    # empty): the PII fields, locale, tier, tags, attributes, undeclared_attributes and
    # attr:<name> per declared PII attribute. ``attributes`` holds only what was shown.
    resolutions: dict[str, str] = field(default_factory=dict, repr=False)
    # The address's parts when it was given in parts: all of them in clear, the city and
    # country only when masked.
    postal_address: PostalAddress | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class CustomerFilter:
    """What a page of customers is limited to; every condition is part of the page's SQL
    statement (``queries.page_rows``), so a page is cut after filtering."""

    tier: str | None = None
    locale: str | None = None
    tag: str | None = None
    statuses: Sequence[CustomerStatus] = ()
    created_after: datetime | None = None
    created_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class MergeResult:
    customer: Customer
    merged_id: uuid.UUID
    moved_interactions: int
    moved_external_ids: int
    filled_fields: list[str]
