"""What every resolver gets: the vault, the caller's unit of work, and bookkeeping."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from graphql.pyutils import Path
from sqlalchemy.orm import Session
from strawberry.types import Info
from strawberry.types.nodes import SelectedField

from consent import Privacy
from policies import AccessDenied
from vault.authorization.context import AccessContext, buffer_of
from vault.errors import ProcessingRefused
from vault.interactions import Interaction
from vault.pagination import Page
from vault.runtime import Vault

__all__ = [
    "REFUSED",
    "Ctx",
    "Evidence",
    "GraphQLContext",
    "Info",
    "atomic",
    "path_of",
    "selects",
    "spread_fields",
]

# A field the caller may not see for this customer resolves to null and is listed in
# extensions.redacted: a policy refusal, or consent, restriction or an objection.
REFUSED = (AccessDenied, ProcessingRefused)


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the HTTP request says about the device, kept as evidence of a consent change
    (the ledger stores keyed pseudonyms of it, never the values)."""

    user_agent: str | None = field(default=None, repr=False)
    client_address: str | None = field(default=None, repr=False)


@dataclass(slots=True)
class GraphQLContext:
    vault: Vault
    session: Session
    access: AccessContext
    privacy: Privacy
    evidence: Evidence = field(default_factory=Evidence)
    redacted: list[str] = field(default_factory=list)
    # Timelines fetched for a whole list of customers at once, keyed by customer and args.
    timelines: dict[tuple[uuid.UUID, tuple[Any, ...]], Page[Interaction]] = field(
        default_factory=dict
    )

    def __repr__(self) -> str:
        return f"GraphQLContext(request_id={self.access.request_id!r})"


Ctx = Info[GraphQLContext, Any]


@contextmanager
def atomic(info: Ctx) -> Iterator[Session]:
    """One mutation field as a savepoint: if it fails, none of its writes remain and the
    audit entries it noted about them are dropped (refusals are kept), while the other
    fields of the request and their audit entries still commit."""
    session = info.context.session
    audit = buffer_of(session)
    mark = audit.mark()
    try:
        with session.begin_nested():
            yield session
    except BaseException:
        audit.rollback_to(mark)  # entries about writes that did not happen go too
        raise


def path_of(info: Ctx) -> str:
    """``customers.edges.0.node.email``: where a value sits in the response."""
    keys: list[str] = []
    node: Path | None = info.path
    while node is not None:
        keys.append(str(node.key))
        node = node.prev
    return ".".join(reversed(keys))


def spread_fields(selections: list[Any]) -> list[SelectedField]:
    """Fields of a selection set, with named and inline fragments spread out."""
    found: list[SelectedField] = []
    for selection in selections:
        if isinstance(selection, SelectedField):
            found.append(selection)
        else:  # FragmentSpread or InlineFragment
            found.extend(spread_fields(getattr(selection, "selections", None) or []))
    return found


def selects(info: Ctx, *names: str) -> bool:
    """Whether the field being resolved selects any of ``names`` (through fragments)."""
    return any(
        child.name in names
        for here in spread_fields(info.selected_fields)
        for child in spread_fields(here.selections)
    )
