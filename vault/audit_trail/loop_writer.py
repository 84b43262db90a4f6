"""Group-committed audit appends on the event loop (PostgreSQL), still fail-closed.

The event-loop profile reads (``api/graphql/hot.py``) append through here while their
asyncio pool is open, instead of hopping to the writer thread of
:mod:`vault.audit_trail.writer` and back. The API:

* ``await writer.append(entries)``: returns once the flush holding ``entries``
  committed; raises what failed it otherwise (:class:`~vault.errors.StorageUnavailable`
  for the storage's trouble, a pool timeout included). A request must not answer data
  when it raises.
* ``await writer.close()``: flushes what is queued, then refuses new appends (the pool
  closes after it).

Batching needs no timer: an append queues its entries with a future and, when no flush
runs, starts one (a task). A flush takes everything queued, up to ``max_entries`` (a
request's entries are never split), sends the one append statement of
:mod:`vault.audit_trail.log` on the pool under autocommit (one statement is atomic: no
BEGIN or COMMIT) and resolves every waiter; what arrives meanwhile goes together in the
next flush. A failed flush fails every request in it; its entries were not written.

A request cancelled while it waits (its client went away) leaves its entries in the
flush: they record reads that were made, and the other waiters are not disturbed.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from audit.entries import AuditEntry
from vault import telemetry
from vault.audit_trail.log import _PG_APPEND, _pg_columns
from vault.audit_trail.writer import WriterStats
from vault.storage.aio import AsyncPool
from vault.storage.db import StorageUnavailable, storage_failure

__all__ = ["LoopWriter"]

log = structlog.get_logger(__name__)

POOL_WAIT = 2.0  # seconds a flush waits for a connection before its requests fail (503)


@dataclass(slots=True)
class _Waiting:
    entries: Sequence[AuditEntry]
    done: asyncio.Future[None]


class LoopWriter:
    """Batches the audit entries of concurrent event-loop requests into one statement
    (see the module doc). Made (in a coroutine), used and closed on one event loop."""

    def __init__(self, pool: AsyncPool, *, max_entries: int = 256) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self._pool = pool
        self.loop = asyncio.get_running_loop()  # made on the loop that serves its appends
        self.max_entries = max_entries
        self.stats = WriterStats()
        self._queue: deque[_Waiting] = deque()
        self._flushing: asyncio.Task[None] | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"LoopWriter(running={self.running}, max_entries={self.max_entries})"

    @property
    def running(self) -> bool:
        """Whether appends are taken (until :meth:`close`)."""
        return not self._closed

    async def append(self, entries: Sequence[AuditEntry]) -> None:
        """Queue ``entries`` for the next flush and return once it committed; raises
        what failed it. Closed: raises :class:`StorageUnavailable` (nothing written)."""
        if not entries:
            return
        if self._closed:
            raise StorageUnavailable("shutting down or starting")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Waiting(entries, done))
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush(), name="cvault-audit-flush")
        await done

    async def close(self) -> None:
        """Write what is queued (the flush in flight and what waits behind it), then
        refuse new appends."""
        self._closed = True
        if self._flushing is not None:
            await asyncio.wait({self._flushing})  # its failures went to its waiters

    async def _flush(self) -> None:
        """Flush until nothing waits (what arrives during a flush goes in the next)."""
        try:
            while self._queue:
                await self._commit(self._take())
        finally:
            self._flushing = None
            # Cancelled (the loop is going away): no waiter is left hanging, none answers.
            while self._queue:
                self._settle(self._queue.popleft(), StorageUnavailable("shutting down or starting"))

    def _take(self) -> list[_Waiting]:
        """The next batch: what waits now, up to ``max_entries`` (never splitting one
        request's entries; a request larger than that goes alone)."""
        batch = [self._queue.popleft()]
        count = len(batch[0].entries)
        while self._queue and count + len(self._queue[0].entries) <= self.max_entries:
            waiting = self._queue.popleft()
            batch.append(waiting)
            count += len(waiting.entries)
        return batch

    async def _commit(self, batch: list[_Waiting]) -> None:
        entries = [entry for waiting in batch for entry in waiting.entries]
        self.stats.batches += 1
        self.stats.requests += len(batch)
        started = time.perf_counter()
        try:
            await self._pool.execute(_PG_APPEND, _pg_columns(entries), wait=POOL_WAIT)
        except BaseException as exc:
            self.stats.failed += 1
            log.warning("audit batch failed", requests=len(batch), entries=len(entries))
            if isinstance(exc, Exception):
                failure = storage_failure(exc)
                reason = None if failure is None else failure.reason
            else:  # the flush itself is cancelled (the loop is going away)
                reason = "shutting down or starting"
            for waiting in batch:
                # Each request raises its own exception (the same reason, no statement
                # or value in it); an error that is no outage goes to all as it is.
                self._settle(waiting, exc if reason is None else StorageUnavailable(reason))
            if not isinstance(exc, Exception):
                raise  # the flush stops (its finally fails what still waits)
            return
        telemetry.audit_appended(time.perf_counter() - started, len(entries))
        self.stats.entries += len(entries)
        for waiting in batch:
            if not waiting.done.done():  # a cancelled waiter's entries are written all the same
                waiting.done.set_result(None)

    @staticmethod
    def _settle(waiting: _Waiting, exc: BaseException) -> None:
        if not waiting.done.done():  # a cancelled waiter has gone: nothing to tell it
            waiting.done.set_exception(exc)
