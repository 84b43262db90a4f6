"""Postal addresses stored as parts, so that a mask can show the city and country only.

An address is one PII field, encrypted as one value: the parts as a small JSON object
(``{"v":1,...}``). A free-text address (given as one string, or stored before parts
existed) stays free text: nothing in it can be told to be the city, so its mask shows
nothing (``***``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from vault.customers.countries import COUNTRY_CODES
from vault.errors import InvalidInput
from vault.text import check_text

__all__ = ["PostalAddress", "address_from_mapping", "address_text", "parse_address"]

_PARTS: Final = ("street", "city", "region", "postal_code", "country")
_LIMITS: Final = {"street": 1000, "city": 200, "region": 200, "postal_code": 32, "country": 64}
_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class PostalAddress:
    """An address in parts. ``street`` may hold several lines (``\\n``); ``country`` is an
    ISO 3166-1 alpha-2 code (``"TH"``). Its repr shows no part."""

    street: str | None = field(default=None, repr=False)
    city: str | None = field(default=None, repr=False)
    region: str | None = field(default=None, repr=False)
    postal_code: str | None = field(default=None, repr=False)
    country: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return "PostalAddress()"

    def parts(self) -> dict[str, str]:
        """The parts that are given, by name (``postal_code``, ...)."""
        named = {name: getattr(self, name) for name in _PARTS}
        return {name: value for name, value in named.items() if value}

    def formatted(self) -> str:
        """One line: street lines, city, region, postal code, country, comma-separated."""
        street = ", ".join(line.strip() for line in (self.street or "").splitlines() if line)
        parts = (street, self.city, self.region, self.postal_code, self.country)
        return ", ".join(p for p in parts if p)


def _checked(address: PostalAddress, where: str) -> PostalAddress:
    values: dict[str, str | None] = {}
    for name in _PARTS:
        value = getattr(address, name)
        if value is not None and not isinstance(value, str):
            raise InvalidInput(f"{where}.{name}", "must be text")
        if value is not None and not value.strip():
            value = None
        if value is not None:
            value = check_text(value, field=f"{where}.{name}", max_length=_LIMITS[name])
        values[name] = value
    country = values["country"]
    if country is not None:
        country = values["country"] = country.upper()
        if country not in COUNTRY_CODES:
            rule = "is not an ISO 3166-1 alpha-2 country code (TH, DE, US, ...)"
            raise InvalidInput(f"{where}.country", rule)
    if not any(values.values()):
        raise InvalidInput(where, "give at least one part of the address")
    return PostalAddress(**values)


def address_text(value: PostalAddress, where: str = "address") -> str:
    """The text to encrypt for an address in parts (validated; country upper-cased)."""
    parts = _checked(value, where).parts()
    return json.dumps({"v": _VERSION, **parts}, ensure_ascii=False, separators=(",", ":"))


def parse_address(text: str) -> PostalAddress | None:
    """The parts of a decrypted address, or None for a free-text one."""
    if not text.startswith('{"v":'):
        return None
    try:
        found = json.loads(text)
    except ValueError:
        return None
    if not isinstance(found, dict) or found.get("v") != _VERSION:
        return None
    return PostalAddress(**{name: found.get(name) for name in _PARTS})


def address_from_mapping(value: Mapping[str, Any], where: str = "address") -> PostalAddress:
    """An address in parts from a JSON object (``postalCode`` or ``postal_code``); an
    unknown key is refused without echoing it (it came from the caller)."""
    parts: dict[str, Any] = {}
    for key, part in value.items():
        name = "postal_code" if key == "postalCode" else key
        if name not in _PARTS:
            allowed = ", ".join(_PARTS)
            raise InvalidInput(where, f"takes only the parts {allowed} (postalCode too)")
        parts[name] = part
    return _checked(PostalAddress(**parts), where)
