"""What a data subject request asks for: its details, checked when it is filed, sealed
under the customer's data key and opened again when it is carried out.

A rectification names the fields to change and their new values (PII and profile
fields, camelCase aliases accepted, ``None`` clears one); the values are checked by
the customer service's own rules and sealed, only the field names stay in clear. An
objection names its scope (``direct_marketing`` or an objectable purpose), kept in
clear. The other types take no details.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import date
from typing import Any

from policies.purposes import DIRECT_MARKETING, registry
from vault.crypto import DataKey
from vault.customers import CustomerInput, CustomerService
from vault.customers.addresses import address_from_mapping
from vault.errors import InvalidInput
from vault.types import DsrType, PiiField

__all__ = ["DETAILS_FIELD", "check_details", "open_details", "seal_details"]

# The field name a request's details are sealed under (with the request id as record id).
DETAILS_FIELD = "dsr.details"
_PROFILE_FIELDS = ("locale", "tier", "tags", "attributes")
_RECTIFIABLE = (*(f.value for f in PiiField), *_PROFILE_FIELDS)
_ALIASES = {
    "firstName": "first_name", "lastName": "last_name", "birthDate": "birth_date",
    "postalAddress": "address",
}  # fmt: skip


def check_details(
    customers: CustomerService, kind: DsrType, details: Mapping[str, Any] | None
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The details to seal, and the summary (field names, scope) kept in clear."""
    if kind is DsrType.RECTIFICATION:
        changes = _rectification(customers, details)
        return changes, {"fields": sorted(changes)}
    if kind is DsrType.OBJECTION:
        scope = _objection_scope(details)
        return {"scope": scope}, {"scope": scope}
    if details:
        raise InvalidInput("details", f"{kind.value} requests take no details")
    return None, {}


def seal_details(key: DataKey, request_id: uuid.UUID, details: Mapping[str, Any]) -> bytes:
    """The checked details as JSON, sealed under the customer's key for this request."""
    plain = json.dumps(details, ensure_ascii=False, sort_keys=True).encode("utf-8")
    return key.encrypt(plain, field=DETAILS_FIELD, record_id=request_id)


def open_details(key: DataKey, request_id: uuid.UUID, sealed: bytes) -> dict[str, Any]:
    """The sealed details again; an address given in parts is a postal address again."""
    details: dict[str, Any] = json.loads(
        key.decrypt(sealed, field=DETAILS_FIELD, record_id=request_id)
    )
    if isinstance(details.get("address"), dict):
        details["address"] = address_from_mapping(details["address"])
    return details


def _rectification(customers: CustomerService, details: Mapping[str, Any] | None) -> dict[str, Any]:
    if not isinstance(details, Mapping) or not details:
        raise InvalidInput("details", "a rectification names at least one field to change")
    changes: dict[str, Any] = {}
    for key, value in details.items():
        name = _ALIASES.get(key, key) if isinstance(key, str) else None
        if name not in _RECTIFIABLE:
            allowed = ", ".join(_RECTIFIABLE)
            raise InvalidInput("details", f"a rectification changes only: {allowed}")
        if name in changes:
            raise InvalidInput(f"details.{name}", "is given twice")
        changes[name] = value.isoformat() if isinstance(value, date) else value
    parts = changes.get("address")
    checked = None
    if isinstance(parts, Mapping):  # in parts: checked, kept as JSON until processed
        checked = address_from_mapping(parts, "details.address")
        changes["address"] = checked.parts()
    for name in ("tags", "attributes"):
        if name in changes and changes[name] is None:
            raise InvalidInput(f"details.{name}", "must not be null")
    given = {k: v for k, v in changes.items() if v is not None}
    if checked is not None:
        given["address"] = checked
    customers.validate(CustomerInput(**given))
    try:
        json.dumps(changes, allow_nan=False)
    except (TypeError, ValueError):
        raise InvalidInput("details", "must be JSON values") from None
    return changes


def _objection_scope(details: Mapping[str, Any] | None) -> str:
    if not isinstance(details, Mapping) or set(details) != {"scope"}:
        raise InvalidInput("details", 'an objection takes {"scope": ...}')
    allowed = [DIRECT_MARKETING, *(p.value for p, info in registry().items() if info.objectable)]
    scope = details["scope"]
    if scope not in allowed:
        raise InvalidInput("details.scope", f"must be one of: {', '.join(allowed)}")
    return str(scope)
