"""Changes every process must see, announced with PostgreSQL NOTIFY (decision 15).

The vocabulary: a :class:`Change` is a policy version stored, a customer erased (its data
key destroyed) or the trusted documents changed. Its payload holds a kind and an id or a
version, never a value: ``policy:12``, ``erasure:<customer uuid>``, ``documents``.

The send side, :func:`announce`, runs ``pg_notify`` inside the caller's transaction, so
PostgreSQL delivers the notification when (and only if) the change commits. On SQLite it
does nothing: one host, and its processes poll.

The receive side, :class:`ChangeListener`, is one dedicated connection (psycopg 3, async,
autocommit, outside the pool) that LISTENs on the vault's channel. The channel is named
after the schema the vault's tables live in (``cvault_`` and 16 hex digits of its
SHA-256), so vaults in other schemas of the same database (tenants, parallel tests)
do not hear each other. The loop that reconnects, refreshes and applies changes lives
with the server's other loops (``api.propagation``).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from vault.storage.inuse import current_schema

__all__ = [
    "Change",
    "ChangeKind",
    "ChangeListener",
    "announce",
    "application_name",
    "channel_of",
]

# The same name in SQL, computed by the sending connection from its own schema.
_NOTIFY = text(
    "SELECT pg_notify('cvault_' || left(encode(sha256(convert_to("
    "coalesce(current_schema(), 'public'), 'UTF8')), 'hex'), 16), :payload)"
)


class ChangeKind(StrEnum):
    POLICY = "policy"  # a new policy version is stored: reload it
    ERASURE = "erasure"  # a customer's data key is destroyed: drop it from the cache
    DOCUMENTS = "documents"  # trusted documents registered or revoked: reload them


@dataclass(frozen=True, slots=True)
class Change:
    """One change to announce: a kind and, for a policy, its version; for an erasure,
    the customer's (pseudonymous) id."""

    kind: ChangeKind
    subject: str = ""

    @classmethod
    def policy(cls, version: int) -> Change:
        return cls(ChangeKind.POLICY, str(int(version)))

    @classmethod
    def erasure(cls, customer_id: uuid.UUID) -> Change:
        return cls(ChangeKind.ERASURE, str(customer_id))

    @classmethod
    def documents(cls) -> Change:
        return cls(ChangeKind.DOCUMENTS)

    @property
    def payload(self) -> str:
        return f"{self.kind.value}:{self.subject}" if self.subject else self.kind.value

    @property
    def customer_id(self) -> uuid.UUID:
        """The erased customer's id (an erasure only)."""
        if self.kind is not ChangeKind.ERASURE:
            raise ValueError(f"a {self.kind.value} change names no customer")
        return uuid.UUID(self.subject)

    @classmethod
    def parse(cls, payload: str) -> Change | None:
        """The change a payload announces; None for one this version does not know
        (a newer process may announce more kinds)."""
        name, _, subject = payload.partition(":")
        try:
            kind = ChangeKind(name)
        except ValueError:
            return None
        if kind is ChangeKind.POLICY:
            return cls.policy(int(subject)) if subject.isdigit() else None
        if kind is ChangeKind.ERASURE:
            try:
                return cls.erasure(uuid.UUID(subject))
            except ValueError:
                return None
        return cls.documents() if not subject else None


def channel_of(schema: str) -> str:
    """The NOTIFY channel of the vault whose tables live in ``schema``."""
    return "cvault_" + hashlib.sha256(schema.encode("utf-8")).hexdigest()[:16]


def application_name(channel: str) -> str:
    """The ``application_name`` of a listener's connection on ``channel``."""
    return f"cvault listener {channel}"


def announce(session: Session, change: Change) -> None:
    """Announce ``change`` in the session's transaction: delivered to every listener when
    the transaction commits, never if it rolls back. Nothing on SQLite."""
    if session.get_bind().dialect.name != "postgresql":
        return
    session.execute(_NOTIFY, {"payload": change.payload})


class ChangeListener:
    """A dedicated connection listening on the vault's channel (PostgreSQL only).

    ``async with ChangeListener.connect(engine) as listener: async for change in
    listener.changes(): ...``; a lost connection raises out of :meth:`changes` (the
    caller reconnects). Every ``idle`` seconds without a notification the connection is
    pinged, so a dead one is found even when nothing changes."""

    def __init__(self, connection: Any, channel: str) -> None:  # noqa: ANN401 - psycopg's
        self._conn = connection
        self.channel = channel

    def __repr__(self) -> str:
        return f"ChangeListener(channel={self.channel!r})"

    @classmethod
    async def connect(cls, engine: Engine, *, timeout: float = 2.0) -> ChangeListener:
        """Open the connection and LISTEN. ``engine`` is the vault's (PostgreSQL): its URL
        is the database, its schema names the channel (blocking: a pooled query)."""
        import asyncio  # noqa: PLC0415 - only servers on PostgreSQL listen

        import psycopg  # noqa: PLC0415
        from psycopg import sql  # noqa: PLC0415

        if engine.dialect.name != "postgresql":
            raise ValueError("only a PostgreSQL vault announces changes")
        schema = await asyncio.to_thread(current_schema, engine)
        channel = channel_of(schema)
        conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        conn = await psycopg.AsyncConnection.connect(
            conninfo,
            autocommit=True,
            connect_timeout=max(1, round(timeout)),
            application_name=application_name(channel),  # pg_stat_activity tells it apart
        )
        try:
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        except BaseException:
            await conn.close()
            raise
        return cls(conn, channel)

    async def changes(self, *, idle: float = 5.0) -> AsyncIterator[Change | None]:
        """Each change as it arrives (None for a payload this version does not know);
        raises when the connection is lost."""
        while True:
            heard = False
            async for note in self._conn.notifies(timeout=idle):
                heard = True
                yield Change.parse(note.payload)
            if not heard:
                await self._conn.execute("SELECT 1")

    async def close(self) -> None:
        await self._conn.close()

    async def __aenter__(self) -> ChangeListener:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()
