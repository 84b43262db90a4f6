"""The values the segments feature hands out: a segment definition as read, the outcome
of a membership refresh, and the two events a stay produces (entered, left)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from vault.segments.rules import Rule

__all__ = ["RefreshResult", "Segment", "SegmentEvent"]


class SegmentEvent(StrEnum):
    ENTERED = "entered"
    LEFT = "left"


@dataclass(frozen=True, slots=True)
class Segment:
    id: uuid.UUID
    name: str
    description: str | None
    definition: dict[str, Any]
    rule: Rule
    version: int
    created_at: datetime
    updated_at: datetime
    refreshed_at: datetime | None

    def __repr__(self) -> str:
        return f"Segment(id={self.id}, version={self.version})"


@dataclass(frozen=True, slots=True)
class RefreshResult:
    segment_id: uuid.UUID
    members: int
    entered: int
    left: int
