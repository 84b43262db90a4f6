"""Engines and the unit of work: one transaction per request or command."""

from __future__ import annotations

import errno
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import OperationalError as SAOperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from vault.config import Settings

__all__ = [
    "Database",
    "StorageUnavailable",
    "direct_url",
    "make_engine",
    "open_database",
    "storage_failure",
]

# Seconds to wait for a PostgreSQL connection, and for a free one in the pool: a
# database that is down answers a request in about this long instead of hanging it.
CONNECT_TIMEOUT = 2
POOL_TIMEOUT = 2.0


class StorageUnavailable(Exception):
    """The database cannot be reached or written: down or restarting, the disk full,
    the file read-only. The unit of work did nothing; try again later. The message
    names the reason, never a statement or a value."""

    code = "SERVICE_UNAVAILABLE"

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"the database is unavailable ({reason}); the change in progress was rolled back"
        )
        self.reason = reason


# SQLite result codes (``sqlite_errorname``) by what the operator must fix.
_SQLITE_REASONS = (
    ("SQLITE_FULL", "disk full"),
    # The shared-memory index could not grow: on Linux, no space left for it.
    ("SQLITE_IOERR_SHMSIZE", "disk full"),
    ("SQLITE_READONLY", "read-only storage"),
    ("SQLITE_CANTOPEN", "cannot open the database file"),
    ("SQLITE_IOERR", "disk I/O error"),
    ("SQLITE_BUSY", "busy"),
    ("SQLITE_LOCKED", "busy"),
)
# PostgreSQL SQLSTATEs (class or full code), first match wins.
_PG_REASONS = (
    ("08", "unreachable"),
    ("57P", "shutting down or starting"),
    ("53100", "disk full"),
    ("53", "out of resources"),
    ("25006", "read-only storage"),
    ("57014", "busy"),
    ("55P03", "busy"),
    ("40", "busy"),
)
_OS_REASONS = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk full",
    errno.EROFS: "read-only storage",
}


def _driver_reason(exc: BaseException) -> str | None:
    """What a driver's error says about the storage: SQLite's result code, PostgreSQL's
    SQLSTATE, or a psycopg connection failure without one (refused, reset)."""
    name = getattr(exc, "sqlite_errorname", None)
    if isinstance(name, str):
        return next((r for prefix, r in _SQLITE_REASONS if name.startswith(prefix)), None)
    if not type(exc).__module__.startswith("psycopg"):
        return None
    state = getattr(exc, "sqlstate", None) or ""
    reason = next((r for prefix, r in _PG_REASONS if state and state.startswith(prefix)), None)
    if reason is None and any(c.__name__ == "OperationalError" for c in type(exc).__mro__):
        reason = "unreachable"
    return reason


def _reason(exc: BaseException) -> str | None:
    if isinstance(exc, StorageUnavailable):
        return exc.reason
    if isinstance(exc, PoolTimeout):
        return "no free connection"
    if isinstance(exc, OSError):
        return _OS_REASONS.get(exc.errno or 0)
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return "connection lost"
    return _driver_reason(exc)


def storage_failure(exc: BaseException) -> StorageUnavailable | None:
    """The :class:`StorageUnavailable` that ``exc`` amounts to, or None when it is no
    storage trouble (a bug, a constraint). Looks through SQLAlchemy's wrapper to the
    driver's error and along the chain of causes."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, StorageUnavailable):
            return current
        orig = current.orig if isinstance(current, DBAPIError) else None
        reason = _reason(current) or (None if orig is None else _reason(orig))
        if reason is None and isinstance(current, SAOperationalError):
            # A server's OperationalError is a connection's trouble; SQLite's also covers
            # plain SQL errors (a missing table), which are no outage.
            reason = None if hasattr(orig, "sqlite_errorname") else "unreachable"
        if reason is not None:
            return StorageUnavailable(reason)
        current = current.__cause__ or current.__context__
    return None


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
    url: str,
    *,
    schema: str | None = None,
    echo: bool = False,
    ping_idle_after: float = 5.0,
    pooled: bool = False,
) -> Engine:
    """An engine for SQLite (WAL, foreign keys on) or PostgreSQL (psycopg 3).

    ``schema`` puts a PostgreSQL connection's ``search_path`` on one schema (tests);
    ``ping_idle_after``: seconds in the pool after which a connection is checked before use.
    ``pooled``: the URL is a PgBouncer in transaction pooling mode (1.18 keeps no prepared
    statement of one client from another's transactions): psycopg prepares nothing on the
    server, and no ``jit=off`` startup option is sent (PgBouncer refuses startup options:
    set ``jit`` and ``search_path`` on the role or database instead).
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
    options = [] if pooled else ["-c jit=off"]
    given = parsed.query.get("options")
    if given:  # keep options given in the URL, e.g. ?options=-csearch_path%3Dtenant
        options.append(given if isinstance(given, str) else " ".join(given))
        url = parsed.difference_update_query(["options"]).render_as_string(hide_password=False)
    if schema is not None:
        options.append(f"-c search_path={schema}")
    connect_args: dict[str, Any] = {"options": " ".join(options)} if options else {}
    if pooled:
        connect_args["prepare_threshold"] = None
    if "connect_timeout" not in parsed.query:
        connect_args["connect_timeout"] = CONNECT_TIMEOUT
    engine = create_engine(
        url,
        echo=echo,
        connect_args=connect_args,
        pool_size=20,
        max_overflow=20,
        pool_timeout=POOL_TIMEOUT,
    )
    _ping_when_idle(engine, ping_idle_after)
    return engine


class Database:
    """Owns the engines and hands out units of work.

    ``engine``: the database every unit of work writes to (perhaps through a pooler).
    ``direct``: the same database without a pooler, for dedicated session-level
    connections (LISTEN, advisory locks); the main engine when not given.
    ``replica``: a streaming replica for the reads that tolerate lag
    (:meth:`read_transaction`); None: those reads go to the main engine too."""

    def __init__(
        self, engine: Engine, *, direct: Engine | None = None, replica: Engine | None = None
    ) -> None:
        self.engine = engine
        self.direct = direct if direct is not None else engine
        self.replica = replica
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._replica_sessions = (
            None if replica is None else sessionmaker(replica, expire_on_commit=False)
        )

    def __repr__(self) -> str:
        return f"Database(dialect={self.engine.dialect.name!r})"

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """Commit everything done in the block, or nothing if it raises. A database that
        cannot be reached or written raises :class:`StorageUnavailable` (the driver's
        message stays out: it can quote a statement's parameters)."""
        try:
            with self._sessions() as session, session.begin():
                yield session
        except Exception as exc:
            failure = storage_failure(exc)
            if failure is None or failure is exc:
                raise
            raise failure from None

    def run_alone(self, sql: str, parameters: Sequence[Any]) -> None:
        """One driver statement outside any transaction (autocommit): one round trip, no
        BEGIN or COMMIT; a single statement is atomic, so it is written whole or not at
        all. Failures as in :meth:`transaction`."""
        try:
            with self.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                    sql, tuple(parameters)
                )
        except Exception as exc:
            failure = storage_failure(exc)
            if failure is None or failure is exc:
                raise
            raise failure from None

    @contextmanager
    def read_transaction(self) -> Iterator[Session]:
        """A read-only transaction for a read that tolerates lag: on the replica when there
        is one, else on the main engine. On PostgreSQL the transaction is ``READ ONLY``
        either way (a write raises, whichever server it would reach). Failures as in
        :meth:`transaction`."""
        if self._replica_sessions is None:
            with self.transaction() as session:
                if self.dialect == "postgresql":
                    session.execute(text("SET TRANSACTION READ ONLY"))
                yield session
            return
        try:
            with self._replica_sessions() as session, session.begin():
                session.execute(text("SET TRANSACTION READ ONLY"))
                yield session
        except Exception as exc:
            failure = storage_failure(exc)
            if failure is None or failure is exc:
                raise
            raise failure from None

    def analyze(self, tables: Sequence[str]) -> None:
        """Gather the planner's statistics of these tables (``ANALYZE``), for the loaders
        that fill them in bulk: a vault just filled has none, and a PostgreSQL without
        autovacuum would never gather them, planning the segment queries blind (see the
        Soak section of docs/reliability.md)."""
        quote = self.engine.dialect.identifier_preparer.quote
        with self.transaction() as session:
            for table in tables:
                session.execute(text(f"ANALYZE {quote(table)}"))

    def dispose(self) -> None:
        self.engine.dispose()
        if self.direct is not self.engine:
            self.direct.dispose()
        if self.replica is not None:
            self.replica.dispose()


def direct_url(settings: Settings) -> str:
    """The URL of a session of its own on the database: the direct URL when the main one
    goes through a pooler (migrations, LISTEN, session advisory locks)."""
    return settings.database_direct_url or settings.database_url


def open_database(settings: Settings) -> Database:
    """The vault's database as the settings describe it: the main URL (pooled when a
    direct URL is set beside it), the direct URL, the replica URL."""
    given = settings.database_direct_url
    engine = make_engine(settings.database_url, pooled=given is not None)
    direct = None if given is None else make_engine(given)
    replica = (
        None
        if settings.database_replica_url is None
        else make_engine(settings.database_replica_url)
    )
    return Database(engine, direct=direct, replica=replica)
