"""Small SQL helpers shared by the services, written once for both backends."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Sequence

from sqlalchemy import ColumnElement, Uuid, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import InstrumentedAttribute

__all__ = ["id_in", "new_ids"]


def id_in(
    column: InstrumentedAttribute[uuid.UUID], ids: Sequence[uuid.UUID], dialect: str
) -> ColumnElement[bool]:
    """``column IN ids``: one array parameter on PostgreSQL (``= ANY(:ids)``), which
    compiles and binds far faster than a thousand-item IN list."""
    if dialect == "postgresql":
        return column == any_(bindparam(None, list(ids), type_=ARRAY(Uuid())))
    return column.in_(ids)


def new_ids(count: int) -> list[uuid.UUID]:
    """Time-ordered random UUIDs (the UUIDv7 layout: 48-bit milliseconds, version,
    variant, 74 random bits). New rows land at the right edge of the primary-key
    index instead of at random pages."""
    millis = time.time_ns() // 1_000_000
    rand = os.urandom(10 * count)
    out = []
    for i in range(count):
        r = int.from_bytes(rand[10 * i : 10 * i + 10], "big")
        value = (millis << 80) | (0x7 << 76) | ((r >> 68) << 64) | (0b10 << 62) | (r & (2**62 - 1))
        out.append(uuid.UUID(int=value))
    return out
