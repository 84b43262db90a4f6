"""The values the interactions feature exchanges: an interaction to record, one as read
back (its payload decrypted, or withheld by policy), the outcome of an ingest, and the
options of a timeline read."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, TypedDict

from vault.types import Channel, InteractionType

__all__ = ["IngestResult", "Interaction", "InteractionInput", "TimelineOptions"]


@dataclass(frozen=True, slots=True)
class InteractionInput:
    """One interaction to record. Name the customer by id or by an external id."""

    channel: str
    type: str
    occurred_at: datetime
    customer_id: uuid.UUID | None = None
    customer_source: str | None = None
    customer_external_id: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    external_id: str | None = None
    payload: Mapping[str, Any] | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Interaction:
    id: uuid.UUID
    customer_id: uuid.UUID
    channel: Channel
    type: InteractionType
    occurred_at: datetime
    amount: Decimal | None
    currency: str | None
    external_id: str | None
    payload: dict[str, Any] | None = field(repr=False)
    recorded_at: datetime = field(repr=False)
    payload_hidden: bool = False  # True when the caller's policy withholds the payload


@dataclass(frozen=True, slots=True)
class IngestResult:
    inserted: int
    duplicates: int


class TimelineOptions(TypedDict, total=False):
    """The keyword options of a timeline read (defaults in
    :meth:`~vault.interactions.service.InteractionService.timelines`)."""

    first: int | None
    after: str | None
    last: int | None
    before: str | None
    channel: str | None
    type: str | None
    since: datetime | None
    until: datetime | None
    with_payload: bool
