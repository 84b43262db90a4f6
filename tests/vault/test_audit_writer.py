"""The group-committed audit writer: many requests, one commit; a failed batch fails them all.

Batches are made deterministic without timing: the first batch's commit is held on an
event while the other requests queue, so the next batch takes all of them at once.
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import pytest
from sqlalchemy import func, insert, select

from audit.entries import AuditAction, AuditEntry, Outcome
from audit.verify import verify_lines
from tests.conftest import CTX
from vault.audit_trail.export import export_audit
from vault.audit_trail.log import AuditBuffer, AuditQueueBroken
from vault.audit_trail.queries import ACCESS_ACTIONS
from vault.audit_trail.writer import AuditWriter
from vault.authorization.context import AccessContext, Actor
from vault.crypto.signing import ed25519_verify
from vault.customers import CustomerInput
from vault.runtime import Vault
from vault.storage.db import Database, StorageUnavailable
from vault.storage.models import AuditEntryRow, AuditPendingRow

AGENT = AccessContext(
    actor=Actor(subject="agent-7", role="support_agent"), purpose="support", request_id="req-w"
)


def _entry(vault: Vault, request_id: str) -> AuditEntry:
    ctx = AccessContext(actor=AGENT.actor, purpose="support", request_id=request_id)
    return AuditBuffer(ctx, vault.clock).entry(
        AuditAction.PII_ACCESS, uuid.uuid4(), {"email": "masked"}, Outcome.SUCCESS, None
    )


def _count(vault: Vault) -> int:
    with vault.db.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(AuditEntryRow)) or 0)


class HeldWrites:
    """Wraps ``AuditLog.write_now``: the first call waits until released; calls listed in
    ``fail`` (1-based) raise StorageUnavailable instead of writing."""

    def __init__(self, vault: Vault, fail: Sequence[int] = ()) -> None:
        self._write = vault.audit.write_now
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0
        self.fail = set(fail)

    def __call__(self, db: Database, entries: Sequence[AuditEntry]) -> None:
        self.calls += 1
        if self.calls == 1:
            self.entered.set()
            self.release.wait()
        if self.calls in self.fail:
            raise StorageUnavailable("injected batch failure")
        self._write(db, entries)


@pytest.fixture
def held(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> Callable[..., HeldWrites]:
    def make(fail: Sequence[int] = ()) -> HeldWrites:
        hold = HeldWrites(vault, fail)
        monkeypatch.setattr(vault.audit, "write_now", hold)
        return hold

    return make


@pytest.fixture
def writer(vault: Vault) -> Iterator[AuditWriter]:
    w = AuditWriter(vault.audit, vault.db, max_entries=1_000, linger=0.0)
    w.start()
    yield w
    w.close()


def _queued_behind_first(
    vault: Vault, writer: AuditWriter, hold: HeldWrites, requests: int
) -> tuple[Future[None], list[Future[None]]]:
    first = writer.submit([_entry(vault, "first")])
    assert hold.entered.wait(10)  # the writer holds the first batch's commit
    rest = [
        writer.submit([_entry(vault, f"r{i}"), _entry(vault, f"r{i}")]) for i in range(requests)
    ]
    hold.release.set()
    return first, rest


def test_concurrent_requests_share_one_commit(
    vault: Vault, writer: AuditWriter, held: Callable[..., HeldWrites]
) -> None:
    """Eleven requests (one, then ten arriving while its commit runs) take two commits;
    every request returns only once its entries are in the database."""
    hold = held()
    first, rest = _queued_behind_first(vault, writer, hold, 10)
    for done in [first, *rest]:
        done.result(10)
    expected = (2, 11, 21, 21)
    assert expected == (
        writer.stats.batches,
        writer.stats.requests,
        writer.stats.entries,
        _count(vault),
    )


def test_a_failed_batch_fails_every_request_in_it(
    vault: Vault, writer: AuditWriter, held: Callable[..., HeldWrites]
) -> None:
    """The second batch's commit fails: each of its five requests gets the failure (none
    would answer), none of their entries is written; the first batch stands."""
    hold = held(fail=[2])
    first, rest = _queued_behind_first(vault, writer, hold, 5)
    first.result(10)
    failures = []
    for done in rest:
        with pytest.raises(StorageUnavailable) as caught:
            done.result(10)
        failures.append(type(caught.value).__name__)
    assert (failures, writer.stats.failed, _count(vault)) == (["StorageUnavailable"] * 5, 1, 1)


def test_a_query_whose_batch_fails_answers_nothing(
    vault: Vault, writer: AuditWriter, held: Callable[..., HeldWrites]
) -> None:
    """Two queries read a customer through ``query_unit``; their audit batch fails, so both
    raise before their caller gets what they read, and no read entry is written."""
    with vault.unit(CTX) as s:
        cid = vault.customers.create(
            s, CustomerInput(first_name="\u0e2a\u0e21\u0e0a\u0e32\u0e22")
        ).id
    before = _count(vault)
    vault.writer = writer
    hold = held(fail=[2])
    blocker = writer.submit([_entry(vault, "blocker")])
    assert hold.entered.wait(10)
    answered: list[str] = []

    def query(n: int) -> None:
        ctx = AccessContext(actor=AGENT.actor, purpose="support", request_id=f"q{n}")
        with vault.query_unit(ctx) as s:
            name = vault.customers.get(s, cid).first_name
        answered.append(str(name))  # reached only if the audit batch committed

    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(query, n) for n in range(2)]
        # Both queries wait behind the held batch (or one ended early: its error shows below).
        while writer.stats.requests + len(writer._queue) < 3 and not any(f.done() for f in futures):
            threading.Event().wait(0.001)
        hold.release.set()
        errors = [type(f.exception(10)).__name__ for f in futures]
    blocker.result(10)
    assert (["StorageUnavailable"] * 2, [], before + 1) == (errors, answered, _count(vault))


def test_a_request_alone_is_not_kept_waiting_for_company(vault: Vault) -> None:
    """The writer lingers for more requests only under load (its last batch held more
    than one): a lone request is committed at once even with a minute's linger, in a
    batch of its own."""
    lone = AuditWriter(vault.audit, vault.db, linger=60.0)
    lone.start()
    try:
        for i in range(3):
            lone.submit([_entry(vault, f"alone-{i}")]).result(timeout=30)  # not 60 s
        assert (lone.stats.batches, lone.stats.requests) == (3, 3)
    finally:
        lone.close()


def test_without_a_running_writer_appends_are_written_at_once(vault: Vault) -> None:
    """The CLI and tests without the app's lifespan: each append is its own commit."""
    w = AuditWriter(vault.audit, vault.db)
    before = _count(vault)
    w.append_sync([_entry(vault, "cli-1")])
    w.append_sync([_entry(vault, "cli-2"), _entry(vault, "cli-2")])
    assert (before + 3, 0) == (_count(vault), w.stats.batches)


def test_the_async_append_returns_after_the_commit(vault: Vault, writer: AuditWriter) -> None:
    """``await writer.append(entries)`` on an event loop: the entries are there after it."""
    before = _count(vault)
    asyncio.run(writer.append([_entry(vault, "loop-1"), _entry(vault, "loop-1")]))
    assert before + 2 == _count(vault)


def test_old_and_new_read_entries_export_verify_and_show_in_the_access_history(
    vault: Vault,
) -> None:
    """Entries written before pii.access (pii.read + interactions.read) and after it sit in
    one log: the export verifies, and the customer's access history lists both kinds."""
    with vault.unit(CTX) as s:
        cid = vault.customers.create(s, CustomerInput(first_name="Zo\u00eb")).id
    old = AuditBuffer(AGENT, vault.clock)
    written = [
        old.entry(AuditAction.PII_READ, cid, {"email": "masked"}, Outcome.SUCCESS, None),
        old.entry(
            AuditAction.INTERACTIONS_READ, cid, {"interactions": "clear"}, Outcome.SUCCESS, None
        ),
    ]
    vault.audit.write_now(vault.db, written)
    with vault.unit(AGENT) as s:
        vault.customers.get(s, cid)
        vault.interactions.timeline(s, cid)
    vault.audit.sequence(vault.db)
    out = io.StringIO()
    export_audit(vault, out, context=CTX)
    verify_lines(
        out.getvalue().splitlines(keepends=True),
        trusted_vkey=vault.audit.public_vkey,
        verify=ed25519_verify,
    )
    subject = AccessContext(Actor("subject-1", "data_subject", customer_id=cid), "self")
    with vault.unit(subject) as s:
        page = vault.trail.access_history(s, cid)
    actions = sorted(r.action for r in page.items)
    assert actions == ["interactions.read", "pii.access", "pii.read"]
    assert {"pii.access", "pii.read", "interactions.read"} <= set(ACCESS_ACTIONS)
    exported = [json.loads(line) for line in out.getvalue().splitlines()]
    kinds = {e["entry"]["action"] for e in exported if "entry" in e}
    assert {"pii.read", "interactions.read", "pii.access"} <= kinds


def test_the_sequencer_refuses_a_queue_row_that_names_no_entry(vault: Vault) -> None:
    """The queue has no foreign key (migration 0018); a row naming no entry stops the
    sequencer loudly instead of being skipped or sequenced."""
    vault.audit.write_now(vault.db, [_entry(vault, "before")])
    with vault.db.transaction() as s:
        s.execute(insert(AuditPendingRow), [{"entry_pk": 10_000_000}])
    with pytest.raises(AuditQueueBroken) as caught:
        vault.audit.sequence(vault.db)
    assert str(caught.value) == "an audit queue row names no entry"
