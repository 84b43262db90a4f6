"""Group commit on the event loop (PostgreSQL): concurrent appends share one statement,
a failed flush fails every request in it, a cancelled waiter disturbs no one, and
closing writes what is queued.

Flushes are made deterministic without timing: the first flush's statement is held on
an event while other requests queue behind it, so the next flush takes all of them.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import psycopg
import pytest
from sqlalchemy import func, select

from audit.entries import AuditAction, AuditEntry, Outcome
from audit.verify import verify_lines
from tests.conftest import CTX
from vault.audit_trail import loop_writer
from vault.audit_trail.export import export_audit
from vault.audit_trail.log import AuditBuffer
from vault.audit_trail.loop_writer import LoopWriter
from vault.audit_trail.writer import AuditWriter
from vault.authorization.context import AccessContext, Actor
from vault.crypto.signing import ed25519_verify
from vault.runtime import Vault
from vault.storage.aio import AsyncPool
from vault.storage.models import AuditEntryRow, AuditPendingRow

T = TypeVar("T")
AGENT = Actor(subject="agent-9", role="support_agent")


@pytest.fixture(autouse=True)
def _postgresql_only(vault: Vault) -> None:
    if vault.db.dialect != "postgresql":
        pytest.skip("the event-loop pool is PostgreSQL's (SQLite keeps the writer thread)")


def _request(vault: Vault, name: str, entries: int = 2) -> list[AuditEntry]:
    """A request's entries: ``pii.access`` of as many customers."""
    ctx = AccessContext(actor=AGENT, purpose="support", request_id=name)
    buffer = AuditBuffer(ctx, vault.clock)
    return [
        buffer.entry(AuditAction.PII_ACCESS, uuid.uuid4(), {"email": "masked"},
                     Outcome.SUCCESS, None)
        for _ in range(entries)
    ]  # fmt: skip


def _stored(vault: Vault, requests: Sequence[Sequence[AuditEntry]]) -> tuple[int, int]:
    """How many of the requests' entries are in ``audit_entries``, and queued for the
    sequencer in ``audit_pending``."""
    ids = [e.entry_id for entries in requests for e in entries]
    with vault.db.transaction() as s:
        entries = s.scalar(
            select(func.count()).select_from(AuditEntryRow).where(AuditEntryRow.entry_id.in_(ids))
        )
        pending = s.scalar(
            select(func.count())
            .select_from(AuditPendingRow)
            .join(AuditEntryRow, AuditEntryRow.id == AuditPendingRow.entry_pk)
            .where(AuditEntryRow.entry_id.in_(ids))
        )
    return int(entries or 0), int(pending or 0)


class Held:
    """Wraps the pool's ``execute``: the first call waits until released; calls listed in
    ``fail`` (1-based) raise the driver's connection error instead of writing."""

    def __init__(self, execute: Callable[..., Awaitable[None]], fail: Sequence[int]) -> None:
        self._execute = execute
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.calls = 0
        self.fail = set(fail)

    async def __call__(self, *args: Any, **kwargs: Any) -> None:
        self.calls += 1
        call = self.calls
        if call == 1:
            self.entered.set()
            await self.release.wait()
        if call in self.fail:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        await self._execute(*args, **kwargs)


@asynccontextmanager
async def _pool(vault: Vault) -> AsyncIterator[AsyncPool]:
    pool = await asyncio.to_thread(AsyncPool, vault.db.engine, size=2)
    await pool.open()
    try:
        yield pool
    finally:
        await pool.close()


def _run(scenario: Callable[[AsyncPool], Awaitable[T]], vault: Vault) -> T:
    async def main() -> T:
        async with _pool(vault) as pool:
            return await scenario(pool)

    return asyncio.run(main())


async def _outcome(task: asyncio.Task[None]) -> str:
    """What a request's append came to: ``committed``, ``cancelled`` or the error's name."""
    try:
        await task
    except asyncio.CancelledError:
        return "cancelled"
    except Exception as exc:  # noqa: BLE001 - reported by name
        return type(exc).__name__
    return "committed"


def test_concurrent_appends_share_one_statement(vault: Vault) -> None:
    """Ten requests arriving together take one flush: one statement on the pool, and
    every entry is in ``audit_entries`` and queued in ``audit_pending`` once each
    request's append returned."""
    requests = [_request(vault, f"r{i}") for i in range(10)]

    async def scenario(pool: AsyncPool) -> tuple[int, ...]:
        writer = LoopWriter(pool)
        before = pool.statements
        await asyncio.gather(*(writer.append(entries) for entries in requests))
        stats = writer.stats
        return stats.batches, stats.requests, stats.entries, pool.statements - before

    result = _run(scenario, vault)
    expected = ((1, 10, 20, 1), (20, 20))
    assert expected == (result, _stored(vault, requests))


def test_requests_arriving_during_a_flush_go_together_in_the_next(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No timer: one request flushes alone; the six arriving while its statement runs
    wait and go together in the second flush (two statements for seven requests)."""
    first = _request(vault, "first", 1)
    rest = [_request(vault, f"r{i}") for i in range(6)]

    async def scenario(pool: AsyncPool) -> tuple[int, ...]:
        held = Held(pool.execute, fail=())
        monkeypatch.setattr(pool, "execute", held)
        writer = LoopWriter(pool)
        leading = asyncio.create_task(writer.append(first))
        await held.entered.wait()
        waiting = [asyncio.create_task(writer.append(entries)) for entries in rest]
        await asyncio.sleep(0)  # all six queued behind the held flush
        held.release.set()
        await asyncio.gather(leading, *waiting)
        return writer.stats.batches, writer.stats.requests, writer.stats.entries, held.calls

    result = _run(scenario, vault)
    expected = ((2, 7, 13, 2), (13, 13))
    assert expected == (result, _stored(vault, [first, *rest]))


def test_a_flush_holds_at_most_max_entries_and_never_splits_a_request(vault: Vault) -> None:
    """With ``max_entries=4``: requests of 2, 2, 2 and 5 entries take three flushes (2+2,
    2, then the 5 alone), each request whole in one of them."""
    requests = [_request(vault, f"r{i}", n) for i, n in enumerate((2, 2, 2, 5))]

    async def scenario(pool: AsyncPool) -> tuple[int, ...]:
        writer = LoopWriter(pool, max_entries=4)
        await asyncio.gather(*(writer.append(entries) for entries in requests))
        return writer.stats.batches, writer.stats.requests, writer.stats.entries

    result = _run(scenario, vault)
    expected = ((3, 4, 11), (11, 11))
    assert expected == (result, _stored(vault, requests))


def test_a_failed_flush_fails_every_request_in_it(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second flush's statement fails (the connection is lost): each of its five
    requests raises StorageUnavailable, none of their entries is written; the first
    flush stands, and the next request is written again."""
    first = _request(vault, "first", 1)
    rest = [_request(vault, f"r{i}") for i in range(5)]
    after = _request(vault, "after", 1)

    async def scenario(pool: AsyncPool) -> tuple[list[str], int, int]:
        held = Held(pool.execute, fail=(2,))
        monkeypatch.setattr(pool, "execute", held)
        writer = LoopWriter(pool)
        leading = asyncio.create_task(writer.append(first))
        await held.entered.wait()
        waiting = [asyncio.create_task(writer.append(entries)) for entries in rest]
        await asyncio.sleep(0)
        held.release.set()
        outcomes = [await _outcome(t) for t in (leading, *waiting)]
        outcomes.append(await _outcome(asyncio.create_task(writer.append(after))))
        return outcomes, writer.stats.batches, writer.stats.failed

    outcomes, batches, failed = _run(scenario, vault)
    stored = (_stored(vault, [first]), _stored(vault, rest), _stored(vault, [after]))
    expected = (
        ["committed", *["StorageUnavailable"] * 5, "committed"], 3, 1, ((1, 1), (0, 0), (1, 1))
    )  # fmt: skip
    assert expected == (outcomes, batches, failed, stored)


def test_no_connection_in_time_or_a_closed_pool_fails_the_requests(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every connection of the pool is busy past the flush's wait: its requests raise
    StorageUnavailable (the gateway's 503). A pool already closed: the same."""
    monkeypatch.setattr(loop_writer, "POOL_WAIT", 0.05)
    requests = [_request(vault, f"r{i}") for i in range(3)]

    async def scenario(pool: AsyncPool) -> tuple[list[str], list[str]]:
        writer = LoopWriter(pool)
        hold = asyncio.Event()
        taken = asyncio.Event()
        busy = 0

        async def occupy() -> None:
            nonlocal busy
            async with pool._pool.connection():
                busy += 1
                if busy == 2:
                    taken.set()
                await hold.wait()

        holders = [asyncio.create_task(occupy()) for _ in range(2)]  # the pool's size
        await taken.wait()
        timed_out = [asyncio.create_task(writer.append(e)) for e in requests]
        starved = [await _outcome(t) for t in timed_out]
        hold.set()
        await asyncio.gather(*holders)
        await pool.close()
        closed = [await _outcome(asyncio.create_task(writer.append(requests[0])))]
        return starved, closed

    starved, closed = _run(scenario, vault)
    expected = (["StorageUnavailable"] * 3, ["StorageUnavailable"], (0, 0))
    assert expected == (starved, closed, _stored(vault, requests))


def test_a_cancelled_waiter_leaves_the_others_committed(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One request is cancelled while its flush runs, another while it is queued behind
    it: the other requests commit, and the cancelled ones' entries (reads that were
    made) are written all the same."""
    requests = [_request(vault, f"r{i}") for i in range(4)]

    async def scenario(pool: AsyncPool) -> list[str]:
        held = Held(pool.execute, fail=())
        monkeypatch.setattr(pool, "execute", held)
        writer = LoopWriter(pool)
        in_flight = [asyncio.create_task(writer.append(e)) for e in requests[:2]]
        await held.entered.wait()
        queued = [asyncio.create_task(writer.append(e)) for e in requests[2:]]
        await asyncio.sleep(0)
        in_flight[0].cancel()
        queued[0].cancel()
        held.release.set()
        return [await _outcome(t) for t in (*in_flight, *queued)]

    result = _run(scenario, vault)
    expected = (["cancelled", "committed", "cancelled", "committed"], (8, 8))
    assert expected == (result, _stored(vault, requests))


def test_close_writes_what_is_queued_then_refuses(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing while a flush runs and three requests wait behind it: close returns once
    all four committed; an append after it raises (nothing written)."""
    requests = [_request(vault, f"r{i}") for i in range(4)]
    late = _request(vault, "late", 1)

    async def scenario(pool: AsyncPool) -> tuple[list[str], bool, str]:
        held = Held(pool.execute, fail=())
        monkeypatch.setattr(pool, "execute", held)
        writer = LoopWriter(pool)
        tasks = [asyncio.create_task(writer.append(requests[0]))]
        await held.entered.wait()
        tasks += [asyncio.create_task(writer.append(e)) for e in requests[1:]]
        await asyncio.sleep(0)
        closing = asyncio.create_task(writer.close())
        await asyncio.sleep(0)
        held.release.set()
        await closing
        done = [("committed" if t.done() and t.exception() is None else "waiting") for t in tasks]
        refused = await _outcome(asyncio.create_task(writer.append(late)))
        return done, writer.running, refused

    result = _run(scenario, vault)
    expected = ((["committed"] * 4, False, "StorageUnavailable"), (8, 8), (0, 0))
    assert expected == (result, _stored(vault, requests), _stored(vault, [late]))


def test_entries_appended_on_the_loop_are_sequenced_and_verify(vault: Vault) -> None:
    """The sequencer finds every entry the loop's flushes wrote (their queue rows came
    from the same statement); the signed export verifies."""
    requests = [_request(vault, f"r{i}", 3) for i in range(5)]

    async def scenario(pool: AsyncPool) -> None:
        writer = LoopWriter(pool)
        await asyncio.gather(*(writer.append(entries) for entries in requests))
        await writer.close()

    vault.audit.sequence(vault.db)  # what earlier set-up wrote
    _run(scenario, vault)
    sequenced = vault.audit.sequence(vault.db)
    out = io.StringIO()
    export_audit(vault, out, context=CTX)
    verify_lines(
        out.getvalue().splitlines(keepends=True),
        trusted_vkey=vault.audit.public_vkey,
        verify=ed25519_verify,
    )
    expected = (15, (15, 0))
    assert expected == (sequenced, _stored(vault, requests))


def test_the_writer_thread_hands_appends_to_the_loop_only_on_that_loop(vault: Vault) -> None:
    """With the loop's group commit attached (as the hot reads' lifespan does), an
    async append on that loop goes there; one made on another event loop takes the
    writer's own path (here: not running, written at once)."""
    thread_writer = AuditWriter(vault.audit, vault.db)
    here, elsewhere = _request(vault, "here"), _request(vault, "elsewhere")

    async def scenario(pool: AsyncPool) -> tuple[int, int]:
        writer = LoopWriter(pool)
        thread_writer.on_loop = writer
        await thread_writer.append(here)
        await asyncio.to_thread(asyncio.run, thread_writer.append(elsewhere))
        return writer.stats.requests, thread_writer.stats.requests

    result = _run(scenario, vault)
    expected = ((1, 0), (2, 2), (2, 2))
    assert expected == (result, _stored(vault, [here]), _stored(vault, [elsewhere]))
