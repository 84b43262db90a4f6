"""What callers send to create, change and find customers: the input types."""

from __future__ import annotations

from datetime import datetime
from typing import Any

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


@strawberry.input(description="A customer's id in another system.")
class ExternalIdInput:
    source: str = strawberry.field(description="The system, e.g. shop or crm.")
    external_id: str = strawberry.field(description="The customer's id there.")


@strawberry.input(description="An address in parts; masked, it shows the city and country only.")
class AddressInput:
    street: str | None = strawberry.field(default=None, description="Street lines (\\n).")
    city: str | None = strawberry.field(default=None, description="City or town.")
    region: str | None = strawberry.field(default=None, description="State, province, region.")
    postal_code: str | None = strawberry.field(default=None, description="Postal code.")
    country: str | None = strawberry.field(default=None, description="ISO 3166-1 alpha-2.")


@strawberry.input(description="A new customer; every field may be left out.")
class CustomerInput:
    email: str | None = strawberry.field(default=None, description="E-mail address.")
    phone: str | None = strawberry.field(
        default=None, description="Phone number; without +, the default region is assumed."
    )
    first_name: str | None = strawberry.field(default=None, description="Given name.")
    last_name: str | None = strawberry.field(default=None, description="Family name.")
    birth_date: str | None = strawberry.field(default=None, description="ISO date.")
    address: str | None = strawberry.field(
        default=None, description="Free text (masked as ***); prefer postalAddress."
    )
    postal_address: AddressInput | None = strawberry.field(
        default=None, description="The address in parts."
    )
    locale: str | None = strawberry.field(default=None, description="BCP 47, e.g. fa-IR.")
    tier: str | None = strawberry.field(default=None, description="Loyalty tier.")
    tags: list[str] | None = strawberry.field(default=None, description="Free labels.")
    attributes: JSON | None = strawberry.field(
        default=None,
        description="Declared custom attributes only (name: value of the declared type); "
        "an undeclared name is refused.",
    )
    external_ids: list[ExternalIdInput] | None = strawberry.field(
        default=None, description="The customer's ids in other systems."
    )


def _patch(description: str) -> Any:  # noqa: ANN401 - a field of whatever type it sits on
    return strawberry.field(default=strawberry.UNSET, description=description)


@strawberry.input(description="Only the fields given change; null clears a field.")
class CustomerPatchInput:
    email: str | None = _patch("E-mail address.")
    phone: str | None = _patch("Phone number.")
    first_name: str | None = _patch("Given name.")
    last_name: str | None = _patch("Family name.")
    birth_date: str | None = _patch("ISO date.")
    address: str | None = _patch("Free text; prefer postalAddress.")
    postal_address: AddressInput | None = _patch("The address in parts.")
    locale: str | None = _patch("BCP 47, e.g. th-TH.")
    tier: str | None = _patch("Loyalty tier.")
    tags: list[str] | None = _patch("Free labels (the whole list).")
    attributes: JSON | None = strawberry.field(
        default=strawberry.UNSET,
        description="The attributes named change, the others stay; null as a value "
        "removes that attribute. Only declared names may be set.",
    )
    add_external_ids: list[ExternalIdInput] | None = strawberry.field(
        default=None, description="Ids in other systems to add (the others stay)."
    )


@strawberry.input(description="Which customers to list; every given condition holds.")
class CustomerFilter:
    tier: str | None = strawberry.field(default=None, description="This tier.")
    locale: str | None = strawberry.field(default=None, description="This locale.")
    tag: str | None = strawberry.field(default=None, description="Carrying this tag.")
    status: list[StatusEnum] | None = strawberry.field(
        default=None, description="In one of these states."
    )
    created_after: datetime | None = strawberry.field(
        default=None, description="Created at or after."
    )
    created_before: datetime | None = strawberry.field(default=None, description="Created before.")
