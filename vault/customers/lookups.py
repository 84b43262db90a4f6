"""Lookups that must name one customer: ``customerByEmail`` and ``customerByPhone``.

A blind-index lookup may find several live customers (duplicates not merged yet); a
caller asking for *the* customer then gets :class:`AmbiguousMatch` with their ids
(those it may read: the lookup already left out the others) rather than whichever
came first.
"""

from __future__ import annotations

from collections.abc import Sequence

from vault.customers.models import Customer
from vault.errors import AmbiguousMatch

__all__ = ["only_one"]


def only_one(found: Sequence[Customer], field: str) -> Customer | None:
    """The one customer found, None when none; several raise :class:`AmbiguousMatch`."""
    if len(found) > 1:
        raise AmbiguousMatch(field, [c.id for c in found])
    return found[0] if found else None
