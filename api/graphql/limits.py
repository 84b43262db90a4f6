"""Static limits on a parsed and validated document, checked once per distinct query text.

Depth, aliases and cost are computed over each operation with its fragments expanded:
a named fragment counts wherever it is spread, an inline fragment where it stands, an
aliased field like any other (OWASP GraphQL cheat sheet). A named fragment is summed up
once per place type (cost is linear in the multiplier it is spread under), and the walk
stops as soon as a limit is passed, so a document describing millions of fields in a
kilobyte of fragments is refused in time linear in its size.

The cost comes from the schema, so a new field cannot forget it. Every field costs 1
times the product of the multipliers of the fields it is nested in:

* a field with a page-size argument (``first`` or ``last``) multiplies its subtree by
  the argument given: the literal, :data:`~vault.pagination.MAX_PAGE` when it is a
  variable (or null), the larger if both are given; when neither is given, by the
  default of the first such argument (``MAX_PAGE`` if it has none). The lists of the
  connection it returns (``edges``) are that page and do not multiply again;
* a field taking a list of ids (``nodes(ids:)``) multiplies its subtree by the number
  of ids given (``MAX_PAGE`` when they are a variable);
* any other field that returns a list multiplies its subtree by :data:`LIST_COST`;
* introspection (``__schema``, ``__type``) is costed flat: one per field, bounded by
  its own depth limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLArgument,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    NamedTypeNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    Undefined,
    ValueNode,
    get_named_type,
)

from vault.pagination import MAX_PAGE

__all__ = [
    "ID_LISTS",
    "LIST_COST",
    "PAGE_ARGUMENTS",
    "LimitExceeded",
    "Limits",
    "check_document",
    "field_multiplier",
]

# The arguments that set how many items a field returns.
PAGE_ARGUMENTS: Final = ("first", "last")
# The list arguments whose length is how many items a field returns.
ID_LISTS: Final = ("ids",)
# What a list without a page-size argument (segments, consents, a request's history)
# multiplies its subtree by: none of them is bounded by the caller, and few are long.
LIST_COST: Final = 10
_INTROSPECTION: Final = frozenset({"__schema", "__type"})


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


@dataclass(frozen=True, slots=True)
class _Sum:
    """A selection set summed up: its cost under a multiplier of 1, its aliases, and how
    many selection-set levels it nests (itself included) outside introspection
    (``depth``) and into it (``meta_depth``, the meta-fields ``__schema`` and ``__type``;
    0: none)."""

    cost: int = 0
    aliases: int = 0
    depth: int = 0
    meta_depth: int = 0


# (fragment, the type it is spread on, on a paged connection?, inside introspection?)
_Key = tuple[str, str | None, bool, bool]


def check_document(document: DocumentNode, limits: Limits, schema: GraphQLSchema) -> int:
    """Refuse the document (:class:`LimitExceeded`) if any operation passes a limit; its
    costliest operation's cost otherwise."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    walk = _Walk(schema, fragments, limits)
    costliest = 0
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        roots = [s for s in definition.selection_set.selections if isinstance(s, FieldNode)]
        if len(roots) > limits.max_root_fields:
            raise LimitExceeded(f"at most {limits.max_root_fields} root fields per operation")
        root = _root_type(schema, definition.operation)
        total = walk.selections(definition.selection_set, root, page=False, inside=False)
        costliest = max(costliest, total.cost)
    return costliest


def field_multiplier(field: GraphQLField, node: FieldNode | None, *, page: bool) -> int:
    """What a field multiplies its subtree by (see the module's docstring); ``node`` is
    the field as the document asks for it (None: with no arguments given), ``page``
    whether the field is on the connection a paged field returned."""
    given = {a.name.value: a.value for a in (node.arguments if node is not None else None) or ()}
    paged = [name for name in PAGE_ARGUMENTS if name in field.args]
    if paged:
        sizes = [_page_size(given[name]) for name in paged if name in given]
        return max(sizes) if sizes else _default_size(_default(field.args[paged[0]]))
    for name in ID_LISTS:
        if name in field.args and name in given:
            value = given[name]
            return max(1, len(value.values)) if isinstance(value, ListValueNode) else MAX_PAGE
    if _is_list(field.type) and not page:
        return LIST_COST
    return 1


class _Walk:
    """Sums up the selection sets of one document, refusing as soon as a limit is passed:
    a part's cost, aliases and depth never exceed the whole's, so a part over a limit
    is enough to refuse."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        limits: Limits,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.limits = limits
        self.known: dict[_Key, _Sum] = {}
        self.open: set[str] = set()

    def selections(
        self,
        node: SelectionSetNode,
        parent: GraphQLNamedType | None,
        *,
        page: bool,
        inside: bool,
    ) -> _Sum:
        """A selection set below ``parent`` (None: no type to follow, as inside
        introspection); ``inside``: within ``__schema`` or ``__type``."""
        cost = aliases = below = meta_below = 0
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                part = self.field(selection, parent, page=page, inside=inside)
                deeper = 1  # a field's own selection set is one level down
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = parent if condition is None else self.type_named(condition, inside)
                part = self.selections(selection.selection_set, inner, page=page, inside=inside)
                deeper = 0  # a fragment's selections are at this level
            elif isinstance(selection, FragmentSpreadNode):
                part = self.spread(selection, parent, page=page, inside=inside)
                deeper = 0
            else:  # pragma: no cover - graphql-core has no other selection
                continue
            cost += part.cost
            aliases += part.aliases
            if part.depth:
                below = max(below, part.depth + deeper - 1)
            if part.meta_depth:
                meta_below = max(meta_below, part.meta_depth + deeper - 1)
        if inside:
            done = _Sum(cost, aliases, 0, 1 + meta_below)
        else:
            done = _Sum(cost, aliases, 1 + below, meta_below and 1 + meta_below)
        return self.checked(done)

    def field(
        self, node: FieldNode, parent: GraphQLNamedType | None, *, page: bool, inside: bool
    ) -> _Sum:
        """One field: it costs 1, its subtree times its multiplier. The depth of its
        selection set, if it has one (a leaf has no depth of its own)."""
        alias = 0 if node.alias is None else 1
        if node.selection_set is None:
            return self.checked(_Sum(1, alias))
        name = node.name.value
        if name in _INTROSPECTION and not inside:
            below = self.selections(node.selection_set, None, page=False, inside=True)
            return self.checked(_Sum(1 + below.cost, alias + below.aliases, 0, below.meta_depth))
        definition = _definition(parent, name)
        if definition is None:  # inside introspection: costed flat
            below = self.selections(node.selection_set, None, page=False, inside=inside)
            factor = 1
        else:
            factor = field_multiplier(definition, node, page=page)
            # The connection a paged field returns holds the page: its lists do not
            # multiply again.
            connection = any(a in definition.args for a in PAGE_ARGUMENTS) and not _is_list(
                definition.type
            )
            named = get_named_type(definition.type)
            below = self.selections(node.selection_set, named, page=connection, inside=inside)
        return self.checked(
            _Sum(
                1 + factor * below.cost,
                alias + below.aliases,
                below.depth,
                below.meta_depth,
            )
        )

    def spread(
        self, node: FragmentSpreadNode, parent: GraphQLNamedType | None, *, page: bool, inside: bool
    ) -> _Sum:
        """A named fragment, summed up once for each type it is spread on."""
        name = node.name.value
        fragment = self.fragments.get(name)
        if fragment is None or name in self.open:
            return _Sum()  # validation reports unknown and cyclic fragments
        inner = self.type_named(fragment.type_condition, inside)
        key = (name, None if inner is None else inner.name, page, inside)
        found = self.known.get(key)
        if found is None:
            self.open.add(name)
            try:
                found = self.selections(fragment.selection_set, inner, page=page, inside=inside)
            finally:
                self.open.discard(name)
            self.known[key] = found
        return found

    def type_named(self, condition: NamedTypeNode, inside: bool) -> GraphQLNamedType | None:
        """A fragment's type condition (none inside introspection, which is costed flat)."""
        return None if inside else self.schema.get_type(condition.name.value)

    def checked(self, part: _Sum) -> _Sum:
        """The part, unless it alone passes a limit (then so does the whole)."""
        limits = self.limits
        if part.depth > limits.max_depth:
            raise LimitExceeded(f"the query is nested deeper than {limits.max_depth} levels")
        if part.meta_depth > limits.max_introspection_depth:
            raise LimitExceeded(
                f"the query is nested deeper than {limits.max_introspection_depth} levels"
            )
        if part.aliases > limits.max_aliases:
            raise LimitExceeded(f"at most {limits.max_aliases} aliases per operation")
        if part.cost > limits.max_cost:
            raise LimitExceeded(f"the query would cost more than {limits.max_cost}")
        return part


def _page_size(value: ValueNode) -> int:
    """The page a page-size argument asks for as written."""
    if isinstance(value, IntValueNode):
        return max(1, int(value.value))
    return MAX_PAGE  # a variable (or null): the caller may ask for the most


def _default_size(default: object) -> int:
    return max(1, default) if isinstance(default, int) else MAX_PAGE


def _default(argument: GraphQLArgument) -> object:
    """An argument's default: the coerced one Strawberry gives, or the literal of a schema
    built from SDL (graphql-core 3.3 keeps it apart, in ``default``)."""
    if argument.default_value is not Undefined:
        return argument.default_value
    given = getattr(argument, "default", None)
    literal = getattr(given, "literal", None)
    if isinstance(literal, IntValueNode):
        return int(literal.value)
    return getattr(given, "value", None)


def _is_list(kind: GraphQLOutputType) -> bool:
    if isinstance(kind, GraphQLNonNull):
        kind = kind.of_type
    return isinstance(kind, GraphQLList)


def _definition(parent: GraphQLNamedType | None, name: str) -> GraphQLField | None:
    if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
        found: GraphQLField | None = parent.fields.get(name)
        return found
    return None


def _root_type(schema: GraphQLSchema, operation: OperationType) -> GraphQLNamedType | None:
    if operation is OperationType.MUTATION:
        return schema.mutation_type
    if operation is OperationType.SUBSCRIPTION:
        return schema.subscription_type
    return schema.query_type
