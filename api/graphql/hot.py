"""The event-loop path of a compiled profile read (ARCHITECTURE.md decision 13).

A plan of the hot shape (one ``customer(id:)``, ``me``, ``customerByEmail(email:)`` or
``customerByPhone(phone:)`` root, at most one ``interactions(first:)`` below it) on
PostgreSQL is answered without a worker thread: :class:`vault.profiles.ProfileReader`
reads the customer (by id, or by the blind index of the address or number) and its
newest interactions in one prepared statement on the asyncio pool and decides as the
services do, the plan builds the response from what it read, and the audit entries are
appended (fail-closed: no response without its committed entries) before the answer
leaves. Whenever the reader cannot decide alone (a refusal to audit, a merge to follow,
a tombstone, an argument to report, a lookup that finds no one or several), nothing was
written and the ordinary path runs the request.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any, Final, cast

from graphql import ExecutionResult
from sqlalchemy.orm import Session

from api.graphql.compiled import Plan
from api.graphql.context import Evidence, GraphQLContext
from api.graphql.types.common import parse_id
from audit.entries import AuditEntry
from consent import Privacy
from vault import telemetry
from vault.audit_trail.loop_writer import LoopWriter
from vault.authorization.context import AccessContext
from vault.errors import InvalidInput
from vault.profiles import ProfileReader
from vault.runtime import Vault
from vault.storage.aio import AsyncPool
from vault.storage.counters import WindowsHit
from vault.types import PiiField

__all__ = ["HotReads", "append_audit"]

# The lookup roots a plan reads on the event loop, by the field they look up.
_LOOKUPS: Final = {"customerByEmail": PiiField.EMAIL, "customerByPhone": PiiField.PHONE}


async def append_audit(vault: Vault, entries: Sequence[AuditEntry]) -> None:
    """Append a request's audit entries and return once they are committed (raises
    otherwise): through the group-committed writer, which batches the entries of
    concurrent requests into one statement; a failed batch fails every request in it.
    While :class:`HotReads` has its pool open, the batches are made and sent on the event
    loop (vault/audit_trail/loop_writer.py); otherwise by the writer thread
    (vault/audit_trail/writer.py). Without a writer, at once in a transaction of its own."""
    if not entries:
        return
    if vault.writer is not None:
        await vault.writer.append(entries)
    else:
        await asyncio.to_thread(vault.audit.write_now, vault.db, entries)


class HotReads:
    """The event-loop profile reads of one endpoint (PostgreSQL only; opened by the
    application's lifespan)."""

    def __init__(self, vault: Vault, privacy: Privacy) -> None:
        self.vault = vault
        self.privacy = privacy
        self.reader: ProfileReader | None = None
        self.writer: LoopWriter | None = None  # the audit appends' group commit on the loop

    def __repr__(self) -> str:
        return f"HotReads(open={self.reader is not None})"

    async def open(self, *, size: int = 4) -> None:
        if self.vault.db.dialect != "postgresql" or self.reader is not None:
            return
        pool = await asyncio.to_thread(AsyncPool, self.vault.db.engine, size=size)
        await pool.open()
        vault = self.vault
        self.reader = ProfileReader(
            pool, vault.keys, vault.authz.enforcer, vault.customers.attributes, vault.handles,
            vault.clock, region=vault.settings.default_phone_region,
        )  # fmt: skip
        if vault.writer is not None and vault.writer.on_loop is None:
            self.writer = LoopWriter(pool)  # append_audit's appends, batched on this loop
            vault.writer.on_loop = self.writer

    async def close(self) -> None:
        """Write the audit entries queued on the loop, then close the pool."""
        if self.writer is not None:
            writer, self.writer = self.writer, None
            if self.vault.writer is not None and self.vault.writer.on_loop is writer:
                self.vault.writer.on_loop = None  # later appends: the writer thread
            await writer.close()
        if self.reader is not None:
            reader, self.reader = self.reader, None
            await reader.pool.close()

    async def answer(
        self,
        plan: Plan,
        variables: dict[str, Any] | None,
        access: AccessContext,
        evidence: Evidence,
        hit: WindowsHit | None = None,
    ) -> tuple[ExecutionResult, GraphQLContext] | None:
        """The plan's result, read on the event loop with its audit committed; None
        (nothing read into a response, nothing written) when the ordinary path must run.
        ``hit``: the caller's rate limit, still pending, which the read's statement
        carries when it runs (``hit.taken`` then says whether the caller was allowed; a
        refused caller gets None, nothing read)."""
        shape = plan.hot
        if self.reader is None or shape is None:
            return None
        arguments = plan.arguments(variables)
        if arguments is None:
            return None
        root, timeline = shape
        context = GraphQLContext(
            vault=self.vault,
            session=cast(Session, None),  # nothing on this path touches a session
            access=access,
            privacy=self.privacy,
            evidence=evidence,
        )
        first = None if timeline is None else arguments[id(timeline.node)]["first"]
        given = arguments[id(root.node)]
        if root.name in _LOOKUPS:
            field = _LOOKUPS[root.name]
            found = await self.reader.lookup(access, field, given[field.value], first, hit)
        else:
            customer_id: uuid.UUID | None
            if root.name == "me":
                customer_id = access.actor.customer_id
            else:
                try:
                    customer_id = parse_id(context, given["id"])
                except InvalidInput:
                    customer_id = None
            if customer_id is None:
                return None
            found = await self.reader.read(access, customer_id, first, hit)
        if found is None:
            return None
        try:
            result = plan.run_read(context, arguments, found.customer, found.timeline)
        finally:
            telemetry.flush()
        await append_audit(self.vault, found.entries)
        return result, context
