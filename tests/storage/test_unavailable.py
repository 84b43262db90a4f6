"""Database.transaction turns storage trouble into StorageUnavailable (a reason, never the
driver's message) and leaves every other error alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from tests.processes import free_port
from vault.storage.db import Database, StorageUnavailable, make_engine, storage_failure


def fill_up(db: Database) -> None:
    """Cap the file at its size, then write past it."""
    with db.transaction() as session:
        pages = session.execute(text("PRAGMA page_count")).scalar()
        session.execute(text(f"PRAGMA max_page_count = {pages}"))
        session.execute(text("INSERT INTO t VALUES (zeroblob(100000))"))


def test_a_full_sqlite_database_is_unavailable_with_the_reason(tmp_path: Path) -> None:
    """SQLite's SQLITE_FULL (here from a page limit) raises StorageUnavailable('disk
    full'); the rows written before it are intact."""
    db = Database(make_engine(f"sqlite:///{tmp_path / 'full.db'}"))
    with db.transaction() as session:
        session.execute(text("CREATE TABLE t (v TEXT)"))
        session.execute(text("INSERT INTO t VALUES ('kept')"))
    with pytest.raises(StorageUnavailable) as caught:
        fill_up(db)
    with db.transaction() as session:
        kept = session.execute(text("SELECT v FROM t")).scalars().all()
    db.dispose()
    assert (caught.value.reason, caught.value.code, kept) == (
        "disk full",
        "SERVICE_UNAVAILABLE",
        ["kept"],
    )
    assert "zeroblob" not in str(caught.value)


def test_an_unreachable_postgresql_is_unavailable() -> None:
    """Nothing listens on the port: connecting fails at once with 'unreachable'."""
    db = Database(make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none"))
    with pytest.raises(StorageUnavailable) as caught, db.transaction() as session:
        session.execute(text("SELECT 1"))
    db.dispose()
    assert caught.value.reason == "unreachable"


def test_sql_errors_and_constraints_are_not_storage_trouble(tmp_path: Path) -> None:
    """A missing table (SQLite reports it as an OperationalError) and a constraint
    violation stay what they are: bugs and conflicts are no outage."""
    db = Database(make_engine(f"sqlite:///{tmp_path / 'x.db'}"))
    with pytest.raises(OperationalError) as missing, db.transaction() as session:
        session.execute(text("SELECT * FROM nowhere"))
    with db.transaction() as session:
        session.execute(text("CREATE TABLE u (v INTEGER UNIQUE)"))
    with pytest.raises(IntegrityError) as twice, db.transaction() as session:
        session.execute(text("INSERT INTO u VALUES (1), (1)"))
    db.dispose()
    assert (storage_failure(missing.value), storage_failure(twice.value)) == (None, None)
