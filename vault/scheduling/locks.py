"""Which process leads a job, and which one runs it right now: two locks per job.

* **Leadership** (``lead``): held for as long as the process leads the job and runs it
  on its schedule. Followers try to take it every ``leader_poll`` seconds.
* **Run** (``running``): held while one run of the job goes on, by the leader's
  scheduler or by a ``cvault`` command running the job by hand, so the two never
  overlap. A command never waits for it: it refuses with :class:`JobBusy`.

PostgreSQL: session-level advisory locks (``pg_try_advisory_lock``) on a connection of
the process's own, outside the pool, keyed by database, schema, job and kind. A killed
leader's connection closes, PostgreSQL ends its session and the lock is free: the next
follower that tries takes it. The connection asks the server to probe it with TCP
keepalives, so a leader host that vanishes (no FIN) frees its locks within about 30 s.
SQLite (one host): ``flock`` on files beside the database (``<db>.jobs/<job>.lead`` and
``<job>.run``); the kernel drops them when the process dies. An in-memory SQLite
database lives in one process: a process-local lock does.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from vault.errors import VaultError
from vault.logs import get_logger
from vault.storage.inuse import current_schema, sqlite_path
from vault.types import JobName

__all__ = ["JobBusy", "JobLocks"]

log = get_logger("vault.scheduling")

# The server probes the lock connection: first after 10 s idle, then every 5 s, 4 times.
_KEEPALIVE = (
    "SET tcp_keepalives_idle = 10",
    "SET tcp_keepalives_interval = 5",
    "SET tcp_keepalives_count = 4",
)
_LOCAL: dict[tuple[int, str], threading.Lock] = {}  # in-memory SQLite: per engine
_LOCAL_GUARD = threading.Lock()


class JobBusy(VaultError):
    """Another process runs this job right now (a server's scheduler or a command)."""

    code = "JOB_BUSY"

    def __init__(self, job: JobName) -> None:
        super().__init__(
            f"{job.value} is running in another process (a server's scheduler or another "
            "cvault command); run it again once that run has finished"
        )
        self.job = job


def _key(database: str, schema: str, job: JobName, kind: str) -> int:
    digest = hashlib.sha256(f"cvault-job\0{database}\0{schema}\0{job}\0{kind}".encode()).digest()
    return int(struct.unpack(">q", digest[:8])[0])


class JobLocks:
    """The leadership and run locks of one database (and schema), for one process.

    Thread-safe: the scheduler's loop and its job threads share one instance. ``close``
    gives up every lock it holds."""

    def __init__(self, engine: Engine, *, verify_every: float = 1.0) -> None:
        self._engine = engine
        self._verify_every = verify_every
        self._mutex = threading.Lock()
        self._led: set[JobName] = set()
        self._verified = 0.0
        # PostgreSQL: the lock connection and what keys it by.
        self._lock_engine: Engine | None = None
        self._conn: Connection | None = None
        self._names: tuple[str, str] | None = None
        # SQLite: descriptors holding flocks, by (job, kind).
        self._fds: dict[tuple[JobName, str], int] = {}
        self._local: dict[tuple[JobName, str], threading.Lock] = {}

    def __repr__(self) -> str:
        return f"JobLocks(led={sorted(self._led)})"

    @property
    def postgresql(self) -> bool:
        return self._engine.dialect.name == "postgresql"

    def leads(self) -> frozenset[JobName]:
        with self._mutex:
            return frozenset(self._led)

    # -- leadership -----------------------------------------------------------------

    def lead(self, job: JobName) -> bool:
        """Whether this process leads ``job`` now: keeps the lead it has (checking, at most
        every ``verify_every`` seconds, that its lock connection still lives) or tries to
        take it without waiting. A lost connection loses every lead at once."""
        with self._mutex:
            if not self.postgresql:
                if job not in self._led and self._take(job, "lead"):
                    self._led.add(job)
                return job in self._led
            try:
                if self._led and time.monotonic() - self._verified >= self._verify_every:
                    self._connection()[0].execute(text("SELECT 1"))
                    self._verified = time.monotonic()
                if job not in self._led and self._take(job, "lead"):
                    self._led.add(job)
                    self._verified = time.monotonic()
            except SQLAlchemyError as exc:
                self._lost(exc)
                return False
            return job in self._led

    def resign(self, job: JobName) -> None:
        """Give up leading ``job`` (another process may take it at once)."""
        with self._mutex:
            if job in self._led:
                self._led.discard(job)
                self._give(job, "lead")

    # -- runs -----------------------------------------------------------------------

    @contextlib.contextmanager
    def running(self, job: JobName) -> Iterator[None]:
        """Hold ``job``'s run lock for the block; :class:`JobBusy` when another process
        holds it. On PostgreSQL the lock connection is opened if need be (a command)."""
        with self._mutex:
            try:
                taken = self._take(job, "run")
            except SQLAlchemyError as exc:
                self._lost(exc)
                raise
        if not taken:
            raise JobBusy(job)
        try:
            yield
        finally:
            with self._mutex:
                try:
                    self._give(job, "run")
                except SQLAlchemyError as exc:  # the session (and with it the lock) is gone
                    self._lost(exc)

    def close(self) -> None:
        """Give up every lock: close the lock connection, close the lock files."""
        with self._mutex:
            self._led.clear()
            self._disconnect()
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()
            for lock in self._local.values():
                lock.release()
            self._local.clear()

    # -- the two back ends ----------------------------------------------------------

    def _take(self, job: JobName, kind: str) -> bool:
        if self.postgresql:
            conn, names = self._connection()
            key = _key(*names, job, kind)
            got = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}))
            conn.commit()
            return got
        path = sqlite_path(self._engine)
        if path is None:
            return self._take_local(job, kind)
        folder = lock_folder(path)
        folder.mkdir(mode=0o700, exist_ok=True)
        flags = os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
        fd = os.open(folder / f"{job.value}.{kind}", flags, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fds[(job, kind)] = fd
        return True

    def _take_local(self, job: JobName, kind: str) -> bool:
        with _LOCAL_GUARD:
            lock = _LOCAL.setdefault((id(self._engine), f"{job}.{kind}"), threading.Lock())
        if not lock.acquire(blocking=False):
            return False
        self._local[(job, kind)] = lock
        return True

    def _give(self, job: JobName, kind: str) -> None:
        if self.postgresql:
            if self._conn is None or self._names is None:
                return
            key = _key(*self._names, job, kind)
            self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            self._conn.commit()
            return
        fd = self._fds.pop((job, kind), None)
        if fd is not None:
            os.close(fd)  # closing the descriptor drops the flock
        lock = self._local.pop((job, kind), None)
        if lock is not None:
            lock.release()

    def _connection(self) -> tuple[Connection, tuple[str, str]]:
        """The lock connection (opened if need be) and the database and schema names."""
        if self._conn is not None and self._names is not None:
            return self._conn, self._names
        schema = current_schema(self._engine) if self._names is None else self._names[1]
        url = make_url(self._engine.url).difference_update_query(["options"])
        engine = create_engine(url, poolclass=NullPool)
        try:
            conn = engine.connect()
            database = str(conn.scalar(text("SELECT current_database()")))
            for statement in _KEEPALIVE:
                conn.execute(text(statement))
            conn.commit()
        except BaseException:
            engine.dispose()
            raise
        self._names = (database, schema)
        self._lock_engine, self._conn = engine, conn
        return conn, self._names

    def _lost(self, exc: SQLAlchemyError) -> None:
        """The lock connection failed: its locks are gone with its session."""
        if self._led:
            log.warning(
                "scheduler lost its lock connection; leadership given up",
                jobs=sorted(self._led),
                error=type(exc).__name__,
            )
        self._led.clear()
        self._disconnect()

    def _disconnect(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                self._conn.close()
            self._conn = None
        if self._lock_engine is not None:
            self._lock_engine.dispose()
            self._lock_engine = None


def lock_folder(database: Path) -> Path:
    """Where the SQLite lock files of ``database`` live."""
    return database.with_name(database.name + ".jobs")
