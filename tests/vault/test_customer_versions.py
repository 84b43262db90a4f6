"""A customer's version: it grows by one with every change of the record, and an update
that expects a version the record has left is refused (CONFLICT) with nothing written,
whether the change that got there first came before it or at the same time."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm.exc import StaleDataError
from structlog.testing import capture_logs

from consent import Privacy
from consent.dsr.desk import DsrInput
from tests.conftest import CTX
from vault.authorization.context import AccessContext, Actor
from vault.customers import Customer, CustomerInput, CustomerPatch
from vault.customers import service as customer_service
from vault.errors import Conflict, VersionConflict
from vault.runtime import Vault
from vault.storage.models import AuditEntryRow, CustomerRow

OFFICER = AccessContext(Actor("officer-1", "compliance_officer"), "compliance")
NAME = "\u067e\u0631\u0648\u06cc\u0646"  # Parvin, in Persian: a canary for leaks


def _create(vault: Vault, **fields: Any) -> Customer:
    with vault.unit(CTX) as s:
        return vault.customers.create(s, CustomerInput(**{"first_name": NAME, **fields}))


def _update(vault: Vault, cid: uuid.UUID, expected: int | None = None, **fields: Any) -> Customer:
    with vault.unit(CTX) as s:
        return vault.customers.update(s, cid, CustomerPatch(**fields), expected_version=expected)


def _version(vault: Vault, cid: uuid.UUID) -> int:
    with vault.db.transaction() as s:
        found = s.scalar(select(CustomerRow.version).where(CustomerRow.id == cid))
    assert found is not None
    return found


def _updates(vault: Vault, cid: uuid.UUID) -> list[dict[str, Any]]:
    with vault.db.transaction() as s:
        rows = s.scalars(
            select(AuditEntryRow.canonical)
            .where(AuditEntryRow.action == "customer.update", AuditEntryRow.customer_id == cid)
            .order_by(AuditEntryRow.id)
        )
        return [json.loads(raw) for raw in rows]


def test_a_new_customer_is_at_version_1_and_each_update_adds_one(vault: Vault) -> None:
    """Created at 1; an update without an expected version still adds one, and the
    record returned carries the version it is now at."""
    created = _create(vault)
    first = _update(vault, created.id, tier="gold")
    second = _update(vault, created.id, expected=2, tier="silver")
    assert (created.version, first.version, second.version) == (1, 2, 3)
    assert _version(vault, created.id) == 3


def test_a_stale_expected_version_is_refused_and_nothing_is_written(vault: Vault) -> None:
    """Two callers read version 1; the first writes, the second (still expecting 1) gets
    VersionConflict (code CONFLICT) naming both versions, and neither its fields nor an
    audit entry nor a version bump is written. The message holds no value."""
    cid = _create(vault).id
    _update(vault, cid, expected=1, first_name="Ana")
    with capture_logs() as logs, pytest.raises(VersionConflict) as refused:
        _update(vault, cid, expected=1, first_name="Bea", tier="gold")
    assert (refused.value.code, refused.value.expected, refused.value.current) == ("CONFLICT", 1, 2)
    assert isinstance(refused.value, Conflict)
    assert refused.value.extensions() == {"expectedVersion": 1, "currentVersion": 2}
    with vault.unit(CTX) as s:
        now = vault.customers.get(s, cid)
    assert (now.first_name, now.tier, now.version) == ("Ana", None, 2)
    assert [e["fields"] for e in _updates(vault, cid)] == [{"first_name": "written"}]
    shown = str(refused.value) + repr(refused.value) + json.dumps(logs, default=str)
    assert "Ana" not in shown
    assert "Bea" not in shown
    assert NAME not in shown


def test_an_expected_version_ahead_of_the_record_is_refused_too(vault: Vault) -> None:
    """Only the current version is accepted: one the record never reached is a conflict."""
    cid = _create(vault).id
    with pytest.raises(VersionConflict):
        _update(vault, cid, expected=7, tier="gold")
    assert _version(vault, cid) == 1


def test_the_write_is_a_compare_and_set_on_the_version(vault: Vault) -> None:
    """A row changed underneath an ORM object (another writer, simulated by a statement
    the session does not see) makes the flush fail rather than overwrite it."""
    cid = _create(vault).id
    with vault.db.transaction() as s:
        row = s.scalars(select(CustomerRow).where(CustomerRow.id == cid)).one()
        s.execute(
            update(CustomerRow)
            .where(CustomerRow.id == cid)
            .values(version=CustomerRow.version + 1)
            .execution_options(synchronize_session=False)
        )
        row.tier = "gold"
        with pytest.raises(StaleDataError):
            s.flush()
        s.rollback()
    assert _version(vault, cid) == 1


def test_an_update_losing_the_compare_and_set_is_a_conflict(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When another writer changes the row between the service's read and its write
    (here: right after the read, by a statement the session does not see), the update
    answers VersionConflict and writes nothing."""
    cid = _create(vault).id
    real_load = customer_service.load  # type: ignore[attr-defined]

    def load_then_changed(session: Any, customer_id: uuid.UUID, **kw: Any) -> CustomerRow:
        row = real_load(session, customer_id, **kw)
        session.execute(
            update(CustomerRow)
            .where(CustomerRow.id == row.id)
            .values(version=CustomerRow.version + 1)
            .execution_options(synchronize_session=False)
        )
        return row

    monkeypatch.setattr(customer_service, "load", load_then_changed)
    with pytest.raises(VersionConflict) as refused:
        _update(vault, cid, tier="gold")
    assert (refused.value.expected, refused.value.current) == (1, None)
    monkeypatch.undo()
    assert (_version(vault, cid), _updates(vault, cid)) == (1, [])


def test_two_concurrent_updates_expecting_one_version_one_wins(vault: Vault) -> None:
    """Two threads, each in its own unit of work, update one customer at the same time
    expecting version 1: exactly one succeeds and one gets VersionConflict; the record
    holds the winner's value at version 2 and the audit trail one update."""
    cid = _create(vault).id
    start = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def writer(tier: str) -> None:
        start.wait(timeout=60)
        try:
            outcomes[tier] = _update(vault, cid, expected=1, tier=tier)
        except VersionConflict as refused:
            outcomes[tier] = refused

    threads = [threading.Thread(target=writer, args=(t,)) for t in ("gold", "silver")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    won = [t for t, o in outcomes.items() if isinstance(o, Customer)]
    lost = [t for t, o in outcomes.items() if isinstance(o, VersionConflict)]
    assert (len(won), len(lost)) == (1, 1)
    with vault.unit(CTX) as s:
        now = vault.customers.get(s, cid)
    assert (won[0], 2) == (now.tier, now.version)
    assert [e["fields"] for e in _updates(vault, cid)] == [{"tier": "written"}]


def test_concurrent_updates_without_a_version_both_apply_to_different_fields(
    vault: Vault,
) -> None:
    """Without an expected version the row lock makes concurrent patches apply one
    after the other, each to the record the other left: different fields both stay."""
    cid = _create(vault).id
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def writer(fields: dict[str, Any]) -> None:
        start.wait(timeout=60)
        try:
            _update(vault, cid, **fields)
        except BaseException as failed:  # noqa: BLE001 - reported by the assertion below
            failures.append(failed)

    patches = [{"tier": "gold"}, {"locale": "fa-IR"}]
    threads = [threading.Thread(target=writer, args=(p,)) for p in patches]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert failures == []
    with vault.unit(CTX) as s:
        now = vault.customers.get(s, cid)
    assert (now.tier, now.locale, now.version) == ("gold", "fa-IR", 3)


def test_every_kind_of_change_adds_one(vault: Vault) -> None:
    """A merge (both records), re-pointing records merged earlier, a rectification, a
    restriction and its lifting, and an erasure each move the version on."""
    keep, gone, older = (
        _create(vault, email=f"v{i}@example.org", tier="bronze").id for i in range(3)
    )
    with vault.unit(CTX) as s:
        vault.customers.merge(s, gone, older)
    assert (_version(vault, keep), _version(vault, gone), _version(vault, older)) == (1, 2, 2)
    with vault.unit(CTX) as s:
        vault.customers.merge(s, keep, gone)
    assert (_version(vault, keep), _version(vault, gone), _version(vault, older)) == (2, 3, 3)

    desk = Privacy.of(vault).desk
    subject = AccessContext(Actor("subject-1", "data_subject", keep), "self")
    for kind, details in (("rectification", {"tier": "gold"}), ("restriction", None)):
        with vault.unit(subject) as s:
            filed = desk.create(s, DsrInput(kind, keep, details))
        with vault.unit(subject) as s:
            desk.verify(s, filed.request.id, filed.verification_token)
        with vault.unit(OFFICER) as s:
            desk.process(s, filed.request.id)
    assert _version(vault, keep) == 4
    with vault.unit(OFFICER) as s:
        desk.lift_restriction(s, keep)
    assert _version(vault, keep) == 5
    with vault.unit(CTX) as s:
        vault.erasure.erase(s, keep)
    assert _version(vault, keep) == 6
    vault.erasure.purge(vault.db, keep)
    assert (_version(vault, keep), _version(vault, gone), _version(vault, older)) == (6, 4, 4)
