"""Schema hygiene (issue 16, item 5): the committed schema.graphql matches the code,
every type, field, argument and enum value is described, and the live schema breaks
nothing the committed one promised (graphql-core's find_breaking_changes).

When the schema changes on purpose: `cvault schema print > schema.graphql` (or `make
schema`) and commit the file with the change; a reviewer sees the SDL diff. A field to
retire is deprecated (``deprecation_reason=``), not removed, until clients moved off it:
docs/graphql.md, "Schema"."""

from __future__ import annotations

from pathlib import Path

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    build_schema,
    find_breaking_changes,
)

from api.cli.schema import schema_sdl
from api.graphql.schema import build_schema as build_live_schema

COMMITTED = Path(__file__).resolve().parents[2] / "schema.graphql"
REGENERATE = "run `cvault schema print > schema.graphql` (or `make schema`) and commit it"


def _undescribed(schema: GraphQLSchema) -> list[str]:
    """Every type, field, argument and enum value of ``schema`` without a description."""
    missing: list[str] = []
    for name, kind in sorted(schema.type_map.items()):
        if name.startswith("__"):
            continue
        named: GraphQLNamedType = kind
        if not named.description:
            missing.append(name)
        if isinstance(kind, GraphQLObjectType | GraphQLInterfaceType):
            for field_name, field in kind.fields.items():
                if not field.description:
                    missing.append(f"{name}.{field_name}")
                missing += [
                    f"{name}.{field_name}({arg})"
                    for arg, argument in field.args.items()
                    if not argument.description
                ]
        elif isinstance(kind, GraphQLInputObjectType):
            missing += [f"{name}.{f}" for f, field in kind.fields.items() if not field.description]
        elif isinstance(kind, GraphQLEnumType):
            missing += [f"{name}.{v}" for v, value in kind.values.items() if not value.description]
        elif isinstance(kind, GraphQLUnionType):
            pass  # a union's members are types, described where they are declared
    return missing


def test_the_committed_schema_is_the_schema_of_the_code() -> None:
    """schema.graphql at the top of the repository is exactly `cvault schema print`."""
    committed = COMMITTED.read_text(encoding="utf-8") if COMMITTED.exists() else ""
    assert committed == schema_sdl(), f"schema.graphql is out of date: {REGENERATE}"


def test_every_type_field_argument_and_enum_value_is_described() -> None:
    """No type, field, argument or enum value of the live schema lacks a description."""
    missing = _undescribed(build_live_schema()._schema)
    assert missing == [], "add a description= to: " + ", ".join(missing)


def test_the_live_schema_breaks_nothing_of_the_committed_one() -> None:
    """graphql-core finds no breaking change from schema.graphql to the live schema (a
    removed or retyped field, argument or enum value, a new required argument...)."""
    committed = build_schema(COMMITTED.read_text(encoding="utf-8"))
    breaking = find_breaking_changes(committed, build_live_schema()._schema)
    assert [f"{c.type.name}: {c.description}" for c in breaking] == [], (
        "the schema breaks clients: deprecate instead of removing; to accept a break on "
        f"purpose, {REGENERATE}"
    )


def test_the_checks_see_what_they_look_for() -> None:
    """The description walk and the breaking-change check find a missing description and
    a removed field when there is one (so an empty list above means something)."""
    before = build_schema(
        '"""A thing."""\ntype Query {\n  """Its name."""\n  name: String\n  alias: String\n}'
    )
    after = build_schema('"""A thing."""\ntype Query {\n  """Its name."""\n  name: String\n}')
    assert _undescribed(before) == ["Query.alias"]
    assert [c.description for c in find_breaking_changes(before, after)] == [
        "Field Query.alias was removed."
    ]
