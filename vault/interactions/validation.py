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

__all__ = ["Columns", "validate"]

_MAX_PAYLOAD_BYTES = 65_536
# Plain strings: looking up an enum member's ``.value`` per row was a measurable cost.
_CHANNELS: dict[str, str] = {c.value: c.value for c in Channel}
_TYPES: dict[str, str] = {t.value: t.value for t in InteractionType}
_MONETARY = frozenset(t.value for t in MONETARY_TYPES)

_PAYLOAD_JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _encode_payload(payload: Mapping[str, Any], index: int) -> bytes:
    if not isinstance(payload, Mapping):
        raise InvalidInput(f"{_at(index)}.payload", "must be a JSON object")
    try:
        raw = _PAYLOAD_JSON.encode(payload).encode("utf-8")
    except (TypeError, ValueError):
        raise InvalidInput(
            f"{_at(index)}.payload", "must be JSON-serialisable without NaN"
        ) from None
    if len(raw) > _MAX_PAYLOAD_BYTES:
        raise InvalidInput(
            f"{_at(index)}.payload", f"must be at most {_MAX_PAYLOAD_BYTES} bytes as JSON"
        )
    return raw


Columns = tuple[str, str, datetime, int | None, str | None, str | None, bytes | None]


def validate(item: InteractionInput, index: int) -> Columns:
    """The stored columns of ``item``: channel, type, occurred_at, amount_minor, currency,
    external_id and the payload as JSON bytes (not yet encrypted). ``index`` is its place
    in the batch: errors name ``interactions[index].field``, never the value."""
    channel = _CHANNELS.get(item.channel)
    if channel is None:
        channel = check_word(Channel, item.channel, field=f"{_at(index)}.channel").value
    kind = _TYPES.get(item.type)
    if kind is None:
        kind = check_word(InteractionType, item.type, field=f"{_at(index)}.type").value
    occurred = item.occurred_at
    if not isinstance(occurred, datetime) or occurred.tzinfo is None:
        raise InvalidInput(f"{_at(index)}.occurredAt", "must be a datetime with a time zone")
    if occurred.tzinfo is not UTC:
        occurred = occurred.astimezone(UTC)
    amount_minor = currency = None
    if item.amount is not None or item.currency is not None:
        where = _at(index)
        if item.amount is None or item.currency is None:
            raise InvalidInput(f"{where}.amount", "amount and currency go together")
        currency = check_currency(item.currency, field=f"{where}.currency")
        amount_minor = to_minor(item.amount, currency, field=f"{where}.amount")
    elif kind in _MONETARY:
        raise InvalidInput(f"{_at(index)}.amount", "is required for purchases and refunds")
    ext = item.external_id
    if ext is not None and (len(ext) > 200 or not ext.strip()):
        raise InvalidInput(f"{_at(index)}.externalId", "must be 1 to 200 characters")
    payload = item.payload
    raw = None if payload is None else _encode_payload(payload, index)
    return channel, kind, occurred, amount_minor, currency, ext, raw


def _at(index: int) -> str:
    return f"interactions[{index}]"
