"""Alembic owns the schema: migrations and models never drift apart."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from vault.storage.db import make_engine
from vault.storage.migrate import current_revision, head_revision, upgrade
from vault.storage.models import Base


def test_migrations_match_the_models(database_url: tuple[str, str | None]) -> None:
    """After `upgrade head` on an empty database, autogenerate finds no difference."""
    url, schema = database_url
    engine = make_engine(url, schema=schema)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
        assert diff == []
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_upgrade_twice_is_a_no_op(database_url: tuple[str, str | None]) -> None:
    """Running the migrations again on an up-to-date database changes nothing."""
    url, schema = database_url
    engine = make_engine(url, schema=schema)
    try:
        upgrade(engine)
        first = current_revision(engine)
        upgrade(engine)
        assert current_revision(engine) == first == head_revision()
    finally:
        engine.dispose()


def test_naming_convention_names_every_constraint() -> None:
    """Every constraint and index has a convention-made name, so migrations can drop it."""
    for table in Base.metadata.tables.values():
        for constraint in table.constraints:
            assert constraint.name, f"unnamed constraint on {table.name}"
        for index in table.indexes:
            assert index.name is not None
            assert index.name.startswith("ix_")
