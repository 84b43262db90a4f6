"""Erasure by crypto-shredding: nothing readable of the customer remains, anywhere."""

# ruff: noqa: SIM300 - assertions read `expected == actual`.

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from sqlalchemy import Connection, event, func, insert, select, update
from sqlalchemy.orm import Session

from audit.checkpoint import Signer
from policies import AccessDenied
from tests.conftest import CTX, FrozenClock, grant_all_consents
from tests.storage.test_no_clear_pii import (
    PEOPLE,
    _needles,
    _postgres_dump,
    _sqlite_bytes,
)
from tests.vault.test_audit_trail import _entries, _export, _verify
from vault.authorization.context import AccessContext, AccessContextMissing, Actor
from vault.config import Settings
from vault.crypto import DecryptionError, FileKeyProvider, Keyring, WrappedKey, shred_list_path
from vault.customers import CustomerInput, ExternalId
from vault.errors import CustomerNotFound, InvalidInput, LegalHoldActive
from vault.interactions import InteractionInput
from vault.privacy.erasure import PENDING_COUNT_LIMIT
from vault.runtime import Vault
from vault.storage.db import Database
from vault.storage.models import (
    ConsentEventRow,
    ConsentStateRow,
    CustomerExternalIdRow,
    CustomerMetricsRow,
    CustomerRow,
    DataKeyRow,
    DsrRequestRow,
    InteractionRow,
    LegalHoldRow,
    ObjectionRow,
    SegmentMembershipRow,
    SegmentRow,
)
from vault.types import CustomerStatus, PiiField

CHAT = "please deliver to my neighbour Farzaneh, code 4471"
AGENT = AccessContext(actor=Actor(subject="agent-7", role="support_agent"), purpose="support")
CONTROL = "control-tier-still-stored"


def _subject(customer_id: uuid.UUID) -> AccessContext:
    actor = Actor(subject="subject-1", role="data_subject", customer_id=customer_id)
    return AccessContext(actor=actor, purpose="self")


def _clear_extras(i: int) -> dict[str, Any]:
    """Non-PII columns stored in clear, made distinctive so a scan can find them."""
    return {
        "tier": f"erase-tier-{i}",
        "tags": [f"erase-tag-{i}"],
        "attributes": {"favourite_colour": f"erase-attr-{i}"},
        "external_ids": [ExternalId("shop", f"erase-ext-{i}")],
    }


def _person(i: int) -> CustomerInput:
    """PEOPLE[i] (Latin, Persian, Thai, Chinese names) with distinctive clear columns."""
    p = PEOPLE[i]
    return CustomerInput(
        email=p.email, phone=p.phone, first_name=p.first_name, last_name=p.last_name,
        birth_date=p.birth_date, address=p.address, locale="fa-IR", **_clear_extras(i),
    )  # fmt: skip


def _pii_values(i: int) -> list[str]:
    p = PEOPLE[i]
    values = [v for v in (p.email, p.phone, p.first_name, p.last_name) if v]
    values += [p.address] if isinstance(p.address, str) else []
    values += [str(p.birth_date)] if p.birth_date else []
    return [*values, CHAT]


def _clear_values(i: int) -> list[str]:
    return [f"erase-tier-{i}", f"erase-tag-{i}", f"erase-attr-{i}", f"erase-ext-{i}", f"order-{i}-"]


def _interactions(customer_id: uuid.UUID, i: int, n: int) -> list[InteractionInput]:
    start = datetime(2026, 10, 1, tzinfo=UTC)
    return [
        InteractionInput(
            customer_id=customer_id, channel="chat", type="chat_message",
            occurred_at=start + timedelta(minutes=k), external_id=f"order-{i}-{k}",
            payload={"text": CHAT, "k": k},
        )
        for k in range(n)
    ]  # fmt: skip


def _create(vault: Vault, i: int, interactions: int = 3) -> uuid.UUID:
    with vault.unit(CTX) as s:
        cid = vault.customers.create(s, _person(i)).id
        if interactions:
            vault.interactions.record_many(s, _interactions(cid, i, interactions))
    return cid


def _erase(vault: Vault, customer_id: uuid.UUID, **kwargs: Any) -> Any:
    with vault.unit(CTX) as s:
        return vault.erasure.erase(s, customer_id, **kwargs)


def _rows(vault: Vault, model: Any, customer_id: uuid.UUID) -> int:
    with vault.db.transaction() as s:
        return int(
            s.scalar(
                select(func.count()).select_from(model).where(model.customer_id == customer_id)
            )
            or 0
        )


def _at_rest(vault: Vault) -> bytes:
    """The SQLite file (WAL checkpointed into it first) or a pg_dump of the test schema."""
    if vault.db.dialect != "sqlite":
        return _postgres_dump(vault)
    raw = vault.db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        busy = cursor.fetchone()
        cursor.close()
    finally:
        raw.close()
    assert busy is not None
    assert 0 == busy[0]
    return _sqlite_bytes(vault)


def _found(stored: bytes, values: list[str]) -> list[str]:
    return sorted({v for v, needle in _needles(values) if needle in stored})


def _wrapped(vault: Vault, customer_id: uuid.UUID) -> tuple[int, WrappedKey]:
    """The customer's key id and wrapped data key as stored now (what a backup copies)."""
    with vault.db.transaction() as s:
        key_id, version, blob = s.execute(
            select(DataKeyRow.key_id, DataKeyRow.kek_version, DataKeyRow.wrapped_key).where(
                DataKeyRow.customer_id == customer_id
            )
        ).one()
    assert version is not None
    assert blob is not None
    return key_id, WrappedKey(version, blob)


def _key_file(vault: Vault) -> Path:
    provider = vault.keyring.provider
    assert isinstance(provider, FileKeyProvider)
    return provider.path


# -- nothing readable remains -----------------------------------------------------


def test_no_trace_of_erased_customers_at_rest(vault: Vault) -> None:
    """After erasing customers named in Persian, Thai and Chinese (and purging their
    interactions), neither their PII nor their clear columns (tier, tags, attributes,
    external ids, interaction external ids) are anywhere in the SQLite file or in a
    pg_dump, while the same scan still finds a surviving customer's clear value and found
    the erased customers' clear values before."""
    erased = {i: _create(vault, i) for i in (1, 2, 3)}
    grant_all_consents(vault, *erased.values())
    with vault.unit(CTX) as s:
        vault.customers.create(s, CustomerInput(first_name="Kept", tier=CONTROL))
    clear = [v for i in erased for v in _clear_values(i)]
    assert sorted(clear) == _found(_at_rest(vault), clear)

    for cid in erased.values():
        _erase(vault, cid)
        vault.erasure.purge(vault.db, cid)
    stored = _at_rest(vault)
    assert CONTROL.encode() in stored
    pii = [v for i in erased for v in _pii_values(i)]
    assert [] == _found(stored, pii + clear)


def test_old_ciphertext_cannot_be_opened_even_with_the_old_wrapped_key(vault: Vault) -> None:
    """A token and the wrapped data key copied before the erasure (a database backup) do
    not open afterwards: the keyring refuses the key, in this process and in a new one."""
    cid = _create(vault, 1, interactions=0)
    with vault.db.transaction() as s:
        token = s.scalar(select(CustomerRow.email_ct).where(CustomerRow.id == cid))
    key_id, wrapped = _wrapped(vault, cid)
    assert token is not None
    key = vault.keyring.open_data_key(cid, key_id, wrapped)
    assert PEOPLE[1].email == key.decrypt_text(token, field=PiiField.EMAIL)

    _erase(vault, cid)
    for ring in (vault.keyring, Keyring.open(_key_file(vault))):
        with pytest.raises(DecryptionError):
            ring.open_data_key(cid, key_id, wrapped)


Backup = tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]


def _backup(vault: Vault, cid: uuid.UUID) -> Backup:
    """The customer's row, data key row and external ids, as a database backup holds them."""
    with vault.db.transaction() as s:
        customer = s.execute(select(CustomerRow.__table__).where(CustomerRow.id == cid))
        key = s.execute(select(DataKeyRow.__table__).where(DataKeyRow.customer_id == cid))
        refs = s.execute(
            select(CustomerExternalIdRow.__table__).where(CustomerExternalIdRow.customer_id == cid)
        )
        return (
            dict(customer.mappings().one()),
            dict(key.mappings().one()),
            [dict(r) for r in refs.mappings()],
        )


def _restore(vault: Vault, cid: uuid.UUID, backup: Backup) -> None:
    customer, key, refs = backup
    with vault.db.transaction() as s:
        s.execute(update(CustomerRow).where(CustomerRow.id == cid).values(**customer))
        s.execute(update(DataKeyRow).where(DataKeyRow.customer_id == cid).values(**key))
        s.execute(insert(CustomerExternalIdRow), refs)
        assert CustomerStatus.ACTIVE.value == s.scalar(
            select(CustomerRow.status).where(CustomerRow.id == cid)
        )


def test_a_restored_backup_of_the_customer_stays_unreadable(vault: Vault) -> None:
    """Restoring the customer's row and wrapped data key as an older backup holds them
    brings no data back: the vault (and a freshly started one) reads the customer as
    erased, and refuses to hand its key out."""
    cid = _create(vault, 2, interactions=0)
    backup = _backup(vault, cid)
    _erase(vault, cid)
    _restore(vault, cid, backup)
    fresh = Vault.open(
        vault.settings, keyring=Keyring.open(_key_file(vault)), database=vault.db,
        signer=vault.audit.signer, clock=vault.clock,
    )  # fmt: skip
    for v in (vault, fresh):
        with v.unit(CTX) as s:
            seen = v.customers.get(s, cid)
        assert CustomerStatus.ERASED == seen.status
        assert {f.value: None for f in PiiField} == {
            f.value: getattr(seen, f.value) for f in PiiField
        }
        with pytest.raises(DecryptionError), v.db.transaction() as s:
            v.keys.get(s, cid)


def test_erasures_undone_by_a_restore_are_found_and_applied_again(vault: Vault) -> None:
    """After a restore, restored() names the customers that are live in the database but
    shredded in the keyring; erasing them again brings back the tombstone and deletes the
    restored external ids. Customers never erased are not named."""
    cid = _create(vault, 3, interactions=0)
    kept = _create(vault, 1, interactions=0)
    backup = _backup(vault, cid)
    _erase(vault, cid)
    assert [] == vault.erasure.restored(vault.db)
    _restore(vault, cid, backup)

    assert [cid] == vault.erasure.restored(vault.db, batch_size=1)
    result = _erase(vault, cid)
    assert 1 == result.external_ids_deleted
    assert [] == vault.erasure.restored(vault.db)
    with vault.unit(CTX) as s:
        assert CustomerStatus.ERASED == vault.customers.get(s, cid).status
        assert CustomerStatus.ACTIVE == vault.customers.get(s, kept).status


def test_rotating_and_retiring_keks_kills_a_restored_wrapped_key(
    settings: Settings,
    database: Database,
    keyring: Keyring,
    audit_signer: Signer,
    clock: FrozenClock,
) -> None:
    """After a restore, `keys rotate --retire-old` destroys the erased customer's restored
    key again instead of re-wrapping it, and retires the KEK it was wrapped under: the
    copied wrapped key is then dead even for a keyring that lost its shred list."""
    vault = Vault.open(
        settings, keyring=keyring, database=database, signer=audit_signer, clock=clock
    )
    cid = _create(vault, 3, interactions=0)
    kept = _create(vault, 1, interactions=0)
    key_id, wrapped = _wrapped(vault, cid)
    _erase(vault, cid)
    with vault.db.transaction() as s:
        s.execute(
            update(DataKeyRow)
            .where(DataKeyRow.customer_id == cid)
            .values(wrapped_key=wrapped.blob, kek_version=wrapped.kek_version, destroyed_at=None)
        )

    report = vault.rotate_keys(CTX, retire_old=True)
    assert [wrapped.kek_version] == report.retired
    with vault.db.transaction() as s:
        assert s.scalar(select(DataKeyRow.wrapped_key).where(DataKeyRow.customer_id == cid)) is None
    shred_list_path(_key_file(vault)).unlink()  # even a keyring without its shred list
    with pytest.raises(DecryptionError):
        Keyring.open(_key_file(vault)).open_data_key(cid, key_id, wrapped)
    with vault.unit(CTX) as s:
        assert PEOPLE[1].email == vault.customers.get(s, kept).email
    vault.close()


def test_another_process_with_the_key_cached_cannot_read_after_erasure(vault: Vault) -> None:
    """A second vault process that decrypted the customer's interactions (and so holds
    the data key in its cache) no longer hands the key out once the erasure is done."""
    cid = _create(vault, 1, interactions=2)
    other = Vault.open(
        vault.settings, keyring=Keyring.open(_key_file(vault)), database=vault.db,
        signer=vault.audit.signer, clock=vault.clock,
    )  # fmt: skip
    with other.unit(CTX) as s:
        page = other.interactions.timeline(s, cid)
    assert [CHAT, CHAT] == [i.payload["text"] for i in page.items if i.payload]

    _erase(vault, cid)
    with pytest.raises(DecryptionError), other.db.transaction() as s:
        other.keys.get(s, cid)


# -- the tombstone --------------------------------------------------------------


def test_the_id_resolves_to_the_tombstone(vault: Vault, clock: FrozenClock) -> None:
    """After erasure the id reads as status erased with every PII field None, the profile
    emptied, no external ids; lookups by email, phone or external id find nothing; the row
    keeps erased_at and the request id."""
    cid = _create(vault, 2)
    request = uuid.uuid4()
    clock.advance(hours=1)
    result = _erase(vault, cid, request_id=request)
    assert (cid, clock.now, request) == (result.customer_id, result.erased_at, result.request_id)
    with vault.unit(CTX) as s:
        tomb = vault.customers.get(s, cid)
        by_email = vault.customers.find_by_email(s, str(PEOPLE[2].email))
        by_phone = vault.customers.find_by_phone(s, str(PEOPLE[2].phone))
    assert CustomerStatus.ERASED == tomb.status
    assert {f.value: None for f in PiiField} == {f.value: getattr(tomb, f.value) for f in PiiField}
    assert (None, None, [], {}, []) == (
        tomb.locale,
        tomb.tier,
        tomb.tags,
        tomb.attributes,
        tomb.external_ids,
    )
    assert ([], []) == (by_email, by_phone)
    with pytest.raises(CustomerNotFound), vault.unit(CTX) as s:
        vault.customers.find_by_external_id(s, ExternalId("shop", "erase-ext-2"))
    with vault.db.transaction() as s:
        row = s.get_one(CustomerRow, cid)
        assert (clock.now, request) == (row.erased_at, row.erasure_request_id)
        assert (None, None) == (row.email_bidx, row.phone_bidx)


def test_a_record_merged_into_the_erased_one_resolves_to_the_tombstone(vault: Vault) -> None:
    """A duplicate merged into the customer before the erasure follows the merge to the
    tombstone; the purge empties its own clear profile columns too (purge_pending finds
    it even when the customer has no interactions)."""
    keep = _create(vault, 1, interactions=0)
    with vault.unit(CTX) as s:
        dup = vault.customers.create(s, CustomerInput(tags=["dup-tag"], tier="dup-tier")).id
        vault.customers.merge(s, keep, dup)
    _erase(vault, keep)
    assert 0 == vault.erasure.purge_pending(vault.db)
    with vault.unit(CTX) as s:
        assert (keep, CustomerStatus.ERASED) == (
            vault.customers.get(s, dup).id,
            vault.customers.get(s, dup).status,
        )
    with vault.db.transaction() as s:
        row = s.get_one(CustomerRow, dup)
        assert (CustomerStatus.MERGED.value, None, [], {}) == (
            row.status,
            row.tier,
            row.tags,
            row.attributes,
        )


def test_erasure_deletes_consents_objections_external_ids_and_keeps_the_proof(
    vault: Vault,
) -> None:
    """External ids, current consents and objections go; the append-only consent events
    and the data subject request stay (its sealed details dropped with the key)."""
    cid = _create(vault, 3, interactions=0)
    grant_all_consents(vault, cid)
    request = uuid.uuid4()
    with vault.db.transaction() as s:
        s.add(ObjectionRow(customer_id=cid, scope="direct_marketing", objected_at=vault.clock()))
        s.add(_dsr(request, cid, vault.clock()))
    events = _rows(vault, ConsentEventRow, cid)
    states = _rows(vault, ConsentStateRow, cid)
    assert events > 0

    result = _erase(vault, cid, request_id=request)
    assert (1, states, 1) == (
        result.external_ids_deleted,
        result.consent_states_deleted,
        result.objections_deleted,
    )
    counts = [_rows(vault, m, cid) for m in (CustomerExternalIdRow, ConsentStateRow, ObjectionRow)]
    assert [0, 0, 0] == counts
    assert events == _rows(vault, ConsentEventRow, cid)
    with vault.db.transaction() as s:
        dsr = s.get_one(DsrRequestRow, request)
        assert ("verified", None) == (dsr.status, dsr.details_ct)


def test_erasure_drops_segment_memberships_and_metrics(vault: Vault, clock: FrozenClock) -> None:
    """The customer's segment memberships (open and past) and its behaviour rollup are
    dropped at erasure; another member's stay and rollup are untouched."""
    cid, other = _create(vault, 1, interactions=0), _create(vault, 2, interactions=0)
    segment = uuid.uuid4()
    with vault.db.transaction() as s:
        s.add(SegmentRow(id=segment, name="vip", definition={}, created_at=clock.now,
                         updated_at=clock.now))  # fmt: skip
        s.flush()
        for c in (cid, other):
            s.add(SegmentMembershipRow(segment_id=segment, customer_id=c, entered_at=clock.now))
            s.add(_metrics(c, clock.now))
    clock.advance(hours=2)
    _erase(vault, cid)
    with vault.db.transaction() as s:
        rows = s.execute(select(SegmentMembershipRow.customer_id, SegmentMembershipRow.left_at))
        stays = dict(rows.all())
        rollups = set(s.scalars(select(CustomerMetricsRow.customer_id)))
    assert {other: None} == stays
    assert {other} == rollups


def _metrics(cid: uuid.UUID, now: datetime) -> CustomerMetricsRow:
    return CustomerMetricsRow(
        customer_id=cid, computed_at=now, currency="EUR", purchase_count=3,
        lifetime_value_minor=12_000, frequency=3, monetary_minor=12_000, engagement_score=40,
        r_score=3, f_score=3, m_score=4,
    )  # fmt: skip


def _dsr(request: uuid.UUID, cid: uuid.UUID, now: datetime) -> DsrRequestRow:
    return DsrRequestRow(
        id=request, customer_id=cid, type="erasure", status="verified", received_at=now,
        due_at=now + timedelta(days=30), requested_by="subject-1", details_ct=b"\x01sealed",
        result={},
    )  # fmt: skip


def test_erasing_again_returns_the_tombstone(vault: Vault, clock: FrozenClock) -> None:
    """Erasure is idempotent: a second call (a retried request) changes nothing (the key
    keeps its time of destruction), returns the first erasure's time and request id with
    zero counts, and is audited as such."""
    cid = _create(vault, 1)
    first = _erase(vault, cid, request_id=uuid.uuid4())
    clock.advance(days=1)
    again = _erase(vault, cid, request_id=uuid.uuid4())
    assert (first.erased_at, first.request_id, 0, 0, 0, 3) == (
        again.erased_at, again.request_id, again.external_ids_deleted,
        again.consent_states_deleted, again.objections_deleted, again.interactions_pending,
    )  # fmt: skip
    erases = [e for e in _entries(vault) if e["action"] == "customer.erase"]
    assert [None, True] == [e["detail"].get("already_erased") for e in erases]  # type: ignore[attr-defined]
    with vault.db.transaction() as s:
        destroyed = s.scalar(select(DataKeyRow.destroyed_at).where(DataKeyRow.customer_id == cid))
    assert first.erased_at == destroyed


def test_unknown_and_merged_ids_are_refused(vault: Vault) -> None:
    """An unknown id is not found; a record merged into another is refused by name (the
    surviving record is the one to erase)."""
    keep = _create(vault, 1, interactions=0)
    with vault.unit(CTX) as s:
        dup = vault.customers.create(s, CustomerInput(first_name="Dup")).id
        vault.customers.merge(s, keep, dup)
    with pytest.raises(CustomerNotFound):
        _erase(vault, uuid.uuid4())
    with pytest.raises(InvalidInput, match="customerId"):
        _erase(vault, dup)


# -- who may erase, and when not -----------------------------------------------------


def test_a_legal_hold_blocks_erasure_and_the_refusal_is_audited(
    vault: Vault, clock: FrozenClock
) -> None:
    """While a legal hold is active erasure raises LEGAL_HOLD, an access.denied entry names
    the customer (never the hold's reason) and the customer stays readable; once the hold
    is lifted the erasure goes through."""
    cid = _create(vault, 1, interactions=0)
    hold = LegalHoldRow(
        id=uuid.uuid4(), customer_id=cid, reason="Litigation Yourcenarovska v. Shop",
        placed_by="compliance-1", placed_at=clock.now,
    )  # fmt: skip
    with vault.db.transaction() as s:
        s.add(hold)
    with pytest.raises(LegalHoldActive) as refused:
        _erase(vault, cid)
    assert "LEGAL_HOLD" == refused.value.code
    assert "Litigation" not in str(refused.value)
    denied = [e for e in _entries(vault) if e["action"] == "access.denied"]
    assert [(str(cid), "denied")] == [(e["customer"], e["outcome"]) for e in denied]
    assert not any("Litigation" in json.dumps(e) for e in _entries(vault))
    with vault.unit(CTX) as s:
        assert PEOPLE[1].email == vault.customers.get(s, cid).email

    with vault.db.transaction() as s:
        s.execute(
            update(LegalHoldRow)
            .where(LegalHoldRow.id == hold.id)
            .values(lifted_at=clock.now, lifted_by="compliance-1")
        )
    assert cid == _erase(vault, cid).customer_id


def test_a_data_subject_erases_its_own_record_only(vault: Vault) -> None:
    """A data subject (purpose self) may erase itself, not another customer; a support
    agent has no write grant on data requests at all."""
    me = _create(vault, 1, interactions=0)
    other = _create(vault, 2, interactions=0)
    with pytest.raises(AccessDenied), vault.unit(_subject(me)) as s:
        vault.erasure.erase(s, other)
    with pytest.raises(AccessDenied), vault.unit(AGENT) as s:
        vault.erasure.erase(s, other)
    with vault.unit(_subject(me)) as s:
        assert me == vault.erasure.erase(s, me).customer_id
    with vault.unit(CTX) as s:
        assert CustomerStatus.ACTIVE == vault.customers.get(s, other).status


# -- purge -----------------------------------------------------------------------


def test_purge_deletes_the_interactions_in_batches(vault: Vault) -> None:
    """Erasure leaves the interactions (already unreadable) to purge, which deletes them
    batch by batch and touches no other customer's."""
    cid = _create(vault, 1, interactions=25)
    other = _create(vault, 2, interactions=4)
    assert 25 == _erase(vault, cid).interactions_pending
    assert 25 == vault.erasure.purge(vault.db, cid, batch_size=10)
    assert (0, 4) == (_rows(vault, InteractionRow, cid), _rows(vault, InteractionRow, other))
    assert 0 == vault.erasure.purge(vault.db, cid)


def test_erase_counts_pending_interactions_up_to_a_limit(vault: Vault) -> None:
    """To stay fast for a customer with a long history, erase counts the interactions
    left for the purge up to PENDING_COUNT_LIMIT and says when the count stopped there;
    the purge deletes (and reports) them all."""
    cid = _create(vault, 1, interactions=0)
    rows = _interactions(cid, 1, PENDING_COUNT_LIMIT + 1)
    for first in range(0, len(rows), 1000):
        with vault.unit(CTX) as s:
            vault.interactions.record_many(s, rows[first : first + 1000])
    result = _erase(vault, cid)
    assert (PENDING_COUNT_LIMIT, False) == (
        result.interactions_pending,
        result.interactions_pending_exact,
    )
    assert PENDING_COUNT_LIMIT + 1 == vault.erasure.purge(vault.db, cid)


class PowerCut(Exception):
    """The fault injected into the second batch of a purge."""


@pytest.fixture
def cut_second_delete(vault: Vault) -> Iterator[None]:
    """Fail the second DELETE of interactions sent to the database, once."""
    seen: list[str] = []

    def before(conn: Connection, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM INTERACTIONS"):
            seen.append(statement)
            if len(seen) == 2:
                raise PowerCut

    event.listen(vault.db.engine, "before_cursor_execute", before)
    yield
    event.remove(vault.db.engine, "before_cursor_execute", before)


@pytest.mark.usefixtures("cut_second_delete")
def test_an_interrupted_purge_resumes_where_it_stopped(vault: Vault) -> None:
    """Each batch commits on its own: a purge cut during its second batch has deleted the
    first, and running it again deletes exactly the rest."""
    cid = _create(vault, 1, interactions=25)
    _erase(vault, cid)
    with pytest.raises(PowerCut):
        vault.erasure.purge(vault.db, cid, batch_size=10)
    assert 15 == _rows(vault, InteractionRow, cid)
    assert 15 == vault.erasure.purge(vault.db, cid, batch_size=10)
    assert 0 == _rows(vault, InteractionRow, cid)


def test_purge_refuses_a_customer_that_is_not_erased(vault: Vault) -> None:
    """Purge only ever deletes an erased customer's interactions."""
    cid = _create(vault, 1, interactions=2)
    with pytest.raises(InvalidInput, match="erased"):
        vault.erasure.purge(vault.db, cid)
    assert 2 == _rows(vault, InteractionRow, cid)


def test_a_scheduled_purge_runs_after_the_commit(vault: Vault) -> None:
    """schedule_purge registers the purge with the unit of work: the interactions are gone
    once the erasure has committed, and the purge is audited."""
    cid = _create(vault, 1, interactions=5)
    with vault.unit(CTX) as s:
        vault.erasure.erase(s, cid)
        vault.erasure.schedule_purge(s, vault.db, cid)
        pending = select(func.count()).where(InteractionRow.customer_id == cid)
        assert 5 == s.scalar(pending)  # not yet: the unit is still open
    assert 0 == _rows(vault, InteractionRow, cid)
    purges = [e for e in _entries(vault) if e["detail"].get("step") == "purge"]  # type: ignore[attr-defined]
    expected = {"step": "purge", "interactions_deleted": 5, "merged_records": 0}
    assert [expected] == [e["detail"] for e in purges]


def test_purge_pending_finishes_every_erased_customer(vault: Vault) -> None:
    """purge_pending finds each erased customer that still has interactions (a purge that
    never ran or stopped) and purges it; live customers are left alone."""
    a, b = _create(vault, 1, interactions=3), _create(vault, 2, interactions=4)
    live = _create(vault, 3, interactions=2)
    _erase(vault, a)
    _erase(vault, b)
    assert 7 == vault.erasure.purge_pending(vault.db)
    assert [0, 0, 2] == [_rows(vault, InteractionRow, c) for c in (a, b, live)]
    assert 0 == vault.erasure.purge_pending(vault.db)


# -- audit and logs ------------------------------------------------------------------


def test_the_audit_log_still_verifies_and_holds_no_pii(vault: Vault) -> None:
    """The erasure is one customer.erase entry listing every PII field as erased with
    counts and the request id; no entry holds a PII or clear value of the customer; the
    sequenced, signed log exports and verifies offline after erasure and purge."""
    cid = _create(vault, 2, interactions=3)
    with vault.unit(AGENT) as s:
        vault.customers.get(s, cid)
    request = uuid.uuid4()
    _erase(vault, cid, request_id=request)
    vault.erasure.purge(vault.db, cid)
    vault.audit.sequence(vault.db)
    _verify(vault, _export(vault))

    erase = next(e for e in _entries(vault) if e["action"] == "customer.erase")
    assert {f.value: "erased" for f in PiiField} == erase["fields"]
    assert {
        "external_ids": 1, "consent_states": 0, "objections": 0, "interactions_pending": 3,
        "interactions_pending_exact": True, "request": str(request),
    } == erase["detail"]  # fmt: skip
    dumped = json.dumps(_entries(vault), ensure_ascii=False).encode()
    assert [] == _found(dumped, _pii_values(2) + _clear_values(2))


def test_no_pii_reaches_a_log_line(vault: Vault) -> None:
    """Erasing and purging log ids and counts only: none of the customer's values."""
    with structlog.testing.capture_logs() as logs:
        cid = _create(vault, 3, interactions=2)
        _erase(vault, cid)
        vault.erasure.purge(vault.db, cid)
    events = [e["event"] for e in logs]
    assert {"customer.erased", "customer.purged"} <= set(events)
    dumped = repr(logs).encode()
    assert [] == _found(dumped, _pii_values(3) + _clear_values(3))


def test_erasure_needs_a_unit_of_work(vault: Vault) -> None:
    """Like every domain operation, erasure refuses a session opened outside Vault.unit."""
    cid = _create(vault, 1, interactions=0)
    with pytest.raises(AccessContextMissing), Session(vault.db.engine) as s:
        vault.erasure.erase(s, cid)
