"""Keyset pagination over SQL: how a list is ordered, its opaque tamper-checked cursors,
and a window of it in one statement.

A :class:`Listing` is one ordered list the vault pages through (customers oldest first,
a timeline newest first, ...): a name, the kinds of the parts of its sort key, and its
direction. A cursor seals an item's key under the listing's name
(:mod:`vault.crypto.handles`): a cursor of another listing, a garbled or a forged one is
refused as ``BAD_USER_INPUT`` naming the argument, before any statement runs.

:func:`keyset_rows` runs a listing's statement for a :class:`~vault.pagination.Window`
in one statement (``size + 1`` rows tell whether more lie that way) and, only when a
cursor was given, one ``LIMIT 1`` probe for the other side, so ``hasPreviousPage`` with
``after`` and ``hasNextPage`` with ``before`` are exact rather than guessed.
"""

from __future__ import annotations

import operator
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Row, Select, tuple_
from sqlalchemy.orm import Session

from vault.crypto.handles import HandleInvalid, Handles
from vault.errors import InvalidInput
from vault.pagination import Page, Position, Window

__all__ = ["Bounds", "KeyPart", "Listing", "keyset_page", "keyset_rows"]

T = TypeVar("T")
_NOT_A_CURSOR = "is not a cursor this API returned for this list"


class KeyPart(StrEnum):
    """The kind of one part of a listing's sort key, as a cursor spells it."""

    TIME = "time"  # an aware datetime, ISO 8601
    UUID = "uuid"
    INT = "int"


def _spell(part: KeyPart, value: object) -> str:
    if part is KeyPart.TIME:
        assert isinstance(value, datetime)  # noqa: S101 - a listing's own key
        return value.isoformat()
    return str(value)


def _read(part: KeyPart, text: str) -> object:
    if part is KeyPart.TIME:
        when = datetime.fromisoformat(text)
        if when.tzinfo is None:
            raise ValueError("a cursor's time is aware")
        return when
    if part is KeyPart.UUID:
        return uuid.UUID(text)
    return int(text)


@dataclass(frozen=True, slots=True)
class Listing:
    """One ordered list the vault pages through: ``name`` keeps its cursors apart from
    every other list's, ``parts`` are the kinds of its sort key, ``descending`` its
    direction (newest first)."""

    name: str
    parts: tuple[KeyPart, ...]
    descending: bool = False

    def cursor(self, handles: Handles, position: Position) -> str:
        """The opaque cursor of an item at ``position`` (its sort key)."""
        text = "|".join(_spell(p, v) for p, v in zip(self.parts, position, strict=True))
        return handles.seal(f"cursor:{self.name}", text)

    def position(self, handles: Handles, cursor: str, argument: str) -> Position:
        """The sort key a cursor stands for; ``InvalidInput(argument)`` for any cursor
        this listing did not give out."""
        try:
            values = handles.open(f"cursor:{self.name}", cursor).split("|")
            return tuple(_read(p, v) for p, v in zip(self.parts, values, strict=True))
        except (HandleInvalid, ValueError):
            raise InvalidInput(argument, _NOT_A_CURSOR) from None

    def _compare(
        self, columns: Sequence[Any], position: Position, op: Callable[[Any, Any], Any]
    ) -> ColumnElement[bool]:
        if len(columns) == 1:
            return op(columns[0], position[0])  # type: ignore[no-any-return]
        return op(tuple_(*columns), tuple_(*position))  # type: ignore[no-any-return]

    def beyond(self, columns: Sequence[Any], position: Position) -> ColumnElement[bool]:
        """Items strictly after ``position`` in the listing's order."""
        return self._compare(columns, position, operator.lt if self.descending else operator.gt)

    def short_of(self, columns: Sequence[Any], position: Position) -> ColumnElement[bool]:
        """Items strictly before ``position`` in the listing's order."""
        return self._compare(columns, position, operator.gt if self.descending else operator.lt)

    def through(self, columns: Sequence[Any], position: Position) -> ColumnElement[bool]:
        """Items at or before ``position``: what ``after`` leaves out."""
        return self._compare(columns, position, operator.ge if self.descending else operator.le)

    def from_(self, columns: Sequence[Any], position: Position) -> ColumnElement[bool]:
        """Items at or after ``position``: what ``before`` leaves out."""
        return self._compare(columns, position, operator.le if self.descending else operator.ge)

    def order(self, columns: Sequence[Any], *, reverse: bool = False) -> list[Any]:
        """ORDER BY terms of the listing's order (``reverse``: from its end)."""
        down = self.descending != reverse
        return [c.desc() if down else c.asc() for c in columns]


@dataclass(frozen=True, slots=True)
class Bounds:
    """A window's cursors opened into positions, and the conditions they put on a
    listing's statement."""

    after: Position | None
    before: Position | None
    where: list[ColumnElement[bool]]

    @classmethod
    def of(
        cls, listing: Listing, handles: Handles, window: Window, columns: Sequence[Any]
    ) -> Bounds:
        after = None if window.after is None else listing.position(handles, window.after, "after")
        before = (
            None if window.before is None else listing.position(handles, window.before, "before")
        )
        where = []
        if after is not None:
            where.append(listing.beyond(columns, after))
        if before is not None:
            where.append(listing.short_of(columns, before))
        return cls(after, before, where)

    def other_side(self, listing: Listing, window: Window, columns: Sequence[Any]) -> Any:  # noqa: ANN401 - a condition or None
        """The condition selecting what lies past the window's far cursor on the side it
        is not taken from (``after`` for ``first``, ``before`` for ``last``); None when
        that cursor is absent (nothing lies there)."""
        if window.backward:
            return None if self.before is None else listing.from_(columns, self.before)
        return None if self.after is None else listing.through(columns, self.after)


def keyset_page(
    items: list[T],
    positions: list[Position],
    *,
    listing: Listing,
    handles: Handles,
    has_next_page: bool,
    has_previous_page: bool,
) -> Page[T]:
    """A page of ``listing`` whose cursors ``handles`` seal when asked for."""

    def seal(position: Position) -> str:
        return listing.cursor(handles, position)

    return Page(items, positions, has_next_page, has_previous_page, seal)


def keyset_rows(
    session: Session,
    stmt: Select[*tuple[Any, ...]],
    columns: Sequence[Any],
    *,
    listing: Listing,
    handles: Handles,
    window: Window,
    key: Callable[[Row[*tuple[Any, ...]]], Position],
) -> Page[Row[*tuple[Any, ...]]]:
    """The rows of ``stmt`` (a listing's filtered, unordered statement whose sort key is
    ``columns``) in the window, in the listing's order; ``key`` reads a row's sort key."""
    bounds = Bounds.of(listing, handles, window, columns)
    size = window.size
    found = list(
        session.execute(
            stmt.where(*bounds.where)
            .order_by(*listing.order(columns, reverse=window.backward))
            .limit(size + 1)
        ).all()
    )
    more = len(found) > size
    rows = found[:size]
    if window.backward:
        rows.reverse()
    other = bounds.other_side(listing, window, columns)
    beside = other is not None and session.execute(stmt.where(other).limit(1)).first() is not None
    return keyset_page(
        rows,
        [key(r) for r in rows],
        listing=listing,
        handles=handles,
        has_next_page=beside if window.backward else more,
        has_previous_page=more if window.backward else beside,
    )
