"""A compiled path for the commonest read: one customer's profile and latest interactions.

graphql-core spends more CPU walking a small response (completing ~60 fields through
Strawberry's resolver wrappers) than the vault spends reading and decrypting it. For
queries of one narrow shape this module compiles the validated operation, once per
query text, into a :class:`Plan` that builds the same response directly:

* only ``query`` operations without fragments, directives or repeated response keys;
* root fields ``customer(id:)``, ``customerByEmail(email:)``, ``customerByPhone(phone:)``,
  ``me`` and ``__typename``;
* below them only plain customer fields, ``interactions(first:)`` and, inside it,
  ``edges { cursor node { id interactionId channel type occurredAt amount currency
  externalId } }`` and ``pageInfo`` (``__typename`` anywhere).

Anything else goes to graphql-core: any variable that does not coerce, and the other
page arguments (``after``, ``last``, ``before``) and ``totalCount`` of issue 16. A plan
calls the same resolver helpers and domain services as the schema's resolvers, so
policy, consent, masking and audit are decided in the same place; leaves are
serialised by the schema's own scalar and enum types, errors are located and
formatted as graphql-core would, and ``tests/api/test_graphql_compiled.py`` checks
that both paths give byte-identical responses and the same audit entries.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Final

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    get_named_type,
    get_nullable_type,
    located_error,
)

from api.graphql.coercion import FieldArguments, Variables
from api.graphql.context import REFUSED, GraphQLContext
from api.graphql.customers import customer_record, own_record
from api.graphql.types.common import global_id
from api.graphql.types.customers import profile_value
from vault.customers import Customer as CustomerRecord
from vault.customers.lookups import only_one
from vault.interactions import Interaction as InteractionRecord
from vault.pagination import Page

__all__ = ["Arguments", "Plan", "compile_plan"]

_Shape = Mapping[str, "_Shape | None"]
_PII: Final = {
    "email": "email", "phone": "phone", "firstName": "first_name", "lastName": "last_name",
    "birthDate": "birth_date", "address": "address",
}  # fmt: skip
_PROFILE: Final = frozenset({"locale", "tier", "tags", "attributes"})
_INTERACTION: Final[_Shape] = dict.fromkeys(
    ("id", "interactionId", "channel", "type", "occurredAt", "amount", "currency", "externalId",
     "__typename")
)  # fmt: skip
_PAGE_INFO: Final = ("hasNextPage", "hasPreviousPage", "startCursor", "endCursor", "__typename")
_CONNECTION: Final[_Shape] = {
    "edges": {"node": _INTERACTION, "cursor": None, "__typename": None},
    "pageInfo": dict.fromkeys(_PAGE_INFO),
    "__typename": None,
}
_CUSTOMER: Final[_Shape] = {
    **dict.fromkeys(_PII),
    **dict.fromkeys(
        (
            "id",
            "customerId",
            "locale",
            "tier",
            "tags",
            "attributes",
            "status",
            "createdAt",
            "version",
        )
    ),
    "interactions": _CONNECTION,
    "__typename": None,
}
_ROOT: Final[_Shape] = {
    "customer": _CUSTOMER,
    "customerByEmail": _CUSTOMER,
    "customerByPhone": _CUSTOMER,
    "me": _CUSTOMER,
    "__typename": None,
}
_HOT_ROOTS: Final = frozenset({"customer", "me", "customerByEmail", "customerByPhone"})
_ARGUMENTS: Final = {
    "customer": {"id"},
    "customerByEmail": {"email"},
    "customerByPhone": {"phone"},
    "interactions": {"first"},
}


_Getter = Callable[[GraphQLContext, Any], Any]
Arguments = dict[int, dict[str, Any]]  # by id() of a field's node


def _attributes(kind: str, *fields: str) -> dict[tuple[str, str], _Getter]:
    """Getters of plain fields that are the domain attribute of the same name (the
    GraphQL name is the attribute's, in camel case)."""
    return {(kind, f): _attribute(re.sub("([A-Z])", r"_\1", f).lower()) for f in fields}


def _attribute(name: str) -> _Getter:
    get = attrgetter(name)

    def getter(_context: GraphQLContext, value: object) -> object:
        return get(value)

    return getter


# How each plain field is read from what the domain returned, by (type, field): a
# customer or an interaction is its record, a connection its page, an edge the page and
# the edge's index in it (its cursor is sealed only when asked for).
_GETTERS: Final[dict[tuple[str, str], _Getter]] = {
    ("Customer", "id"): lambda ctx, c: global_id(ctx, "Customer", c.id),
    ("Customer", "customerId"): lambda _ctx, c: str(c.id),
    **_attributes("Customer", "status", "createdAt", "version"),
    ("InteractionConnection", "edges"): lambda _ctx, p: [(p, n) for n in range(len(p.items))],
    ("InteractionConnection", "pageInfo"): lambda _ctx, p: p,
    ("InteractionEdge", "node"): lambda _ctx, e: e[0].items[e[1]],
    ("InteractionEdge", "cursor"): lambda _ctx, e: e[0].cursor(e[1]),
    ("Interaction", "id"): lambda ctx, i: global_id(ctx, "Interaction", i.id),
    ("Interaction", "interactionId"): lambda _ctx, i: str(i.id),
    **_attributes(
        "Interaction", "channel", "type", "occurredAt", "amount", "currency", "externalId"
    ),
    **_attributes("PageInfo", *_PAGE_INFO[:-1]),
}


@dataclass(frozen=True, slots=True)
class _Field:
    key: str  # the response key (the alias, or the field name)
    name: str
    node: FieldNode
    definition: GraphQLField | None  # None for __typename
    children: tuple[_Field, ...]
    # The serialiser of a field whose type is a scalar or an enum (not a list), looked
    # up once here rather than unwrapped on every value; the name of an object's type.
    leaf: Callable[[Any], Any] | None = None
    kind: str = ""
    # How the parent completes it (a mode below) and its getter (None for __typename
    # and the customer's PII, profile and interactions), decided here once.
    mode: int = 0
    getter: _Getter | None = None


# A field's mode: __typename; a leaf, an object, a list of objects or another value read
# by its getter; the customer's PII, profile fields and interactions.
_TYPENAME, _LEAF, _OBJECT, _OBJECTS, _VALUE, _PII_FIELD, _PROFILE_FIELD, _TIMELINE = range(8)


_CUSTOMER_MODES: Final = {
    **dict.fromkeys(_PII, _PII_FIELD), **dict.fromkeys(_PROFILE, _PROFILE_FIELD),
    "interactions": _TIMELINE,
}  # fmt: skip


def _mode(parent: str, name: str, definition: GraphQLField | None, leaf: object) -> int:
    if definition is None:
        return _TYPENAME
    if parent == "Customer" and name in _CUSTOMER_MODES:
        return _CUSTOMER_MODES[name]
    if leaf is not None:
        return _LEAF
    kind = get_nullable_type(definition.type)
    item = get_nullable_type(kind.of_type) if isinstance(kind, GraphQLList) else None
    if isinstance(kind, GraphQLObjectType):
        return _OBJECT
    return _OBJECTS if isinstance(item, GraphQLObjectType) else _VALUE


@dataclass(frozen=True, slots=True)
class Plan:
    schema: GraphQLSchema
    operation: OperationDefinitionNode
    roots: tuple[_Field, ...]
    # Decided once per plan: how its variables are coerced, and each field's arguments
    # (None: a field without any).
    variables: Variables = dataclasses.field(init=False, repr=False, compare=False)
    fields: tuple[tuple[int, FieldArguments | None], ...] = dataclasses.field(
        init=False, repr=False, compare=False
    )
    shape: tuple[_Field, _Field | None] | None = dataclasses.field(
        init=False, repr=False, compare=False
    )  # what :attr:`hot` answers

    def __post_init__(self) -> None:
        definitions = self.operation.variable_definitions or ()
        object.__setattr__(self, "variables", Variables(self.schema, definitions))
        object.__setattr__(self, "fields", tuple(
            (id(f.node), None if f.definition is None or f.name not in _ARGUMENTS
             else FieldArguments(f.definition, f.node))
            for f in _walk(self.roots)
        ))  # fmt: skip
        object.__setattr__(self, "shape", self._hot())

    def run(
        self, context: GraphQLContext, variables: dict[str, Any] | None
    ) -> ExecutionResult | None:
        """The operation's result, or None (before anything ran) when graphql-core must
        run it instead: variables or arguments that do not coerce."""
        arguments = self.arguments(variables)
        if arguments is None:
            return None
        return _Run(context, arguments).result(self.schema, self.roots)

    def arguments(self, variables: dict[str, Any] | None) -> Arguments | None:
        """Each field's coerced arguments, or None when graphql-core must report them."""
        coerced = self.variables.coerce(variables)
        if isinstance(coerced, list):
            return None
        out: Arguments = {}
        try:
            for key, arguments in self.fields:
                out[key] = {} if arguments is None else arguments.coerce(coerced)
        except GraphQLError:
            return None
        return out

    @property
    def hot(self) -> tuple[_Field, _Field | None] | None:
        """The one profile root (``customer``, ``me``, ``customerByEmail`` or
        ``customerByPhone``) and its one ``interactions`` field, if the plan is of the
        shape the event-loop path reads in one statement."""
        return self.shape

    def _hot(self) -> tuple[_Field, _Field | None] | None:
        roots = [r for r in self.roots if r.definition is not None]
        if len(roots) != 1 or roots[0].name not in _HOT_ROOTS:
            return None
        timelines = [c for c in roots[0].children if c.name == "interactions"]
        return None if len(timelines) > 1 else (roots[0], timelines[0] if timelines else None)

    def run_read(
        self,
        context: GraphQLContext,
        arguments: Arguments,
        customer: CustomerRecord,
        timeline: Page[InteractionRecord] | None,
    ) -> ExecutionResult:
        """The result of a plan of the :attr:`hot` shape over what was read for it."""
        return _Run(context, arguments, (customer, timeline)).result(self.schema, self.roots)


class _Run:
    """One execution of a plan: the response, its errors and its redacted paths."""

    def __init__(
        self,
        context: GraphQLContext,
        arguments: Arguments,
        read: tuple[CustomerRecord, Page[InteractionRecord] | None] | None = None,
    ) -> None:
        self.context = context
        self.arguments = arguments
        self.errors: list[GraphQLError] = []
        self.read = read  # what the event-loop path read, in place of the services

    def result(self, schema: GraphQLSchema, roots: tuple[_Field, ...]) -> ExecutionResult:
        data: dict[str, Any] = {}
        query = schema.query_type
        assert query is not None  # noqa: S101 - a schema with customers has a query type
        for root in roots:
            if root.definition is None:
                data[root.key] = query.name
                continue
            try:
                record = (
                    self.read[0]
                    if self.read is not None
                    else _root_record(self.context, root.name, self.arguments[id(root.node)])
                )
            except Exception as exc:  # noqa: BLE001 - as graphql-core: a located error
                self.errors.append(located_error(exc, [root.node], [root.key]))
                if isinstance(root.definition.type, GraphQLNonNull):
                    # customer and me are non-null: the error nulls the whole response.
                    return ExecutionResult(data=None, errors=self.errors)
                data[root.key] = None
                continue
            data[root.key] = None if record is None else self._object(root, record, [root.key])
        return ExecutionResult(data=data, errors=self.errors or None)

    def _object(self, field: _Field, source: object, path: list[str | int]) -> dict[str, Any]:
        context = self.context
        out: dict[str, Any] = {}
        for child in field.children:
            mode = child.mode
            if mode == _LEAF:
                value = child.getter(context, source)  # type: ignore[misc]
                out[child.key] = None if value is None else child.leaf(value)  # type: ignore[misc]
            elif mode == _TYPENAME:
                out[child.key] = field.kind
            elif mode == _OBJECT:
                value = child.getter(context, source)  # type: ignore[misc]
                out[child.key] = (
                    None if value is None else self._object(child, value, [*path, child.key])
                )
            elif mode == _OBJECTS:
                items = child.getter(context, source)  # type: ignore[misc]
                where = [*path, child.key]
                out[child.key] = (
                    None
                    if items is None
                    else [
                        None if item is None else self._object(child, item, [*where, n])
                        for n, item in enumerate(items)
                    ]
                )
            elif mode == _PII_FIELD:
                out[child.key] = self._pii(source, _PII[child.name], path, child.key)
            elif mode == _PROFILE_FIELD:
                out[child.key] = self._profile(child, source, [*path, child.key])
            elif mode == _TIMELINE:
                where = [*path, child.key]
                page = self._interactions(child, source, where)
                out[child.key] = None if page is None else self._complete(child, page, where)
            else:
                value = child.getter(context, source)  # type: ignore[misc]
                out[child.key] = self._complete(child, value, [*path, child.key])
        return out

    def _complete(self, field: _Field, value: object, path: list[str | int]) -> Any:  # noqa: ANN401 - JSON
        assert field.definition is not None  # noqa: S101 - __typename is answered above
        return self._value(field.definition.type, field, value, path)

    def _value(
        self, kind: GraphQLOutputType, field: _Field, value: object, path: list[str | int]
    ) -> Any:  # noqa: ANN401 - JSON
        if isinstance(kind, GraphQLNonNull):
            kind = kind.of_type
        if value is None:
            return None
        if isinstance(kind, GraphQLList):
            items: list[Any] = value  # type: ignore[assignment]
            return [self._value(kind.of_type, field, v, [*path, n]) for n, v in enumerate(items)]
        if isinstance(kind, GraphQLObjectType):
            return self._object(field, value, path)
        return kind.serialize(value)  # type: ignore[union-attr]

    def _pii(self, record: object, name: str, path: list[str | int], key: str) -> str | None:
        assert isinstance(record, CustomerRecord)  # noqa: S101
        if record.resolutions.get(name) == "hidden":
            self.context.redacted.append(".".join(map(str, [*path, key])))
            return None
        value: str | None = getattr(record, name)
        return value

    def _profile(self, field: _Field, record: object, path: list[str | int]) -> Any:  # noqa: ANN401
        assert isinstance(record, CustomerRecord)  # noqa: S101
        hidden, value = profile_value(record, field.name)
        if hidden:
            self.context.redacted.append(".".join(map(str, path)))
            return None
        return self._complete(field, value, path)

    def _interactions(
        self, field: _Field, record: object, path: list[str | int]
    ) -> Page[InteractionRecord] | None:
        assert isinstance(record, CustomerRecord)  # noqa: S101
        if self.read is not None:
            return self.read[1]
        ctx = self.context
        first = self.arguments[id(field.node)]["first"]
        try:
            return ctx.vault.interactions.timeline(
                ctx.session, record.id, first=first, after=None, channel=None, type=None,
                since=None, until=None,
            )  # fmt: skip
        except REFUSED:
            ctx.redacted.append(".".join(map(str, path)))
        except Exception as exc:  # noqa: BLE001 - as graphql-core: a located error
            self.errors.append(located_error(exc, [field.node], path))
        return None


def _root_record(
    context: GraphQLContext, name: str, arguments: dict[str, Any]
) -> CustomerRecord | None:
    """What a root field resolves to, through the resolvers' own helpers."""
    if name == "me":
        return own_record(context)
    if name == "customer":
        return customer_record(context, arguments["id"])
    if name == "customerByEmail":
        found = context.vault.customers.find_by_email(context.session, arguments["email"])
        return only_one(found, "email")  # several: AMBIGUOUS, as the resolver answers
    found = context.vault.customers.find_by_phone(context.session, arguments["phone"])
    return only_one(found, "phone")


def _enum_names(serialize: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """An enum's serialiser, remembering each member's name (a few members per enum:
    Strawberry's serialiser costs as much as the rest of an interaction's leaves)."""
    names: dict[Any, Any] = {}

    def name_of(value: Any) -> Any:  # noqa: ANN401 - a member in, its name out
        try:
            return names[value]
        except KeyError:
            names[value] = found = serialize(value)
            return found
        except TypeError:  # not hashable: not a member, let the serialiser say so
            return serialize(value)

    return name_of


def _walk(fields: tuple[_Field, ...]) -> list[_Field]:
    out: list[_Field] = []
    for f in fields:
        out.append(f)
        out.extend(_walk(f.children))
    return out


def compile_plan(
    schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode
) -> Plan | None:
    """A plan for a validated operation of the supported shape, else None."""
    if operation.operation is not OperationType.QUERY or operation.directives:
        return None
    if len(document.definitions) != 1 or schema.query_type is None:
        return None  # fragments (or other operations) in the document: graphql-core
    roots = _fields(schema.query_type, operation, _ROOT)
    return None if roots is None else Plan(schema, operation, roots)


def _fields(
    parent: GraphQLObjectType, node: OperationDefinitionNode | FieldNode, shape: _Shape
) -> tuple[_Field, ...] | None:
    """The selection of ``node`` as plan fields, if every one fits ``shape``."""
    if node.selection_set is None:
        return None
    out: list[_Field] = []
    for selection in node.selection_set.selections:
        if not isinstance(selection, FieldNode) or selection.directives:
            return None
        found = _field(parent, selection, shape)
        if found is None or any(f.key == found.key for f in out):
            return None
        out.append(found)
    return tuple(out)


def _field(parent: GraphQLObjectType, selection: FieldNode, shape: _Shape) -> _Field | None:
    name = selection.name.value
    key = selection.alias.value if selection.alias else name
    given = {a.name.value for a in selection.arguments or ()}
    if name not in shape or not given <= _ARGUMENTS.get(name, set()):
        return None
    if name == "__typename":
        return _Field(key, name, selection, None, (), mode=_TYPENAME)
    definition = parent.fields[name]
    below = shape[name]
    kind = get_named_type(definition.type)
    if below is None:
        if selection.selection_set is not None:
            return None
        bare = definition.type
        bare = bare.of_type if isinstance(bare, GraphQLNonNull) else bare
        leaf = (
            _enum_names(bare.serialize)
            if isinstance(bare, GraphQLEnumType)
            else bare.serialize
            if isinstance(bare, GraphQLScalarType)
            else None
        )
        mode = _mode(parent.name, name, definition, leaf)
        getter = _GETTERS.get((parent.name, name))
        return _Field(key, name, selection, definition, (), leaf, kind.name, mode, getter)
    children = _fields(kind, selection, below) if isinstance(kind, GraphQLObjectType) else None
    if children is None:
        return None
    mode = _mode(parent.name, name, definition, None)
    getter = _GETTERS.get((parent.name, name))
    return _Field(key, name, selection, definition, children, None, kind.name, mode, getter)
