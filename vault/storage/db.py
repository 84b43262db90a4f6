"""Engines and the unit of work: one transaction per request or command."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

__all__ = ["Database", "make_engine"]


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT; switch it off
    # and let SQLAlchemy emit BEGIN (see _sqlite_begin), the documented recipe.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    # Zero deleted content in place, whatever the build's default: an erased customer's
    # clear columns (tags, external ids) must not linger in free pages of the file.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # IMMEDIATE takes the write lock up front: every unit of work writes (at least its
    # audit entries), and a deferred BEGIN that reads then writes fails with "database
    # is locked" instead of waiting when another writer got there first.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Check a pooled PostgreSQL connection before use only if it sat idle in the pool for
    ``idle_seconds`` or more: one that died there (a server restart, an idle timeout) is
    replaced before the unit of work starts. SQLAlchemy's ``pool_pre_ping`` pings on every
    checkout, a round trip per request; a connection in steady use is not pinged."""
    dialect = engine.dialect

    def checked_in(_dbapi: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        record.info["cvault.idle_since"] = time.monotonic()

    def checked_out(dbapi: DBAPIConnection, record: ConnectionPoolEntry, _proxy: object) -> None:
        since = record.info.pop("cvault.idle_since", None)
        if since is None or time.monotonic() - since < idle_seconds:
            return
        try:
            dialect.do_ping(dbapi)
        except Exception as exc:  # noqa: BLE001 - any failure: the pool replaces it
            raise DisconnectionError(type(exc).__name__) from None

    event.listen(engine, "checkin", checked_in)
    event.listen(engine, "checkout", checked_out)


def _private_sqlite_file(database: str) -> None:
    """Create the SQLite file 0600 (its folder 0700) before SQLite opens it, so that no
    byte is ever written to a file others may read; SQLite gives the ``-wal``, ``-shm``
    and ``-journal`` files the mode of the database file. A file (or companion) found
    readable by group or others is narrowed to 0600 before use."""
    import os  # noqa: PLC0415 - only file databases need them
    from pathlib import Path  # noqa: PLC0415

    path = Path(database)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for each in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))):
        try:
            mode = each.stat().st_mode
        except FileNotFoundError:
            continue
        if mode & 0o077:
            each.chmod(0o600)


def make_engine(
    url: str, *, schema: str | None = None, echo: bool = False, ping_idle_after: float = 5.0
) -> Engine:
    """An engine for SQLite (WAL, foreign keys on) or PostgreSQL (psycopg 3).

    ``schema`` puts a PostgreSQL connection's ``search_path`` on one schema (tests);
    ``ping_idle_after``: seconds in the pool after which a connection is checked before use.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            _private_sqlite_file(database)
        engine = create_engine(url, echo=echo, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    # Short analytical queries run faster without JIT on small machines (PERFORMANCE.md).
    options = ["-c jit=off"]
    given = parsed.query.get("options")
    if given:  # keep options given in the URL, e.g. ?options=-csearch_path%3Dtenant
        options.append(given if isinstance(given, str) else " ".join(given))
        url = parsed.difference_update_query(["options"]).render_as_string(hide_password=False)
    if schema is not None:
        options.append(f"-c search_path={schema}")
    connect_args: dict[str, Any] = {"options": " ".join(options)}
    engine = create_engine(url, echo=echo, connect_args=connect_args, pool_size=20, max_overflow=20)
    _ping_when_idle(engine, ping_idle_after)
    return engine


class Database:
    """Owns the engine and hands out units of work."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def __repr__(self) -> str:
        return f"Database(dialect={self.engine.dialect.name!r})"

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """Commit everything done in the block, or nothing if it raises."""
        with self._sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
