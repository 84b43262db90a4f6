"""The event loop's connections to PostgreSQL: an asyncio pool of psycopg connections.

The hot reads of :mod:`vault.profiles` run here without a worker thread: each
statement is sent as a named prepared statement (``prepare=True``), so PostgreSQL parses
and plans it once per connection. Autocommit: a single read needs no BEGIN/COMMIT round
trips. Opened and closed by the application's lifespan, on the loop that serves requests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row, tuple_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy import Engine

from vault.storage.db import StorageUnavailable

__all__ = ["AsyncPool"]


class AsyncPool:
    """A psycopg asyncio pool on the same database as ``engine`` (PostgreSQL only)."""

    def __init__(self, engine: Engine, *, size: int = 4) -> None:
        """Connections as the engine's: the same URL, and the ``search_path`` and whether
        statements may be prepared (not behind PgBouncer) read from one of its
        connections (blocking: call from a thread)."""
        if engine.dialect.name != "postgresql":
            raise ValueError("the event-loop pool is for PostgreSQL only")
        url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        with engine.connect() as probe:
            path = str(probe.exec_driver_sql("SHOW search_path").scalar())
            driver: Any = probe.connection.driver_connection
            self.prepare = driver.prepare_threshold is not None
        kwargs: dict[str, Any] = {"row_factory": dict_row}
        if self.prepare:  # PgBouncer refuses startup options
            # libpq splits options on spaces: the default path ("$user", public) has one.
            escaped = path.replace("\\", "\\\\").replace(" ", "\\ ")
            # TimeZone UTC: the timestamps come as UTC datetimes (``datetime.UTC``), not
            # in the server's zone to be converted again (the values are the same: every
            # timestamp is a timestamptz, none is turned into text by these statements).
            kwargs["options"] = f"-c jit=off -c TimeZone=UTC -c search_path={escaped}"
        self._pool: AsyncConnectionPool[AsyncConnection[dict[str, Any]]] = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=size,
            open=False,
            configure=self._configure,
            kwargs=kwargs,
            connection_class=AsyncConnection[dict[str, Any]],
        )
        self.statements = 0  # statements sent (the tests count round trips with it)

    async def _configure(self, connection: AsyncConnection[Any]) -> None:
        if self.prepare:
            connection.prepare_threshold = 0  # prepared on first use, once per connection
        await connection.set_autocommit(True)

    def __repr__(self) -> str:
        return "AsyncPool()"

    async def open(self) -> None:
        await self._pool.open(wait=True)

    async def close(self) -> None:
        await self._pool.close()

    @asynccontextmanager
    async def _connection(self, wait: float | None) -> AsyncIterator[AsyncConnection[Any]]:
        """A connection for one statement (counted): ``wait`` seconds at most for one
        (default the pool's 30); none by then raises :class:`StorageUnavailable` (the
        gateway's 503)."""
        try:
            async with self._pool.connection(timeout=wait) as connection:
                self.statements += 1
                yield connection
        except PoolTimeout as exc:  # no connection came: the database is out of reach
            raise StorageUnavailable("unreachable") from exc

    async def rows(
        self, query: str, params: dict[str, Any], *, wait: float | None = None
    ) -> list[dict[str, Any]]:
        """The rows of one prepared statement: one round trip. ``wait``: seconds at most
        to wait for a connection (default the pool's 30); none by then raises
        :class:`StorageUnavailable` (the gateway's 503)."""
        async with self._connection(wait) as connection:
            cursor = await connection.execute(query, params, prepare=self.prepare)
            return await cursor.fetchall()

    async def tuples(
        self,
        query: str,
        params: dict[str, Any],
        *,
        wait: float | None = None,
        binary: bool = False,
    ) -> list[tuple[Any, ...]]:
        """The rows of one prepared statement as tuples, in the statement's column order
        (no name looked up or stored per row: the caller knows the positions): one round
        trip. ``binary``: the results in PostgreSQL's binary format (no text parsed for
        uuid, timestamptz, bytea or integers; text columns still come as ``str``), with
        or without a prepared statement. ``wait`` as in :meth:`rows`."""
        async with self._connection(wait) as connection:
            cursor = connection.cursor(row_factory=tuple_row)
            await cursor.execute(query, params, prepare=self.prepare, binary=binary)
            return await cursor.fetchall()

    async def execute(
        self, query: str, params: tuple[Any, ...], *, wait: float | None = None
    ) -> None:
        """One prepared statement without rows, under autocommit (a single statement is
        atomic on its own: no BEGIN or COMMIT): one round trip. ``wait`` as in
        :meth:`rows`; no connection by then raises :class:`StorageUnavailable`."""
        async with self._connection(wait) as connection:
            await connection.execute(query, params, prepare=self.prepare)
