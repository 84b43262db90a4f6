"""What callers send to create, change and find customers: the input types."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from vault.types import CustomerStatus as StatusEnum

__all__ = [
    "AddressInput",
    "CustomerFilter",
    "CustomerInput",
    "CustomerPatchInput",
    "ExternalIdInput",
]


@strawberry.input
class ExternalIdInput:
    source: str
    external_id: str


@strawberry.input(description="An address in parts; masked, it shows the city and country only.")
class AddressInput:
    street: str | None = strawberry.field(default=None, description="Street lines (\\n).")
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = strawberry.field(default=None, description="ISO 3166-1 alpha-2.")


@strawberry.input
class CustomerInput:
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    birth_date: str | None = None
    address: str | None = strawberry.field(
        default=None, description="Free text (masked as ***); prefer postalAddress."
    )
    postal_address: AddressInput | None = None
    locale: str | None = None
    tier: str | None = None
    tags: list[str] | None = None
    attributes: JSON | None = strawberry.field(
        default=None,
        description="Declared custom attributes only (name: value of the declared type); "
        "an undeclared name is refused.",
    )
    external_ids: list[ExternalIdInput] | None = None


@strawberry.input(description="Only the fields given change; null clears a field.")
class CustomerPatchInput:
    email: str | None = strawberry.UNSET
    phone: str | None = strawberry.UNSET
    first_name: str | None = strawberry.UNSET
    last_name: str | None = strawberry.UNSET
    birth_date: str | None = strawberry.UNSET
    address: str | None = strawberry.UNSET
    postal_address: AddressInput | None = strawberry.UNSET
    locale: str | None = strawberry.UNSET
    tier: str | None = strawberry.UNSET
    tags: list[str] | None = strawberry.UNSET
    attributes: JSON | None = strawberry.field(
        default=strawberry.UNSET,
        description="The attributes named change, the others stay; null as a value "
        "removes that attribute. Only declared names may be set.",
    )
    add_external_ids: list[ExternalIdInput] | None = None


@strawberry.input
class CustomerFilter:
    tier: str | None = None
    locale: str | None = None
    tag: str | None = None
    status: list[StatusEnum] | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
