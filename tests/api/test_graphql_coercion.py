"""A compiled plan coerces variables and arguments exactly as graphql-core does.

:class:`api.graphql.coercion.Variables` and :class:`FieldArguments` decide once per
operation what graphql-core's ``get_variable_values`` and ``get_argument_values`` walk
on every request. For any variable definitions and any values (valid or not, present
or missing), and any field arguments (literals, variables, defaults, absent), they must
give the same Python values, and the same errors, word for word, where graphql-core
refuses. The plans of the real schema must give every field the arguments graphql-core
gives it.
"""

from __future__ import annotations

import math
from typing import Any

from graphql import (
    FieldNode,
    GraphQLError,
    OperationDefinitionNode,
    build_schema,
    get_argument_values,
    get_variable_values,
    parse,
    print_ast,
)
from graphql.execution.values import VariableValues
from hypothesis import given, settings
from hypothesis import strategies as st

from api.graphql.coercion import FieldArguments, Variables
from api.graphql.compiled import compile_plan
from api.graphql.schema import build_schema as build_vault_schema

SCHEMA = build_schema("""
enum Colour { RED GREEN }
scalar Json
input Pair { a: Int!, b: String = "x" }
type Query {
  f(id: ID, s: String, n: Int, x: Float, b: Boolean, nn: Int!, d: Int = 3,
    ds: String = "d", list: [Int], e: Colour, p: Pair, j: Json, nid: ID!): String
}
""")
FIELD = SCHEMA.query_type.fields["f"]  # type: ignore[union-attr]

# Variable types, plain ones (the fast path) and others (graphql-core's).
TYPES = [
    "ID", "ID!", "String", "String!", "Int", "Int!", "Float", "Float!", "Boolean", "Boolean!",
    "Int = 5", "Int! = 5", 'String = "a"', "Float = 1", "ID = 7", "Boolean = null",
    'ID! = "x"', "[Int]", "Colour", "Pair", "Json", "Int = 1.5", "Nope",
]  # fmt: skip
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**33), max_value=2**33),
    st.sampled_from([2**31 - 1, 2**31, -(2**31), -(2**31) - 1]),
    st.sampled_from([0.0, 1.0, -2.0, 1.5, 2.0**31, math.inf, -math.inf, math.nan, 1e300]),
    st.text(max_size=4),
    st.lists(st.integers(min_value=-3, max_value=3), max_size=2),
    st.fixed_dictionaries({"a": st.integers(min_value=0, max_value=3)}),
    st.just("RED"),
)
# Literals for each argument of ``f``: right and wrong types, and nulls.
LITERALS = ['"s"', "7", "1.5", "true", "null", "RED", "[1, 2]", "{a: 1}", '"RED"', "2147483648"]


def _variables(types: list[str]) -> OperationDefinitionNode:
    defs = ", ".join(f"$v{n}: {t}" for n, t in enumerate(types))
    document = parse(f"query{f'({defs})' if defs else ''} {{ f }}", no_location=False)
    return document.definitions[0]  # type: ignore[return-value]


def _same(errors: Any, expected: Any) -> bool:
    if isinstance(expected, list):
        return isinstance(errors, list) and [e.formatted for e in errors] == [
            e.formatted for e in expected
        ]
    return not isinstance(errors, list) and _equal(_plain(errors), _plain(expected))


def _plain(values: VariableValues) -> tuple[dict[str, Any], dict[str, Any]]:
    """Sources and coerced values comparable by value (a new signature object each
    time graphql-core coerces: its default is compared as the literal's text)."""
    sources = {
        name: (
            source.signature.name, str(source.signature.type),
            None if source.signature.default is None
            else print_ast(source.signature.default.literal),  # type: ignore[arg-type]
            source.signature.default_value, source.value,
        )
        for name, source in values.sources.items()
    }  # fmt: skip
    return sources, values.coerced


def _equal(a: Any, b: Any) -> bool:
    """Equal, NaN included, and of the same Python types (1 is not 1.0)."""
    if isinstance(a, tuple | list):
        return type(a) is type(b) and len(a) == len(b) and all(map(_equal, a, b))
    if isinstance(a, dict):
        return type(b) is dict and list(a) == list(b) and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return type(a) is type(b) and a == b


@settings(max_examples=400, deadline=None)
@given(
    types=st.lists(st.sampled_from(TYPES), max_size=4),
    given_values=st.lists(st.one_of(st.just("missing"), VALUES), min_size=4, max_size=4),
    as_none=st.booleans(),
)
def test_variables_coerce_as_graphql_core_does(
    types: list[str], given_values: list[Any], as_none: bool
) -> None:
    """Any definitions and values: the same VariableValues, or the same errors."""
    operation = _variables(types)
    inputs = {f"v{n}": v for n, v in enumerate(given_values) if v != "missing"}
    sent = None if as_none and not inputs else inputs
    definitions = operation.variable_definitions or ()
    expected = get_variable_values(SCHEMA, definitions, sent or {})
    actual = Variables(SCHEMA, definitions).coerce(sent)
    assert _same(actual, expected)


def test_plain_values_are_taken_as_graphql_core_takes_them() -> None:
    """A table of the cases the fast path answers itself, and a few it hands over."""
    operation = _variables(["ID!", "String", "Int = 5", "Float", "Boolean!", "Int"])
    definitions = operation.variable_definitions or ()
    variables = Variables(SCHEMA, definitions)
    cases: tuple[dict[str, Any], ...] = (
        {"v0": "x", "v4": True},
        {"v0": "x", "v1": None, "v2": None, "v3": 2.5, "v4": False, "v5": -(2**31)},
        {"v0": 7, "v4": True},  # an ID from a number: graphql-core makes it "7"
        {"v0": "x", "v3": 2, "v4": True},  # a Float from an int: 2.0
        {"v0": "x", "v4": True, "v5": 3.0},  # an Int from a whole float: 3
        {"v0": "x", "v4": True, "v5": 2**31},  # beyond 32 bits: an error
        {"v4": True},  # a missing non-null: an error
        {"v0": None, "v4": "yes"},
    )
    for inputs in cases:
        expected = get_variable_values(SCHEMA, definitions, inputs)
        assert _same(variables.coerce(inputs), expected), inputs


@st.composite
def _arguments(draw: st.DrawFn) -> tuple[str, str]:
    """Arguments of ``f`` (absent, a literal, or a variable) and their definitions."""
    parts, defs = [], []
    for n, name in enumerate(FIELD.args):
        how = draw(st.sampled_from(["absent", "literal", "variable"]))
        if how == "literal":
            parts.append(f"{name}: {draw(st.sampled_from(LITERALS))}")
        elif how == "variable":
            kind = draw(st.sampled_from([str(FIELD.args[name].type), "Int", "String!"]))
            defs.append(f"$a{n}: {kind}")
            parts.append(f"{name}: $a{n}")
    if draw(st.booleans()):
        parts.append("list: [1, $nested]")
        defs.append("$nested: Int")
    return ", ".join(parts), ", ".join(defs)


@settings(max_examples=400, deadline=None)
@given(
    arguments=_arguments(),
    values=st.lists(st.one_of(st.just("missing"), VALUES), min_size=16, max_size=16),
)
def test_field_arguments_coerce_as_graphql_core_does(
    arguments: tuple[str, str], values: list[Any]
) -> None:
    """Any arguments over any coerced variables: the same dict, or the same error."""
    given_arguments, defs = arguments
    selection = f"f({given_arguments})" if given_arguments else "f"
    text = f"query{f'({defs})' if defs else ''} {{ {selection} }}"
    operation: OperationDefinitionNode = parse(text).definitions[0]  # type: ignore[assignment]
    definitions = operation.variable_definitions or ()
    names = [d.variable.name.value for d in definitions]
    inputs = {n: v for n, v in zip(names, values, strict=False) if v != "missing"}
    variables = get_variable_values(SCHEMA, definitions, inputs)
    if isinstance(variables, list):
        return  # graphql-core stops before the arguments
    node: FieldNode = operation.selection_set.selections[0]  # type: ignore[assignment]
    expected: Any
    try:
        expected = get_argument_values(FIELD, node, variables)
    except GraphQLError as error:
        expected = error.formatted
    actual: Any
    try:
        actual = FieldArguments(FIELD, node).coerce(variables)
    except GraphQLError as error:
        actual = error.formatted
    assert _equal(actual, expected)


def test_the_vault_plans_give_every_field_graphql_cores_arguments() -> None:
    """The profile shapes of the real schema: each field's arguments as graphql-core's,
    and None (graphql-core reports it) where a variable or an argument is refused."""
    schema = build_vault_schema()._schema
    queries: dict[str, list[dict[str, Any]]] = {
        "query($id: ID!, $n: Int!) { customer(id: $id) { interactions(first: $n) { "
        "edges { cursor } } } }": [
            {"id": "abc", "n": 3}, {"id": "abc"}, {"id": 5, "n": 2}, {"id": "a", "n": 2.0},
            {"id": "a", "n": None}, {"id": None, "n": 1}, {},
        ],
        "query($n: Int = 4) { me { interactions(first: $n) { edges { cursor } } } }": [
            {}, {"n": None}, {"n": 2}, {"n": "2"},
        ],
        'query { customer(id: "x") { interactions(first: 2) { edges { cursor } } } }': [{}],
        "query($e: String!) { customerByEmail(email: $e) { id } }": [{"e": "a@b"}, {"e": 1}],
    }  # fmt: skip
    for text, cases in queries.items():
        document = parse(text)
        operation: OperationDefinitionNode = document.definitions[0]  # type: ignore[assignment]
        plan = compile_plan(schema, document, operation)
        assert plan is not None
        for inputs in cases:
            coerced = get_variable_values(schema, operation.variable_definitions or (), inputs)
            expected: dict[int, dict[str, Any]] | None = None
            if not isinstance(coerced, list):
                try:
                    expected = {
                        key: {} if arguments is None
                        else get_argument_values(arguments._definition, arguments._node, coerced)
                        for key, arguments in plan.fields
                    }  # fmt: skip
                except GraphQLError:
                    expected = None
            actual = plan.arguments(inputs)
            assert (actual is None) == (expected is None), (text, inputs)
            assert actual is None or _equal(list(actual.items()), list(expected.items()))  # type: ignore[union-attr]
