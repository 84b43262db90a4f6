"""Checking one interaction to record and turning it into the columns it is stored in:
channel and type from the vocabulary, an aware time, money in minor units of a known
currency (required for purchases and refunds), a bounded external id, and the payload
as compact JSON (encrypted later, per customer, by the service). Refusals name the
field (``interactions[3].amount``), never the value."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from vault.errors import InvalidInput
from vault.interactions.models import InteractionInput
from vault.money import check_currency, to_minor
from vault.text import check_word
from vault.types import MONETARY_TYPES, Channel, InteractionType

__all__ = ["validate"]

_MAX_PAYLOAD_BYTES = 65_536
_CHANNELS = {c.value: c for c in Channel}
_TYPES = {t.value: t for t in InteractionType}

_PAYLOAD_JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _encode_payload(payload: Mapping[str, Any], where: str) -> bytes:
    if not isinstance(payload, Mapping):
        raise InvalidInput(where, "must be a JSON object")
    try:
        raw = _PAYLOAD_JSON.encode(payload).encode("utf-8")
    except (TypeError, ValueError):
        raise InvalidInput(where, "must be JSON-serialisable without NaN") from None
    if len(raw) > _MAX_PAYLOAD_BYTES:
        raise InvalidInput(where, f"must be at most {_MAX_PAYLOAD_BYTES} bytes as JSON")
    return raw


def validate(item: InteractionInput, where: str) -> dict[str, Any]:
    """The stored columns of ``item`` (``payload`` as JSON bytes, not yet encrypted);
    ``where`` is its place in the batch, for error messages."""
    channel = _CHANNELS.get(item.channel) or check_word(
        Channel, item.channel, field=f"{where}.channel"
    )
    kind = _TYPES.get(item.type) or check_word(InteractionType, item.type, field=f"{where}.type")
    if not isinstance(item.occurred_at, datetime) or item.occurred_at.tzinfo is None:
        raise InvalidInput(f"{where}.occurredAt", "must be a datetime with a time zone")
    occurred = item.occurred_at.astimezone(UTC)
    amount_minor = currency = None
    if item.amount is not None or item.currency is not None:
        if item.amount is None or item.currency is None:
            raise InvalidInput(f"{where}.amount", "amount and currency go together")
        currency = check_currency(item.currency, field=f"{where}.currency")
        amount_minor = to_minor(item.amount, currency, field=f"{where}.amount")
    elif kind in MONETARY_TYPES:
        raise InvalidInput(f"{where}.amount", "is required for purchases and refunds")
    ext = item.external_id
    if ext is not None and (not ext.strip() or len(ext) > 200):
        raise InvalidInput(f"{where}.externalId", "must be 1 to 200 characters")
    payload = None if item.payload is None else _encode_payload(item.payload, f"{where}.payload")
    return {
        "channel": channel.value,
        "type": kind.value,
        "occurred_at": occurred,
        "amount_minor": amount_minor,
        "currency": currency,
        "external_id": ext,
        "payload": payload,
    }
