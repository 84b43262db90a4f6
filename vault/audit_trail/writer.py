"""Group-committed audit appends: one writer per process, still fail-closed.

The API (what a request path calls once its reads are done, before it answers):

* ``await writer.append(entries)``: on the event loop. Returns once the batch holding
  ``entries`` committed; raises what the batch's commit raised (most often
  :class:`~vault.errors.StorageUnavailable`) if it failed. A request must not answer
  data when it raises.
* ``writer.append_sync(entries)``: the same from a worker thread (the general GraphQL
  path, pages), blocking until the batch committed.

While the event-loop profile reads have their asyncio pool open (PostgreSQL),
``append`` hands the entries to :attr:`AuditWriter.on_loop`, their group commit on the
loop itself (:mod:`vault.audit_trail.loop_writer`): no hop to this thread and back.

Both return at once for an empty list. While the writer is not running (the CLI,
tests without the app's lifespan, after :meth:`AuditWriter.close`), both write the
entries at once in a transaction of their own: the same entries, one commit each.

While it runs (:meth:`AuditWriter.start`, in the app's lifespan), one thread takes the
entries of every request waiting, up to ``max_entries`` of them, waiting at most
``linger`` seconds (about 1 ms; only under load: when the last batch held more than one
request) for more once the first arrived, writes them with one
append statement and commits once. A batch that fails fails every request in it:
each waiter gets the exception and answers an error, none answers data. The entries
a failed batch held were not written (its transaction rolled back).

The writer holds no lock across a request: the database sequence gives the entries
their ids and the sequencer (:meth:`AuditLog.sequence`) their log order, as before.
SQLite's single writer is the writer thread (and the CLI, in its own process).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

import structlog

from audit.entries import AuditEntry
from vault.audit_trail.log import AuditLog
from vault.storage.db import Database

__all__ = ["AuditWriter", "LoopAppender", "WriterStats"]

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class WriterStats:
    """What the writer did since it was made: counts, never timings."""

    batches: int = 0  # commits (one per batch, failed or not)
    failed: int = 0  # batches whose commit failed
    requests: int = 0  # appends (one per request) that went through a batch
    entries: int = 0  # entries committed


class LoopAppender(Protocol):
    """A group commit made on one event loop (:mod:`vault.audit_trail.loop_writer`)."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    async def append(self, entries: Sequence[AuditEntry]) -> None: ...


@dataclass(slots=True)
class _Waiting:
    entries: Sequence[AuditEntry]
    done: Future[None]


class AuditWriter:
    """Batches concurrent requests' audit entries into one commit (see the module doc)."""

    def __init__(
        self,
        audit: AuditLog,
        db: Database,
        *,
        max_entries: int = 256,
        linger: float = 0.001,
    ) -> None:
        if max_entries < 1 or linger < 0:
            raise ValueError("max_entries must be >= 1 and linger >= 0")
        self._audit = audit
        self._db = db
        self.max_entries = max_entries
        self.linger = linger
        self._last_requests = 0  # requests in the batch taken last (lingers only under load)
        self.stats = WriterStats()
        self._queue: deque[_Waiting] = deque()
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        # The event loop's own group commit, set while the hot reads' pool is open
        # (api/graphql/hot.py); appends made on its loop go there.
        self.on_loop: LoopAppender | None = None

    def __repr__(self) -> str:
        return f"AuditWriter(running={self.running}, max_entries={self.max_entries})"

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        """Start the writer thread (the app's lifespan); appends batch from now on."""
        with self._ready:
            if self._thread is not None:
                return
            self._stopping = False
            self._thread = threading.Thread(
                target=self._run, name="cvault-audit-writer", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        """Write what is queued, then stop; later appends write at once (no batching)."""
        with self._ready:
            thread = self._thread
            if thread is None:
                return
            self._stopping = True
            self._ready.notify_all()
        thread.join()
        with self._ready:
            self._thread = None

    def submit(self, entries: Sequence[AuditEntry]) -> Future[None]:
        """Queue ``entries`` for the next batch; the future completes when it committed
        (or carries the batch's failure). Not running: written at once."""
        done: Future[None] = Future()
        if not entries:
            done.set_result(None)
            return done
        with self._ready:
            if self._thread is not None and not self._stopping:
                self._queue.append(_Waiting(entries, done))
                self._ready.notify()
                return done
        try:
            self._audit.write_now(self._db, entries)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            done.set_exception(exc)
        else:
            done.set_result(None)
        return done

    def append_sync(self, entries: Sequence[AuditEntry]) -> None:
        """Append and block until the batch committed; raises if it failed."""
        self.submit(entries).result()

    async def append(self, entries: Sequence[AuditEntry]) -> None:
        """Append and wait (without blocking the loop) until the batch committed; raises
        if it failed. Through :attr:`on_loop` when it is set for the running loop."""
        if not entries:
            return
        on_loop = self.on_loop
        if on_loop is not None and on_loop.loop is asyncio.get_running_loop():
            await on_loop.append(entries)
            return
        if not self.running:
            await asyncio.to_thread(self.append_sync, entries)
            return
        await asyncio.wrap_future(self.submit(entries))

    def _take(self) -> list[_Waiting] | None:
        """The next batch: what waits now, plus what arrives within ``linger`` of the
        first, up to ``max_entries`` (a request's entries are never split)."""
        with self._ready:
            while not self._queue:
                if self._stopping:
                    return None
                self._ready.wait()
            batch = [self._queue.popleft()]
            count = len(batch[0].entries)
            # Linger only under load (the last batch held more than one request, or more
            # wait now): a request alone is not kept waiting for company that won't come.
            busy = self._last_requests > 1 or bool(self._queue)
            deadline = time.monotonic() + (self.linger if busy else 0.0)
            while count < self.max_entries:
                if self._queue:
                    if count + len(self._queue[0].entries) > self.max_entries:
                        break
                    waiting = self._queue.popleft()
                    batch.append(waiting)
                    count += len(waiting.entries)
                    continue
                left = deadline - time.monotonic()
                if left <= 0 or self._stopping:
                    break
                self._ready.wait(left)
            self._last_requests = len(batch)
            return batch

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            self._commit(batch)

    def _commit(self, batch: list[_Waiting]) -> None:
        entries = [entry for waiting in batch for entry in waiting.entries]
        self.stats.batches += 1
        self.stats.requests += len(batch)
        try:
            self._audit.write_now(self._db, entries)
        except BaseException as exc:  # noqa: BLE001 - every request of the batch fails with it
            self.stats.failed += 1
            log.warning("audit batch failed", requests=len(batch), entries=len(entries))
            for waiting in batch:
                waiting.done.set_exception(exc)
            return
        self.stats.entries += len(entries)
        for waiting in batch:
            waiting.done.set_result(None)
