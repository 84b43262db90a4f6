"""Static limits on a parsed document, checked once per distinct query text.

Depth, aliases and cost are computed over the operation with its fragments
expanded (so fragments cannot hide work), following the OWASP GraphQL cheat
sheet. Cost: every field costs 1, times the page size (``first``, default 10)
of every list it is nested in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
)

__all__ = ["LimitExceeded", "Limits", "check_document"]

_PAGED = frozenset({"customers", "interactions"})


@dataclass(frozen=True, slots=True)
class Limits:
    max_depth: int = 10
    max_aliases: int = 15
    max_cost: int = 50_000
    max_root_fields: int = 20
    max_tokens: int = 5_000
    # The standard introspection query (GraphiQL, code generators) nests 15 levels deep.
    max_introspection_depth: int = 16


class LimitExceeded(Exception):
    """The document is too deep, too wide or too costly to run."""

    code = "QUERY_TOO_COMPLEX"


@dataclass(slots=True)
class _Tally:
    aliases: int = 0
    cost: int = 0
    introspection: bool = False


def check_document(document: DocumentNode, limits: Limits) -> None:
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        roots = [s for s in definition.selection_set.selections if isinstance(s, FieldNode)]
        if len(roots) > limits.max_root_fields:
            raise LimitExceeded(f"at most {limits.max_root_fields} root fields per operation")
        _walk(definition.selection_set, fragments, 1, 1, _Tally(), limits, frozenset())


def _walk(  # noqa: PLR0917 - a recursive walk over one document
    selection_set: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    depth: int,
    multiplier: int,
    tally: _Tally,
    limits: Limits,
    seen: frozenset[str],
) -> None:
    """Add up the cost, refusing as soon as any limit is passed: the walk does at most
    ``max_cost`` steps, so fragments used many times cannot make it slow."""
    if selection_set is None:
        return
    limit = limits.max_introspection_depth if tally.introspection else limits.max_depth
    if depth > limit:
        raise LimitExceeded(f"the query is nested deeper than {limit} levels")
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if selection.name.value in ("__schema", "__type") and not tally.introspection:
                tally.introspection = True
                _walk(
                    selection.selection_set, fragments, depth + 1, multiplier, tally, limits, seen
                )
                tally.introspection = False
                continue
            if selection.alias is not None:
                tally.aliases += 1
                if tally.aliases > limits.max_aliases:
                    raise LimitExceeded(f"at most {limits.max_aliases} aliases per operation")
            tally.cost += multiplier
            if tally.cost > limits.max_cost:
                raise LimitExceeded(f"the query would cost more than {limits.max_cost}")
            inner = multiplier
            if selection.name.value in _PAGED:
                inner *= _page_size(selection)
            _walk(selection.selection_set, fragments, depth + 1, inner, tally, limits, seen)
        elif isinstance(selection, InlineFragmentNode):
            _walk(selection.selection_set, fragments, depth, multiplier, tally, limits, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is None or name in seen:
                continue  # validation reports unknown or cyclic fragments
            _walk(
                fragment.selection_set, fragments, depth, multiplier, tally, limits, seen | {name}
            )


def _page_size(field: FieldNode) -> int:
    for argument in field.arguments or ():
        if argument.name.value == "first":
            if isinstance(argument.value, IntValueNode):
                return max(1, int(argument.value.value))
            return 100  # a variable: assume the largest page
    return 10
