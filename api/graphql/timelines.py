"""Customer timelines: one customer's page of interactions, or a whole list's at once.

``Customer.interactions`` reads a timeline per customer; when a query asks for it on a
list of customers (``customers``, a segment's ``members``), the list's resolver fetches
every first page in one statement beforehand and the per-customer reads find them in the
request's cache. Returns domain pages; the types map them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from api.graphql.context import REFUSED, Ctx, path_of, spread_fields
from vault.errors import InvalidInput
from vault.interactions import Interaction
from vault.pagination import Page
from vault.types import Channel as ChannelEnum
from vault.types import InteractionType as InteractionTypeEnum

__all__ = ["customer_timeline", "prefetch_timelines"]


def _args_key(*args: Any) -> tuple[Any, ...]:  # noqa: ANN401
    return tuple(args)


def customer_timeline(  # noqa: PLR0917 - the GraphQL field's arguments, in order
    info: Ctx,
    customer_id: uuid.UUID,
    window: tuple[int | None, str | None, int | None, str | None],
    channel: str | None,
    kind: str | None,
    since: datetime | None,
    until: datetime | None,
) -> Page[Interaction] | None:
    """A customer's timeline (None when refused: the field is redacted); ``window`` is
    (first, after, last, before). When a list of customers was asked for, the whole
    list's first pages were fetched beforehand (see :func:`prefetch_timelines`)."""
    ctx = info.context
    first, after, last, before = window
    key = (customer_id, _args_key(first, after, last, before, channel, kind, since, until))
    page = ctx.timelines.get(key)
    if page is None:
        try:
            page = ctx.vault.interactions.timeline(
                ctx.session, customer_id, first=first, after=after, last=last, before=before,
                channel=channel, type=kind, since=since, until=until,
            )  # fmt: skip
        except REFUSED:
            ctx.redacted.append(path_of(info))
            return None
    return page


def prefetch_timelines(info: Ctx, customer_ids: list[uuid.UUID]) -> None:
    """If the query asks for ``interactions`` on a list of customers, fetch all their
    first pages at once (a bounded number of statements however long the list)."""
    if not customer_ids:
        return
    ctx = info.context
    for selection in _selected(info.selected_fields, ("edges", "node", "interactions")):
        asked = {f.name for f in spread_fields(selection.selections)}
        if not asked & {"edges", "pageInfo"}:
            continue  # totalCount alone: no page is read (each field counts its own)
        args = _timeline_args(selection.arguments)
        if args is None:
            continue  # a cursor, or an argument to check one by one: resolved per customer
        first, channel, kind, since, until = args
        try:
            pages = ctx.vault.interactions.timelines(
                ctx.session, customer_ids, first=first, channel=channel, type=kind,
                since=since, until=until,
            )  # fmt: skip
        except REFUSED:
            return  # each customer's field then resolves (or is redacted) on its own
        except InvalidInput:
            continue  # each customer's field reports the problem itself
        for cid, page in pages.items():
            key = _args_key(first, None, None, None, channel, kind, since, until)
            ctx.timelines[(cid, key)] = page


def _timeline_args(
    raw: dict[str, Any],
) -> tuple[int, str | None, str | None, datetime | None, datetime | None] | None:
    """The arguments as the field resolver will see them; None if they cannot be
    normalised here (the per-customer resolver then validates and reports them)."""
    if any(raw.get(name) is not None for name in ("after", "last", "before")):
        return None  # only first pages are fetched for a whole list
    try:
        first = int(raw.get("first", 10))
        channel = _enum_value(ChannelEnum, raw.get("channel"))
        kind = _enum_value(InteractionTypeEnum, raw.get("type"))
        since = _datetime(raw.get("since"))
        until = _datetime(raw.get("until"))
    except (TypeError, ValueError, KeyError):
        return None
    return first, channel, kind, since, until


def _enum_value(kind: type[ChannelEnum] | type[InteractionTypeEnum], value: object) -> str | None:
    """A GraphQL enum argument: a member, its name (a literal ``CHAT``) or its value."""
    if value is None:
        return None
    if isinstance(value, kind):
        return value.value
    text = str(value)
    return kind[text].value if text in kind.__members__ else kind(text).value


def _datetime(value: object) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    parsed = datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        raise ValueError("naive datetime")
    return parsed


def _selected(selections: list[Any], path: tuple[str, ...]) -> list[Any]:
    """The fields at ``path`` below ``selections``, looking through fragments."""
    for name in path:
        selections = [
            child
            for selection in selections
            for child in spread_fields(getattr(selection, "selections", None) or [])
            if child.name == name
        ]
    return selections
