"""Validating one record: each column's value checked and converted, so that a row becomes
a :class:`CustomerInput` or an :class:`InteractionInput`, or is refused with a
:class:`BadRow` naming the column and the rule (never the value).

CSV cells are text: ``tags`` are separated by ``|``, ``attributes`` and ``payload`` hold
a JSON object. JSONL values are JSON: ``tags`` a list, ``attributes`` / ``payload``
objects. Empty cells and JSON ``null`` mean "not given". Nothing here reads the
database; the customer service's own rules run in :mod:`vault.importing.service`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from vault.customers import CustomerInput, ExternalId
from vault.customers.addresses import PostalAddress
from vault.errors import InvalidInput
from vault.importing.errors import BadRow
from vault.importing.models import ADDRESS_PARTS, Record
from vault.importing.reader import reject_constant
from vault.interactions import InteractionInput
from vault.money import check_currency, exponent, to_minor
from vault.text import date_problem
from vault.types import MONETARY_TYPES, Channel, InteractionType

__all__ = ["customer_input", "interaction_header", "interaction_input", "no_required"]

_CHANNELS = {c.value: c for c in Channel}
_TYPES = {t.value: t for t in InteractionType}


def _text(record: Record, column: str) -> str | None:
    """A text value exactly as given (names keep every character)."""
    value = record.values.get(column)
    if value is None or isinstance(value, str):
        return value
    raise BadRow(column, "must be a string")


def _ident(record: Record, column: str) -> str | None:
    """An identifier or code: surrounding white space dropped; JSON integers allowed."""
    value = record.values.get(column)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    text = _text(record, column)
    return text.strip() if text is not None and text.strip() else None


def _object(record: Record, column: str) -> dict[str, Any] | None:
    value = record.values.get(column)
    if value is None:
        return None
    if record.is_csv:
        try:
            value = json.loads(str(value), parse_constant=reject_constant)
        except (ValueError, RecursionError):
            raise BadRow(column, "must be a JSON object") from None
    if not isinstance(value, dict):
        raise BadRow(column, "must be a JSON object")
    return value


def _tags(record: Record) -> list[str]:
    value = record.values.get("tags")
    if value is None:
        return []
    if record.is_csv:
        return [t.strip() for t in str(value).split("|") if t.strip()]
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise BadRow("tags", "must be a list of strings")
    return value


def _address(record: Record) -> str | PostalAddress | None:
    """Free text in ``address``, or the parts in ``address_street`` ... ``address_country``."""
    parts = {part: _text(record, f"address_{part}") for part in ADDRESS_PARTS}
    free = _text(record, "address")
    if not any(value and value.strip() for value in parts.values()):
        return free
    if free is not None and free.strip():
        raise BadRow("address", "give the address as free text or in parts, not both")
    return PostalAddress(**parts)


def customer_input(record: Record) -> tuple[CustomerInput, ExternalId | None]:
    """The customer in a row, and its ``(source, external_id)`` when it gives one."""
    source, external_id = _ident(record, "source"), _ident(record, "external_id")
    if (source is None) != (external_id is None):
        missing = "source" if source is None else "external_id"
        raise BadRow(missing, "is required when the other of source and external_id is given")
    ref = None if source is None or external_id is None else ExternalId(source, external_id)
    email, phone = _text(record, "email"), _text(record, "phone")
    data = CustomerInput(
        email=None if email is None else email.strip(),
        phone=None if phone is None else phone.strip(),
        first_name=_text(record, "first_name"),
        last_name=_text(record, "last_name"),
        birth_date=_ident(record, "birth_date"),
        address=_address(record),
        locale=_ident(record, "locale"),
        tier=_ident(record, "tier"),
        tags=_tags(record),
        attributes=_object(record, "attributes") or {},
        external_ids=() if ref is None else (ref,),
    )
    return data, ref


def no_required(_: set[str]) -> list[str]:
    """Customers: no column is required (a header needs only known names)."""
    return []


def interaction_header(columns: set[str]) -> list[str]:
    """The columns an interactions header lacks: channel, type, occurred_at, the customer."""
    missing = [c for c in ("channel", "type", "occurred_at") if c not in columns]
    if "customer_id" not in columns and not {"source", "customer_external_id"} <= columns:
        missing.append("customer_id (or source and customer_external_id)")
    return missing


def interaction_input(record: Record) -> InteractionInput:
    """Parse and check a row as far as possible without the database."""
    customer_text = _ident(record, "customer_id")
    source = _ident(record, "source")
    customer_ref = _ident(record, "customer_external_id")
    customer_id = None
    if customer_text is not None:
        if source is not None or customer_ref is not None:
            rule = "give it, or source and customer_external_id, not both"
            raise BadRow("customer_id", rule)
        try:
            customer_id = uuid.UUID(customer_text)
        except ValueError:
            raise BadRow("customer_id", "must be a UUID") from None
    elif source is None or customer_ref is None:
        rule = "is required (or source and customer_external_id)"
        raise BadRow("customer_id", rule)

    channel = _choice(record, "channel", _CHANNELS)
    kind = _choice(record, "type", _TYPES)
    occurred_at = _timestamp(record)
    amount, currency = _money(record, kind)
    external_id = _ident(record, "external_id")
    if external_id is not None and len(external_id) > 200:
        raise BadRow("external_id", "must be at most 200 characters")
    return InteractionInput(
        channel=channel.value,
        type=kind.value,
        occurred_at=occurred_at,
        customer_id=customer_id,
        customer_source=source,
        customer_external_id=customer_ref,
        amount=amount,
        currency=currency,
        external_id=external_id,
        payload=_object(record, "payload"),
    )


def _choice(record: Record, column: str, options: Mapping[str, Any]) -> Any:  # noqa: ANN401
    value = _ident(record, column)
    if value is None:
        raise BadRow(column, "is required")
    found = options.get(value.lower())
    if found is None:
        raise BadRow(column, f"must be one of: {', '.join(options)}")
    return found


def _timestamp(record: Record) -> datetime:
    value = _ident(record, "occurred_at")
    if value is None:
        raise BadRow("occurred_at", "is required")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        rule = date_problem(value, "must be an ISO 8601 date and time")
        raise BadRow("occurred_at", rule) from None
    if when.tzinfo is None or when.utcoffset() is None:
        raise BadRow("occurred_at", "must carry a time zone offset or Z")
    return when


def _money(record: Record, kind: InteractionType) -> tuple[Decimal | None, str | None]:
    raw = record.values.get("amount")
    code = _ident(record, "currency")
    if raw is None and code is None:
        if kind in MONETARY_TYPES:
            raise BadRow("amount", "is required for purchases and refunds")
        return None, None
    if raw is None:
        raise BadRow("amount", "is required when a currency is given")
    if code is None:
        raise BadRow("currency", "is required when an amount is given")
    try:
        currency = check_currency(code)
    except InvalidInput as exc:
        raise BadRow("currency", exc.rule) from None
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise BadRow("amount", "must be a decimal number")
    try:
        amount = Decimal(raw.strip() if isinstance(raw, str) else repr(raw))
    except InvalidOperation:
        raise BadRow("amount", "must be a decimal number") from None
    if not amount.is_finite():
        raise BadRow("amount", "must be a finite number")
    scaled = amount.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise BadRow("amount", "has more decimals than the currency allows")
    try:
        to_minor(amount, currency)
    except InvalidInput as exc:
        raise BadRow("amount", exc.rule) from None
    return amount, currency
