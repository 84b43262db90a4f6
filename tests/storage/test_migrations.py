"""Alembic owns the schema: migrations and models never drift apart."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from vault.storage.db import make_engine
from vault.storage.migrate import current_revision, head_revision, upgrade
from vault.storage.models import Base
from vault.storage.models.interactions import compared_by_autogenerate


def test_migrations_match_the_models(database_url: tuple[str, str | None]) -> None:
    """After `upgrade head` on an empty database, autogenerate finds no difference."""
    url, schema = database_url
    engine = make_engine(url, schema=schema)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(
                    conn,
                    opts={
                        "compare_type": True,
                        "include_object": compared_by_autogenerate(conn.dialect.name),
                    },
                ),
                Base.metadata,
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


def test_migrated_audit_tables_are_append_only(database_url: tuple[str, str | None]) -> None:
    """The triggers come with the migration too, not only with create_all."""
    import pytest  # noqa: PLC0415
    from sqlalchemy import text  # noqa: PLC0415
    from sqlalchemy.exc import DBAPIError  # noqa: PLC0415

    url, schema = database_url
    engine = make_engine(url, schema=schema)
    try:
        upgrade(engine)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO audit_checkpoints (tree_size, root_hash, frontier, note, "
                    "created_at) VALUES (0, :h, :h, 'n', :t)"
                ),
                {"h": b"\x00" * 32, "t": "2026-01-01 00:00:00+00:00"},
            )
        for statement in (
            "UPDATE audit_checkpoints SET note = 'x'",
            "DELETE FROM audit_checkpoints",
        ):
            with pytest.raises(DBAPIError), engine.begin() as conn:
                conn.execute(text(statement))
    finally:
        engine.dispose()


def test_migration_triggers_match_the_models() -> None:
    """The frozen trigger DDL of migrations 0002 (audit), 0014 (consent ledger, since 0004),
    0008 (policy versions) and 0011 (trusted documents) equals what the models install today,
    and together they cover every append-only table."""
    import importlib.util  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from vault.storage.models import APPEND_ONLY_TABLES, append_only_ddl  # noqa: PLC0415

    versions = Path(__file__).parents[2] / "migrations" / "versions"
    covered: list[str] = []
    for name, tables in (
        ("0002_audit_trail.py", None),
        ("0008_policy_versions_append_only.py", None),
        ("0011_trusted_documents.py", None),
        ("0014_consent_events_retention.py", None),
    ):
        spec = importlib.util.spec_from_file_location(name[:4], versions / name)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        frozen = tables if tables is not None else module._TABLES
        for dialect in ("sqlite", "postgresql"):
            for table in frozen:
                assert module._append_only(dialect, table) == append_only_ddl(dialect, table)
        covered += frozen
    assert sorted(covered) == sorted(APPEND_ONLY_TABLES)
