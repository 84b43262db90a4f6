"""Whether a vault's database is in use: a shared lock its servers and commands hold, an
exclusive one a restore takes.

* SQLite: ``flock`` on ``<database>.lock`` beside the database file (mode 0600).
* PostgreSQL: a session advisory lock whose key is derived from the database and schema
  names, held on a connection of its own (outside the pool) for as long as the holder
  runs; it goes when that connection closes, a crash included. Sessions of other
  schemas in the same database (other tenants, other tests) do not count, which
  ``pg_stat_activity`` could not tell apart.

``cvault serve`` (each worker) and every ``cvault`` command that opens the vault hold the
shared lock; ``cvault restore`` takes the exclusive one without waiting and refuses when
it cannot. A holder that finds a restore running refuses to start.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import struct
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from vault.errors import VaultError

__all__ = ["InUse", "VaultInUse", "current_schema", "sqlite_path"]


class VaultInUse(VaultError):
    """Another process holds the lock: a restore runs, or (for a restore) a server or a
    command has the vault open."""

    code = "VAULT_IN_USE"


def sqlite_path(engine: Engine) -> Path | None:
    """The database file of a SQLite engine (None for PostgreSQL or in memory)."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def current_schema(engine: Engine) -> str:
    """The PostgreSQL schema the engine's connections work in: the first schema of their
    ``search_path`` (named even when it does not exist yet)."""
    with engine.connect() as conn:
        found = conn.scalar(text("SELECT current_schema()"))
        if found:
            return str(found)
        path = str(conn.scalar(text("SELECT current_setting('search_path')")) or "public")
    first = path.split(",", maxsplit=1)[0].strip().strip('"')
    return first if first and first != "$user" else "public"


class InUse:
    """The in-use lock of one database (and schema): ``share`` for a server or a command,
    ``exclusive`` for a restore; both refuse at once rather than wait."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._fd: int | None = None
        self._conn: Connection | None = None
        self._lock_engine: Engine | None = None

    def __repr__(self) -> str:
        return f"InUse(held={self.held})"

    @property
    def held(self) -> bool:
        return self._fd is not None or self._conn is not None

    def share(self) -> None:
        """Hold the lock shared (many servers and commands at once); raises
        :class:`VaultInUse` while a restore holds it."""
        self._take(exclusive=False)

    def exclusive(self) -> None:
        """Hold the lock alone; raises :class:`VaultInUse` while anyone else holds it."""
        self._take(exclusive=True)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
        if self._conn is not None:
            self._conn.close()  # the advisory lock goes with the session
            self._conn = None
        if self._lock_engine is not None:
            self._lock_engine.dispose()
            self._lock_engine = None

    def _take(self, *, exclusive: bool) -> None:
        if self.held:
            return
        path = sqlite_path(self._engine)
        if self._engine.dialect.name == "sqlite":
            if path is not None:
                self._flock(path, exclusive=exclusive)
            return
        self._advisory(exclusive=exclusive)

    def _flock(self, database: Path, *, exclusive: bool) -> None:
        lock = database.with_name(database.name + ".lock")
        lock.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Read-only: flock needs no write access, and a file open for writing would keep the
        # filesystem from being remounted read-only while a server runs.
        fd = os.open(lock, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise _refusal(exclusive) from None
        self._fd = fd

    def _advisory(self, *, exclusive: bool) -> None:
        schema = current_schema(self._engine)
        url = make_url(self._engine.url).difference_update_query(["options"])
        engine = create_engine(url, poolclass=NullPool)
        conn = engine.connect()
        try:
            database = str(conn.scalar(text("SELECT current_database()")))
            key = _key(database, schema)
            take = "pg_try_advisory_lock" if exclusive else "pg_try_advisory_lock_shared"
            got = bool(conn.scalar(text(f"SELECT {take}(:k)"), {"k": key}))
            conn.commit()
        except BaseException:
            conn.close()
            engine.dispose()
            raise
        if not got:
            conn.close()
            engine.dispose()
            raise _refusal(exclusive)
        self._conn, self._lock_engine = conn, engine


def _key(database: str, schema: str) -> int:
    digest = hashlib.sha256(f"cvault-in-use\0{database}\0{schema}".encode()).digest()
    return int(struct.unpack(">q", digest[:8])[0])


def _refusal(exclusive: bool) -> VaultInUse:
    if exclusive:
        return VaultInUse(
            "the vault is in use (a server or a cvault command has it open); stop it first"
        )
    return VaultInUse("a restore is running on this vault's database; wait for it to finish")
