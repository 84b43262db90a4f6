"""Retention of what goes stale: inactive customers erased through the erasure path
(reason ``retention``), consent events past their keeping period deleted while the
latest event of each purpose, and so the consent in force, stays; the ledger still
refuses every other change."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from consent import Privacy
from policies.purposes import registry
from tests.conftest import CTX, FrozenClock
from vault.customers import CustomerInput
from vault.interactions import InteractionInput
from vault.privacy.retention import RetentionCategory, RetentionOutcome, parse_policy
from vault.runtime import Vault
from vault.storage.models import (
    AuditEntryRow,
    ConsentEventRow,
    CustomerRow,
    LegalHoldRow,
    RetentionUnlockRow,
    retention_unlocked,
)
from vault.types import CustomerStatus

POLICY = """
[interactions]
default = 0

[categories]
interaction_payload = 0
dsr_requests = 0
tombstones = 0
inactive_customers = 365
consent_events = 365
"""
INACTIVE = RetentionCategory.INACTIVE_CUSTOMERS.value
CONSENT = RetentionCategory.CONSENT_EVENTS.value


def _customer(vault: Vault) -> uuid.UUID:
    with vault.unit(CTX) as s:
        return vault.customers.create(s, CustomerInput(first_name="Ngọc Ánh 王小明")).id


def _interaction(vault: Vault, cid: uuid.UUID) -> None:
    item = InteractionInput(
        customer_id=cid, channel="web", type="page_view", occurred_at=vault.clock()
    )
    with vault.unit(CTX) as s:
        vault.interactions.record_many(s, [item])


def _hold(vault: Vault, cid: uuid.UUID) -> None:
    with vault.db.transaction() as s:
        s.add(
            LegalHoldRow(
                id=uuid.uuid4(), customer_id=cid, reason="case 17", placed_by="system:test",
                placed_at=vault.clock(),
            )
        )  # fmt: skip


def _statuses(vault: Vault) -> dict[uuid.UUID, str]:
    with vault.db.transaction() as s:
        return dict(s.execute(select(CustomerRow.id, CustomerRow.status)).all())


def _erasure_reasons(vault: Vault) -> dict[uuid.UUID | None, object]:
    """The reason of each customer's erasure entry (the purge after it has none)."""
    with vault.db.transaction() as s:
        rows = s.execute(
            select(AuditEntryRow.customer_id, AuditEntryRow.canonical).where(
                AuditEntryRow.action == "customer.erase"
            )
        ).all()
        details = [(cid, json.loads(canonical)["detail"]) for cid, canonical in rows]
    return {cid: detail.get("reason") for cid, detail in details if "step" not in detail}


def test_inactive_customers_are_erased_with_reason_retention(
    vault: Vault, clock: FrozenClock
) -> None:
    """No interaction for 365 days and created before that: erased (dry run: listed,
    nothing changed); a customer active since, one created since, and one under a legal
    hold (counted as held) stay."""
    stale, active, held = _customer(vault), _customer(vault), _customer(vault)
    _interaction(vault, stale)
    _hold(vault, held)
    clock.advance(days=390)
    new = _customer(vault)
    _interaction(vault, active)
    clock.advance(days=10)
    policy = parse_policy(POLICY, source="test.toml")
    before = _statuses(vault)

    dry = vault.retention.run(vault.db, dry_run=True, now=clock.now, policy=policy)
    assert ((stale,), 1, 1) == (
        dry.customers,
        dry.count(RetentionOutcome.DELETED, INACTIVE),
        dry.count(RetentionOutcome.HELD, INACTIVE),
    )
    assert before == _statuses(vault)
    assert _erasure_reasons(vault) == {}

    real = vault.retention.run(vault.db, dry_run=False, now=clock.now, policy=policy)
    assert ((stale,), 1, 1) == (
        real.customers,
        real.count(RetentionOutcome.DELETED, INACTIVE),
        real.count(RetentionOutcome.HELD, INACTIVE),
    )
    statuses = _statuses(vault)
    expected = {stale: "erased", active: "active", new: "active", held: "active"}
    assert expected == {cid: statuses[cid] for cid in expected}
    assert {stale: "retention"} == _erasure_reasons(vault)
    again = vault.retention.run(vault.db, dry_run=False, now=clock.now, policy=policy)
    assert (again.customers, again.count(RetentionOutcome.DELETED, INACTIVE)) == ((), 0)


def test_inactive_customers_are_erased_in_batches(vault: Vault, clock: FrozenClock) -> None:
    """Five inactive customers with a batch size of two: all five erased in one run."""
    ids = {_customer(vault) for _ in range(5)}
    clock.advance(days=400)
    vault.retention.batch_size = 2
    policy = parse_policy(POLICY, source="test.toml")
    report = vault.retention.run(vault.db, dry_run=False, now=clock.now, policy=policy)
    statuses = _statuses(vault)
    assert (ids, {CustomerStatus.ERASED.value}) == (
        set(report.customers),
        {statuses[cid] for cid in ids},
    )


def _purposes() -> tuple[str, str]:
    needing = sorted(name for name, info in registry().items() if info.needs_consent)
    return needing[0], needing[1]


def _events(vault: Vault, cid: uuid.UUID) -> list[tuple[str, str]]:
    with vault.db.transaction() as s:
        rows = s.execute(
            select(ConsentEventRow.purpose, ConsentEventRow.event)
            .where(ConsentEventRow.customer_id == cid)
            .order_by(ConsentEventRow.seq)
        ).all()
        return list(rows)


def _state(vault: Vault, cid: uuid.UUID) -> list[tuple[str, str]]:
    ledger = Privacy.of(vault).ledger
    with vault.unit(CTX) as s:
        return sorted((st.purpose, str(st.state)) for st in ledger.status(s, cid))


def _history(vault: Vault, clock: FrozenClock, cid: uuid.UUID) -> None:
    """P: granted, withdrawn 10 days later, granted again 10 days after that; Q: granted,
    withdrawn 390 days later. Then 10 more days pass."""
    ledger = Privacy.of(vault).ledger
    p, q = _purposes()
    for step, (purpose, grant) in enumerate(((p, True), (q, True), (p, False), (p, True))):
        if step >= 2:
            clock.advance(days=10)
        with vault.unit(CTX) as s:
            (ledger.grant if grant else ledger.withdraw)(s, cid, purpose)
    clock.advance(days=370)
    with vault.unit(CTX) as s:
        ledger.withdraw(s, cid, q)
    clock.advance(days=10)


def test_superseded_consent_events_past_the_period_are_deleted(
    vault: Vault, clock: FrozenClock
) -> None:
    """P's first grant and its withdrawal were superseded more than 365 days ago: deleted
    (dry run: counted, nothing deleted); P's latest grant, Q's grant (superseded 10 days
    ago) and Q's withdrawal stay; the consent in force is the same; a customer under a
    legal hold keeps its events (counted as held)."""
    cid, kept = _customer(vault), _customer(vault)
    _hold(vault, kept)
    start = clock.now
    _history(vault, clock, cid)
    clock.now = start
    _history(vault, clock, kept)
    p, q = _purposes()
    before = (_state(vault, cid), _events(vault, kept))
    policy = parse_policy(POLICY.replace("inactive_customers = 365", "inactive_customers = 0"),
                          source="test.toml")  # fmt: skip

    dry = vault.retention.run(vault.db, dry_run=True, now=clock.now, policy=policy)
    assert (
        dry.count(RetentionOutcome.DELETED, CONSENT),
        dry.count(RetentionOutcome.HELD, CONSENT),
        len(_events(vault, cid)),
    ) == (2, 2, 5)
    real = vault.retention.run(vault.db, dry_run=False, now=clock.now, policy=policy)
    assert (
        real.count(RetentionOutcome.DELETED, CONSENT),
        real.count(RetentionOutcome.HELD, CONSENT),
    ) == (2, 2)
    assert [(q, "granted"), (p, "granted"), (q, "withdrawn")] == _events(vault, cid)
    assert before == (_state(vault, cid), _events(vault, kept))
    with vault.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(RetentionUnlockRow)) == 0


def test_the_ledger_refuses_deletes_outside_retention_and_of_latest_events(
    vault: Vault, clock: FrozenClock
) -> None:
    """Without retention's unlock, deleting a superseded event is refused; with it,
    deleting a latest event (the proof in force) and any UPDATE are refused still."""
    cid = _customer(vault)
    _history(vault, clock, cid)
    latest = "DELETE FROM consent_events WHERE seq = (SELECT max(seq) FROM consent_events)"
    first = "DELETE FROM consent_events WHERE seq = (SELECT min(seq) FROM consent_events)"
    update = "UPDATE consent_events SET purpose = purpose"
    refused = []

    def attempt(statement: str, *, unlocked: bool) -> None:
        with vault.db.engine.begin() as conn:
            if unlocked:
                with retention_unlocked(conn):
                    conn.execute(text(statement))
            else:
                conn.execute(text(statement))

    for statement, unlocked in ((first, False), (latest, True), (update, True)):
        with pytest.raises(DBAPIError):
            attempt(statement, unlocked=unlocked)
        refused.append(statement.split()[0])
    assert refused == ["DELETE", "DELETE", "UPDATE"]
    assert len(_events(vault, cid)) == 5
    with vault.db.engine.begin() as conn, retention_unlocked(conn):
        assert conn.execute(text(first)).rowcount == 1
