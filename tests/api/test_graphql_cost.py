"""The cost limit comes from the schema (issue 13, item 5).

Only ``customers`` and ``interactions`` used to multiply their subtree by the page size:
fifteen aliased ``segment { members(first: 100) { ... interactions(first: 100) } }``
cost 4,575 and ran. Now every field with a page-size argument multiplies its subtree by
it (its default when absent, the largest page when a variable), every other list by
``LIST_COST``; a walk over every field of the schema that returns a list or a connection
checks it, so a new list field cannot forget it. Variables, named and inline fragments
and aliases cannot hide cost.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

import httpx2
import pytest
from graphql import (
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    Undefined,
    get_named_type,
    parse,
    validate,
)

from api.graphql.limits import LIST_COST, PAGE_ARGUMENTS, Limits, check_document
from api.graphql.schema import build_schema
from policies import Role
from tests.api.test_graphql_hardening import Gateway, gateway
from vault.pagination import MAX_PAGE

__all__ = ["gateway"]  # the fixture, shared with the hardening tests

SCHEMA: Final = build_schema()._schema
UNLIMITED: Final = Limits(max_cost=10**12, max_aliases=10**6, max_depth=100)


def _cost(document: str, schema: GraphQLSchema = SCHEMA) -> int:
    """The cost of a valid document (validated here, so the tests' documents are real)."""
    parsed = parse(document)
    assert validate(schema, parsed) == []
    return check_document(parsed, UNLIMITED, schema)


def _code(response: httpx2.Response) -> tuple[int, str]:
    return response.status_code, response.json()["errors"][0]["extensions"]["code"]


# -- a walk over the schema ------------------------------------------------------------------


def _is_list(kind: GraphQLOutputType) -> bool:
    return isinstance(kind.of_type if isinstance(kind, GraphQLNonNull) else kind, GraphQLList)


def _paged(field: GraphQLField) -> bool:
    return any(name in field.args for name in PAGE_ARGUMENTS)


def _object(field: GraphQLField) -> GraphQLObjectType | None:
    named = get_named_type(field.type)
    return named if isinstance(named, GraphQLObjectType) else None


@dataclass(frozen=True)
class Step:
    """A field on the way from a root type, and the arguments it must be given."""

    type_name: str
    field_name: str


def _paths(schema: GraphQLSchema) -> dict[str, tuple[str, list[Step]]]:
    """For every object type reachable from the roots: the operation (query or mutation)
    and the shortest chain of fields that reaches it."""
    found: dict[str, tuple[str, list[Step]]] = {}
    queue: deque[tuple[GraphQLObjectType, str, list[Step]]] = deque()
    for operation, root in (("query", schema.query_type), ("mutation", schema.mutation_type)):
        assert root is not None
        if root.name not in found:
            found[root.name] = (operation, [])
            queue.append((root, operation, []))
    while queue:
        current, operation, path = queue.popleft()
        for name, field in current.fields.items():
            target = _object(field)
            if target is not None and target.name not in found:
                steps = [*path, Step(current.name, name)]
                found[target.name] = (operation, steps)
                queue.append((target, operation, steps))
    return found


def _list_fields(schema: GraphQLSchema) -> Iterator[tuple[GraphQLObjectType, str, GraphQLField]]:
    """Every field that returns a connection (it takes a page size) or a list of objects;
    a list of scalars or enums has no subtree to multiply."""
    reachable = _paths(schema)
    for type_name in sorted(reachable):
        owner = schema.get_type(type_name)
        assert isinstance(owner, GraphQLObjectType)
        for name, field in owner.fields.items():
            if _paged(field) or (_is_list(field.type) and _object(field) is not None):
                yield owner, name, field


class Document:
    """Documents that reach one field of the schema, with its selection varied."""

    def __init__(
        self, schema: GraphQLSchema, owner: GraphQLObjectType, name: str, page_argument: str
    ) -> None:
        self.schema = schema
        self.page_argument = page_argument  # the page-size argument the page is given to
        self.operation, self.path = _paths(schema)[owner.name]
        self.path = [*self.path, Step(owner.name, name)]
        self.variables: list[str] = []

    def _arguments(self, step: Step, page: str | None) -> str:
        owner = self.schema.get_type(step.type_name)
        assert isinstance(owner, GraphQLObjectType)
        given = []
        for arg_name, arg in owner.fields[step.field_name].args.items():
            if arg_name == self.page_argument and page is not None:
                given.append(f"{arg_name}: {page}")
                if page.startswith("$"):
                    self.variables.append(f"{page}: Int")
            elif isinstance(arg.type, GraphQLNonNull) and arg.default_value is Undefined:
                variable = f"$v{len(self.variables)}"
                self.variables.append(f"{variable}: {arg.type}")
                given.append(f"{arg_name}: {variable}")
        return f"({', '.join(given)})" if given else ""

    def text(self, inner: str, *, page: str | None = None, beside: str = "") -> str:
        """The document: ``inner`` is the field's selection, ``page`` its page size as
        written (None: absent), ``beside`` a selection next to the field."""
        self.variables = []
        last = self.path[-1]
        body = f"{last.field_name}{self._arguments(last, page)} {inner} {beside}"
        for step in reversed(self.path[:-1]):
            body = f"{step.field_name}{self._arguments(step, None)} {{ {body} }}"
        header = f"({', '.join(self.variables)})" if self.variables else ""
        return f"{self.operation}{header} {{ {body} }}"


def _selection(field: GraphQLField, leaf: str) -> str:
    """The field's selection down to its items, with ``leaf`` selected on each item."""
    target = _object(field)
    assert target is not None
    if _paged(field) and "edges" in target.fields:
        return f"{{ edges {{ node {{ id {leaf} }} }} }}"
    first = next(n for n, f in target.fields.items() if not f.args and _object(f) is None)
    return f"{{ {first} {leaf} }}"


def _factor(doc: Document, field: GraphQLField, page: str | None) -> float:
    """How many times the cost of one more field on an item of the list exceeds the
    cost of one more field beside the list (on its parent)."""
    plain = _selection(field, "")
    item = _cost(doc.text(_selection(field, "__typename"), page=page)) - _cost(
        doc.text(plain, page=page)
    )
    parent = _cost(doc.text(plain, page=page, beside="__typename")) - _cost(
        doc.text(plain, page=page)
    )
    return item / parent


def test_every_list_field_of_the_schema_multiplies_its_subtree() -> None:
    """For every field returning a connection or a list of objects, reached from its root
    by the shortest path: one more field on each item costs the field's multiple of one
    more field beside it: the page size given (7), the largest page for a variable, the
    argument's default when absent, for first and for last alike; LIST_COST for a list
    without a page size; 1 for the edges of a connection (they are the page its field
    counted). The paged and plain lists the issue names are among those walked."""
    paged: set[str] = set()
    pages: set[str] = set()
    plain: set[str] = set()
    connections = {
        get_named_type(f.type).name
        for _, _, f in _list_fields(SCHEMA)
        if _paged(f) and not _is_list(f.type)
    }
    for owner, name, field in _list_fields(SCHEMA):
        doc = Document(SCHEMA, owner, name, "first")
        where = f"{owner.name}.{name}"
        if owner.name in connections:  # the connection's edges: the page itself
            pages.add(where)
            assert (where, _factor(doc, field, None)) == (where, 1)
        elif _paged(field):
            paged.add(where)
            default = next(field.args[a].default_value for a in PAGE_ARGUMENTS if a in field.args)
            assert (where, _factor(doc, field, None)) == (where, default or MAX_PAGE)
            for argument in (a for a in PAGE_ARGUMENTS if a in field.args):
                doc = Document(SCHEMA, owner, name, argument)
                assert (where, argument, _factor(doc, field, "7")) == (where, argument, 7)
                assert (where, argument, _factor(doc, field, "$n")) == (
                    where, argument, MAX_PAGE,
                )  # fmt: skip
        else:
            plain.add(where)
            assert (where, _factor(doc, field, None)) == (where, LIST_COST)
    assert paged >= {
        "Query.customers", "Query.auditLog", "Query.dsrRequests", "Customer.interactions",
        "Customer.accessHistory", "Segment.members",
    }  # fmt: skip
    assert plain >= {
        "Query.segments", "Query.purposes", "Query.webhooks", "Query.legalHolds",
        "Query.channelAnalytics", "Customer.segments", "Customer.consents",
        "Customer.consentHistory", "DsrRequest.history", "ChannelStats.revenue",
        "Mutation.refreshSegments",
    }  # fmt: skip
    assert pages >= {
        "CustomerConnection.edges", "InteractionConnection.edges", "AuditEntryConnection.edges",
        "DsrRequestConnection.edges",
    }  # fmt: skip
    assert LIST_COST > 1


def test_a_new_list_field_is_costed_without_being_named_anywhere() -> None:
    """A schema the limits have never seen: a paged field and a plain list, both new,
    multiply their subtrees (5 and LIST_COST) with no change to the limits."""
    from graphql import build_schema as from_sdl  # noqa: PLC0415 - only this test needs it

    schema = from_sdl(
        """
        type Query { gadgets(first: Int = 5): GadgetConnection! parts: [Part!]! }
        type GadgetConnection { edges: [GadgetEdge!]! }
        type GadgetEdge { node: Part! }
        type Part { id: ID! name: String }
        """
    )
    assert _cost("{ gadgets { edges { node { id } } } }", schema) == 1 + 5 * 3
    assert _cost("{ gadgets { edges { node { id name } } } }", schema) == 1 + 5 * 4
    assert _cost("{ parts { id } }", schema) == 1 + LIST_COST
    assert _cost("{ parts { id name } }", schema) == 1 + 2 * LIST_COST


def test_last_costs_what_it_asks_for_not_the_default_of_first() -> None:
    """customers(last: 100) costs a hundred customers (not first's default of 20); first
    and last together (refused when run) cost the larger; nodes(ids:) costs one per id
    given, the largest page when the ids are a variable."""
    item = "{ edges { node { email } } }"
    assert _cost(f"{{ customers(last: 100) {item} }}") == 1 + 100 * 3
    assert _cost(f"{{ customers {item} }}") == 1 + 20 * 3
    assert _cost(f"{{ customers(first: 5, last: 40) {item} }}") == 1 + 40 * 3
    assert _cost('{ nodes(ids: ["a", "b", "c"]) { id } }') == 1 + 3 * 1
    assert _cost("query($i: [ID!]!) { nodes(ids: $i) { id } }") == 1 + MAX_PAGE * 1


# -- the shape of the issue ------------------------------------------------------------------

MEMBERS_DEEP: Final = (
    "members(first: 100) { edges { node { "
    "interactions(first: 100) { edges { node { type } } } } } }"
)
PLAIN: Final = f'segment(id: "s") {{ {MEMBERS_DEEP} }}'
NAMED: Final = (
    'segment(id: "s") { ...S } '
    "fragment S on Segment { members(first: 100) { ...M } } "
    "fragment M on CustomerConnection { edges { node { ...C } } } "
    "fragment C on Customer { interactions(first: 100) { edges { node { type } } } }"
)
INLINE: Final = (
    'segment(id: "s") { ... on Segment { members(first: 100) { ... { edges { '
    "... on CustomerEdge { node { ... on Customer { interactions(first: 100) { "
    "... on InteractionConnection { edges { node { type } } } } } } } } } } } }"
)
VARIABLE: Final = (
    'segment(id: "s") { members(first: $n) { edges { node { '
    "interactions(first: $m) { edges { node { type } } } } } } }"
)


def _aliased(shape: str, count: int) -> str:
    """``count`` aliases of a root field whose text is ``shape`` (fragments after it)."""
    field, _, fragments = shape.partition(" fragment ")
    roots = " ".join(f"s{i}: {field}" for i in range(count))
    header = "($n: Int = 1, $m: Int = 1)" if "$" in shape else ""
    return f"query{header} {{ {roots} }}" + (f" fragment {fragments}" if fragments else "")


def test_segment_members_cost_like_customers() -> None:
    """A hundred members with a hundred interactions each cost what a hundred customers
    with a hundred interactions each cost (30,301, plus the segment field)."""
    customers = (
        "{ customers(first: 100) { edges { node { "
        "interactions(first: 100) { edges { node { type } } } } } } }"
    )
    assert _cost(customers) == 30_301
    assert _cost(f"{{ {PLAIN} }}") == 30_302


@pytest.mark.parametrize(
    "shape", [PLAIN, NAMED, INLINE, VARIABLE], ids=["plain", "named", "inline", "variables"]
)
def test_fragments_variables_and_aliases_cannot_hide_cost(shape: str) -> None:
    """The same work written with named fragments, inline fragments (with and without a
    type condition) or page sizes as variables (defaulting to 1) costs at least as much
    as written plainly, and fifteen aliases cost fifteen times one."""
    one = _cost(_aliased(shape, 1))
    assert one >= _cost(_aliased(PLAIN, 1))
    assert _cost(_aliased(shape, 15)) == 15 * one


@pytest.mark.parametrize(
    "shape", [PLAIN, NAMED, INLINE, VARIABLE], ids=["plain", "named", "inline", "variables"]
)
def test_fifteen_aliased_segment_members_are_refused(gateway: Gateway, shape: str) -> None:
    """The query of the issue, fifteen aliased segment members with their interactions,
    however written, is 400 QUERY_TOO_COMPLEX; one alias alone is within the limit (it
    runs, and the unknown segment is NOT_FOUND)."""
    variables = {"n": 1, "m": 1} if "$" in shape else None
    many = gateway.post(_aliased(shape, 15), variables, role=Role.ANALYST, purpose="analytics")
    unknown = _aliased(shape, 1).replace('"s"', f'"{uuid.uuid4()}"')
    one = gateway.post(unknown, variables, role=Role.ANALYST, purpose="analytics")
    assert _code(many) == (400, "QUERY_TOO_COMPLEX")
    assert "cost" in many.json()["errors"][0]["message"]
    assert _code(one) == (200, "NOT_FOUND")
