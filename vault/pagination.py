"""Relay-style pagination shared by the services: the slice a caller asks for
(``first``/``after`` or ``last``/``before``) and the page that comes back.

A :class:`Window` follows the Relay connection spec: ``after`` and ``before`` bound the
list (both may be given), then ``first`` takes from the start or ``last`` from the end;
giving both ``first`` and ``last`` is refused, giving neither takes the list's default
from the start. A :class:`Page` carries its items, each one's sort key and whether more
lie either way; its cursors are sealed on demand. How a list is ordered, how its cursors
are sealed and opened and how a window becomes SQL is :mod:`vault.keyset` (kept apart so
that importing this module loads neither SQLAlchemy nor the crypto library: the CLI's
help imports it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from vault.errors import InvalidInput

__all__ = ["MAX_PAGE", "Page", "Position", "Window", "every_item"]

MAX_PAGE = 100
T = TypeVar("T")
U = TypeVar("U")
Position = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Window:
    """Which slice of a listing: at most one of ``first`` and ``last``, and the cursors
    bounding it. Build it with :meth:`of`, which checks the arguments."""

    first: int | None = None
    after: str | None = None
    last: int | None = None
    before: str | None = None

    @classmethod
    def of(
        cls,
        *,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        default: int = 20,
    ) -> Window:
        """The window of a listing's arguments; ``default`` items from the start when
        neither ``first`` nor ``last`` is given. Refuses both, and sizes outside
        1..``MAX_PAGE``, naming the argument."""
        if first is not None and last is not None:
            raise InvalidInput("last", "give first or last, not both")
        if first is None and last is None:
            first = default
        for name, size in (("first", first), ("last", last)):
            if size is not None and not 1 <= size <= MAX_PAGE:
                raise InvalidInput(name, f"must be between 1 and {MAX_PAGE}")
        return cls(first, after, last, before)

    @property
    def backward(self) -> bool:
        """Whether the page is taken from the end (``last``)."""
        return self.last is not None

    @property
    def size(self) -> int:
        size = self.last if self.last is not None else self.first
        assert size is not None  # noqa: S101 - Window.of gives one of them
        return size


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing, in the listing's order: the items, each one's sort key,
    whether more lie either way, and how a key becomes a cursor (sealed on demand: a
    caller that asks for no cursor pays for none)."""

    items: list[T]
    positions: list[Position]
    has_next_page: bool
    has_previous_page: bool = False
    seal: Callable[[Position], str] | None = field(default=None, repr=False, compare=False)

    def cursor(self, index: int) -> str:
        """The cursor of the item at ``index``."""
        assert self.seal is not None  # noqa: S101 - a page with items has its listing's seal
        return self.seal(self.positions[index])

    @property
    def start_cursor(self) -> str | None:
        return self.cursor(0) if self.items else None

    @property
    def end_cursor(self) -> str | None:
        return self.cursor(len(self.items) - 1) if self.items else None

    def with_items(self, items: list[U]) -> Page[U]:
        """The same page (positions, flags, cursors) carrying other items, one for each
        (segment members as customers, rows as records)."""
        if len(items) != len(self.items):
            raise ValueError("a page's items are replaced one for one")
        return Page(items, self.positions, self.has_next_page, self.has_previous_page, self.seal)


def every_item(fetch: Callable[[str | None], Page[T]]) -> Iterator[T]:
    """Every item of a paginated listing: ``fetch(after)`` gives one page at a time."""
    after: str | None = None
    while True:
        page = fetch(after)
        yield from page.items
        if not page.has_next_page:
            return
        after = page.end_cursor
