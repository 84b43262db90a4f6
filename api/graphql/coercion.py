"""Variables and arguments of a compiled plan, coerced without graphql-core's walk.

A plan runs the same operation many times: its variable definitions and argument nodes
never change, only the variables' values. :class:`Variables` decides once, per
operation, how each variable is coerced when it is one of the five standard scalars
(``ID``, ``String``, ``Int``, ``Float``, ``Boolean``; nullable or not, with or without
a default): a request's values are then checked and copied with a few type tests. It
returns exactly what :func:`graphql.execution.values.get_variable_values` returns (the
same :class:`VariableValues`, with the same sources and coerced values) and hands
everything else to it: lists, input objects, custom scalars, and every value it does
not accept as it is (an ``Int`` given as a float, an ``ID`` as a number, a wrong type,
a missing non-null), so that graphql-core coerces it or words the error.

:class:`FieldArguments` does the same for a field's arguments: literals and defaults
are coerced once, a bare ``$variable`` is read from the coerced variables as
:func:`graphql.execution.values.get_argument_values` reads it, and anything else (a
variable inside a list or object, an argument graphql-core refuses) goes to it.
``tests/api/test_graphql_coercion.py`` checks both against graphql-core.
"""

from __future__ import annotations

from collections.abc import Collection
from enum import Enum
from math import isfinite
from typing import Any, Final

from graphql import (
    FieldNode,
    GraphQLBoolean,
    GraphQLError,
    GraphQLField,
    GraphQLFloat,
    GraphQLID,
    GraphQLInt,
    GraphQLNonNull,
    GraphQLSchema,
    GraphQLString,
    Undefined,
    VariableDefinitionNode,
    VariableNode,
    is_required_argument,
)
from graphql.execution.get_variable_signature import (
    GraphQLVariableSignature,
    get_variable_signature,
)
from graphql.execution.values import (
    VariableValues,
    VariableValueSource,
    coerce_argument,
    get_argument_values,
    get_variable_values,
)
from graphql.utilities.coerce_input_value import coerce_default_value

__all__ = ["FieldArguments", "Variables"]

_MIN_INT: Final = -(2**31)
_MAX_INT: Final = 2**31 - 1


def _string(value: object) -> bool:
    return type(value) is str


def _int(value: object) -> bool:
    return type(value) is int and _MIN_INT <= value <= _MAX_INT


def _float(value: object) -> bool:
    return type(value) is float and isfinite(value)


def _boolean(value: object) -> bool:
    return type(value) is bool


# The values a standard scalar's coercion returns unchanged (the same object): a str for
# ID and String, an int in 32 bits, a finite float, a bool. Anything else is coerced (an
# ID or a Float from an int, an Int from a whole float) or refused by graphql-core.
_AS_IS: Final = {
    GraphQLID: _string, GraphQLString: _string, GraphQLInt: _int, GraphQLFloat: _float,
    GraphQLBoolean: _boolean,
}  # fmt: skip

# One variable: its name, signature, whether it is non-null, the test of a value taken
# as it is, and its coerced default (Undefined: none).
_Variable = tuple[str, GraphQLVariableSignature, bool, Any, Any]


class Variables:
    """The coercion of one operation's variable definitions."""

    __slots__ = ("_definitions", "_fast", "_schema")

    def __init__(
        self, schema: GraphQLSchema, definitions: Collection[VariableDefinitionNode]
    ) -> None:
        self._schema = schema
        self._definitions = definitions
        self._fast = self._plan(schema, definitions)

    @staticmethod
    def _plan(
        schema: GraphQLSchema, definitions: Collection[VariableDefinitionNode]
    ) -> tuple[_Variable, ...] | None:
        out: list[_Variable] = []
        for node in definitions:
            signature = get_variable_signature(schema, node)
            if isinstance(signature, GraphQLError):
                return None
            kind: Any = signature.type
            required = isinstance(kind, GraphQLNonNull)
            test = _AS_IS.get(kind.of_type if required else kind)
            if test is None:
                return None  # a list, an input object or a custom scalar: graphql-core
            default: Any = Undefined
            if node.default_value is not None:
                coerced = get_variable_values(schema, [node], {})
                if isinstance(coerced, list):
                    return None  # a default graphql-core refuses: let it say so each time
                default = coerced.coerced.get(signature.name, Undefined)
            out.append((signature.name, signature, required, test, default))
        return tuple(out)

    def coerce(self, inputs: dict[str, Any] | None) -> VariableValues | list[GraphQLError]:
        """What ``get_variable_values(schema, definitions, inputs or {})`` returns."""
        fast = self._fast
        if fast is not None and (inputs is None or type(inputs) is dict):
            given = inputs or {}
            sources: dict[str, VariableValueSource] = {}
            coerced: dict[str, Any] = {}
            for name, signature, required, test, default in fast:
                value = given.get(name, Undefined)
                if value is Undefined:
                    if default is not Undefined:
                        sources[name] = VariableValueSource(signature)
                        coerced[name] = default
                        continue
                    if required:
                        break  # a missing non-null: graphql-core words the error
                    sources[name] = VariableValueSource(signature)
                    continue
                if value is None:
                    if required:
                        break
                elif not test(value):
                    break
                sources[name] = VariableValueSource(signature, value)
                coerced[name] = value
            else:
                return VariableValues(sources, coerced)
        return get_variable_values(self._schema, self._definitions, inputs or {})


# The values of a literal that may be kept for every request (a list or an input object
# may hold a variable, and could be changed by whoever receives it).
_CONSTANT: Final = (str, int, float, bool, type(None), type(Undefined), Enum)

# One argument of a field: (out name, constant value) for a literal or a default
# coerced once (Undefined: left out), or (out name, variable, non-null, the default
# when the variable is not given, whether it is required) for a bare ``$variable``.
_Argument = tuple[str, Any] | tuple[str, str, bool, Any, bool]


class FieldArguments:
    """The coercion of one field's arguments."""

    __slots__ = ("_definition", "_fast", "_node")

    def __init__(self, definition: GraphQLField, node: FieldNode) -> None:
        self._definition = definition
        self._node = node
        self._fast = self._plan(definition, node)

    @staticmethod
    def _plan(definition: GraphQLField, node: FieldNode) -> tuple[_Argument, ...] | None:
        given = {a.name.value: a for a in node.arguments or ()}
        out: list[_Argument] = []
        try:
            for name, argument in definition.args.items():
                out_name = argument.out_name or name
                found = given.get(name)
                if found is not None and isinstance(found.value, VariableNode):
                    default = Undefined
                    required = is_required_argument(argument)
                    if not required:
                        default = coerce_default_value(argument)
                    nonnull = isinstance(argument.type, GraphQLNonNull)
                    out.append((out_name, found.value.name.value, nonnull, default, required))
                    continue
                one: dict[str, Any] = {}
                coerce_argument(one, node, name, argument, found, None, None)
                value = one.get(out_name, Undefined)
                if not isinstance(value, _CONSTANT):
                    return None  # a list or an object (shared by every request): graphql-core
                out.append((out_name, value))
        except (GraphQLError, TypeError):
            return None  # graphql-core refuses it (or a variable nested in a literal)
        return tuple(out)

    def coerce(self, variables: VariableValues) -> dict[str, Any]:
        """What ``get_argument_values(definition, node, variables)`` returns (raises
        :class:`GraphQLError` as it does)."""
        fast = self._fast
        if fast is None:
            return get_argument_values(self._definition, self._node, variables)
        coerced = variables.coerced
        out: dict[str, Any] = {}
        for argument in fast:
            if len(argument) == 2:
                if argument[1] is not Undefined:
                    out[argument[0]] = argument[1]
                continue
            out_name, variable, nonnull, default, required = argument
            value = coerced.get(variable, Undefined)
            if value is Undefined and not required:
                if default is not Undefined:
                    out[out_name] = default
                continue
            if (value is None or value is Undefined) and nonnull:
                return get_argument_values(self._definition, self._node, variables)  # raises
            out[out_name] = value
        return out
