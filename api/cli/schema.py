"""``cvault schema print``: the GraphQL schema of this release as SDL on stdout.

``schema.graphql`` at the top of the repository is this output, committed: regenerate
it with ``cvault schema print > schema.graphql`` (tests/api/test_graphql_sdl.py fails
while the two differ, and checks the live schema breaks nothing the committed one has).
"""

from __future__ import annotations

import sys

import typer

__all__ = ["schema_app", "schema_sdl"]

schema_app = typer.Typer(help="The GraphQL schema: print it as SDL.", no_args_is_help=True)


def schema_sdl() -> str:
    """The schema's SDL as ``schema.graphql`` holds it (one newline at the end)."""
    from api.graphql.schema import build_schema

    return build_schema().as_str().rstrip("\n") + "\n"


@schema_app.command("print")
def print_schema() -> None:
    """Write the schema's SDL to stdout (redirect it to schema.graphql)."""
    sys.stdout.write(schema_sdl())


@schema_app.callback()
def _group() -> None:
    """The GraphQL schema."""
