"""What an import exchanges: the columns a file may have, one record read from it, a
skipped row and the report of a whole import."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "ADDRESS_PARTS",
    "CUSTOMER_COLUMNS",
    "IMPORTED_TABLES",
    "INTERACTION_COLUMNS",
    "ImportReport",
    "Record",
    "RowError",
]

CUSTOMER_COLUMNS: Final = (
    "email", "phone", "first_name", "last_name", "birth_date", "address", "address_street",
    "address_city", "address_region", "address_postal_code", "address_country", "locale",
    "tier", "tags", "attributes", "source", "external_id",
)  # fmt: skip
ADDRESS_PARTS: Final = ("street", "city", "region", "postal_code", "country")
INTERACTION_COLUMNS: Final = (
    "customer_id", "source", "customer_external_id", "channel", "type", "occurred_at",
    "amount", "currency", "external_id", "payload",
)  # fmt: skip
# The tables an import of each kind fills: ``cvault import`` analyses them after.
IMPORTED_TABLES: Final = {
    "customers": ("customers", "customer_external_ids"),
    "interactions": ("interactions",),
}


@dataclass(frozen=True, slots=True)
class RowError:
    """A skipped row: the 1-based line it starts on and what is wrong, without its values."""

    line: int
    reason: str


@dataclass(frozen=True, slots=True)
class ImportReport:
    """``read == accepted + duplicates + len(rejected)``; ``rejected`` is sorted by line.
    ``linked``: of the duplicates, how many gave their external id to the customer they
    matched (``on_duplicate=link``)."""

    read: int
    accepted: int
    duplicates: int
    rejected: list[RowError] = field(default_factory=list)
    linked: int = 0


@dataclass(frozen=True, slots=True)
class Record:
    """One data row: CSV cells are strings, JSONL values any JSON; absent keys mean null."""

    line: int
    values: Mapping[str, object]
    is_csv: bool
