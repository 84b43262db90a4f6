"""Alembic environment: runs on a connection handed in by ``vault.storage.migrate``,
or on ``CVAULT_DATABASE_URL`` when Alembic's own command line is used."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from vault.config import Settings
from vault.storage.db import direct_url, make_engine
from vault.storage.models import Base
from vault.storage.models.interactions import compared_by_autogenerate

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        # The interactions owner check replaces one foreign key on PostgreSQL (0019).
        include_object=compared_by_autogenerate(connection.dialect.name),
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(direct_url(Settings.from_env()))
    with engine.connect() as conn:
        _run(conn)
        conn.commit()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run 'cvault migrate'")
run_migrations_online()
