"""Retention: periods per interaction type and category, dry run, legal holds, audit.

The edge is decided and held here: a record is kept while ``occurred_at >= now - N
days`` and deleted once it is older, to the microsecond.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import ColumnElement, Uuid, bindparam, func, select, text, update

from audit.entries import AuditAction, AuditEntry, Outcome
from tests.conftest import CTX, FrozenClock, grant_all_consents
from vault.config import Settings
from vault.customers import CustomerInput
from vault.interactions import InteractionInput
from vault.privacy.retention import (
    BUILT_IN,
    RetentionCategory,
    RetentionConfigError,
    RetentionPolicy,
    RetentionService,
    load_policy,
    parse_policy,
    policy_path,
)
from vault.runtime import Vault
from vault.sign_in import sign_in_context
from vault.storage.models import (
    AuditEntryRow,
    Base,
    CustomerRow,
    DataKeyRow,
    DsrEventRow,
    DsrRequestRow,
    InteractionRow,
    LegalHoldRow,
    PageSessionRow,
    SegmentMembershipRow,
    SegmentRow,
    SignInCodeRow,
)
from vault.types import CustomerStatus, InteractionType

NAME = "Zoë Quillfeather-Ostrander"
SECRET = "my parcel never arrived, call me at +44 20 7946 0958"

POLICY = """
[interactions]
default = 0
page_view = 10
purchase = 100
chat_message = 50

[categories]
interaction_payload = 20
dsr_requests = 30
tombstones = 0
"""


def _policy(text_: str = POLICY, **changes: int) -> RetentionPolicy:
    for key, days in changes.items():
        text_ = text_.replace(f"\n{key} = ", f"\n{key} = {days}  # was ", 1)
    return parse_policy(text_, source="test.toml")


def _customer(vault: Vault, name: str = NAME) -> uuid.UUID:
    with vault.unit(CTX) as s:
        return vault.customers.create(s, CustomerInput(first_name=name)).id


def _record(
    vault: Vault, cid: uuid.UUID, kind: str, at: datetime, payload: str | None = None
) -> None:
    money = {"amount": Decimal("9.99"), "currency": "EUR"} if kind in {"purchase", "refund"} else {}
    item = InteractionInput(
        customer_id=cid,
        channel="web",
        type=kind,
        occurred_at=at,
        payload=None if payload is None else {"text": payload},
        **money,  # type: ignore[arg-type]
    )
    with vault.unit(CTX) as s:
        vault.interactions.record_many(s, [item])


def _times(vault: Vault, cid: uuid.UUID | None = None) -> list[datetime]:
    with vault.db.transaction() as s:
        stmt = select(InteractionRow.occurred_at).order_by(InteractionRow.occurred_at)
        if cid is not None:
            stmt = stmt.where(InteractionRow.customer_id == cid)
        return list(s.scalars(stmt))


def _payloads(vault: Vault, cid: uuid.UUID) -> list[tuple[datetime, object]]:
    """(occurred_at, payload) of a customer's timeline, read through the domain."""
    with vault.unit(CTX) as s:
        page = vault.interactions.timeline(s, cid, first=100)
    return sorted((i.occurred_at, i.payload) for i in page.items)


def _hold(vault: Vault, cid: uuid.UUID, *, lifted: bool = False) -> None:
    now = vault.clock()
    with vault.db.transaction() as s:
        s.add(
            LegalHoldRow(
                id=uuid.uuid4(),
                customer_id=cid,
                reason="litigation 2026-17",
                placed_by="system:test",
                placed_at=now - timedelta(days=400),
                lifted_by="system:test" if lifted else None,
                lifted_at=now - timedelta(days=1) if lifted else None,
            )
        )


def _request(
    vault: Vault, cid: uuid.UUID, *, status: str, closed: datetime, events: int = 2
) -> uuid.UUID:
    rid = uuid.uuid4()
    received = closed - timedelta(days=5)
    with vault.db.transaction() as s:
        s.add(
            DsrRequestRow(
                id=rid,
                customer_id=cid,
                type="access",
                status=status,
                received_at=received,
                due_at=received + timedelta(days=30),
                completed_at=closed if status == "completed" else None,
                requested_by="system:test",
                result={},
            )
        )
        s.flush()
        for n in range(events):
            at = closed if n == events - 1 else received
            s.add(DsrEventRow(request_id=rid, at=at, status=status, actor="system:test"))
    return rid


def _erase_row(vault: Vault, cid: uuid.UUID, at: datetime) -> None:
    """Leave the customer as erasure leaves it: a tombstone (status, time), no key."""
    with vault.db.transaction() as s:
        s.execute(
            update(CustomerRow)
            .where(CustomerRow.id == cid)
            .values(status=CustomerStatus.ERASED.value, erased_at=at, first_name_ct=None)
        )
        s.execute(
            update(DataKeyRow)
            .where(DataKeyRow.customer_id == cid)
            .values(wrapped_key=None, kek_version=None, destroyed_at=at)
        )


def _count(vault: Vault, model: type[Base], *where: ColumnElement[bool]) -> int:
    with vault.db.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _retention_entries(vault: Vault) -> list[AuditEntry]:
    with vault.db.transaction() as s:
        rows = s.scalars(
            select(AuditEntryRow.canonical)
            .where(AuditEntryRow.action == AuditAction.RETENTION_RUN.value)
            .order_by(AuditEntryRow.id)
        )
        return [AuditEntry.from_canonical(r) for r in rows]


# -- the edge ---------------------------------------------------------------------


def test_an_interaction_exactly_n_days_old_is_kept(vault: Vault, clock: FrozenClock) -> None:
    """page_view kept 10 days: one exactly 10 days old stays, one a microsecond older goes,
    younger ones stay."""
    cid = _customer(vault)
    now = clock.now
    edge = now - timedelta(days=10)
    for at in (edge - timedelta(microseconds=1), edge, now - timedelta(days=9)):
        _record(vault, cid, "page_view", at)
    report = vault.retention.run(vault.db, dry_run=False, now=now, policy=_policy())
    assert dict(report.counts) == {"deleted.page_view": 1}
    assert [edge, now - timedelta(days=9)] == _times(vault)


def test_each_type_has_its_own_period_and_zero_keeps_forever(
    vault: Vault, clock: FrozenClock
) -> None:
    """page_view (10 days), purchase (100) and chat_message (50) expire on their own
    periods; a type under ``default = 0`` is kept however old."""
    cid = _customer(vault)
    now = clock.now
    for kind, days in [
        ("page_view", 11), ("page_view", 9), ("purchase", 101), ("purchase", 99),
        ("chat_message", 51), ("chat_message", 49), ("call", 5000),
    ]:  # fmt: skip
        _record(vault, cid, kind, now - timedelta(days=days))
    report = vault.retention.run(vault.db, dry_run=False, now=now, policy=_policy())
    expected = {"deleted.page_view": 1, "deleted.purchase": 1, "deleted.chat_message": 1}
    assert expected == dict(report.counts)
    assert [now - timedelta(days=d) for d in (5000, 99, 49, 9)] == _times(vault)


# -- payloads -----------------------------------------------------------------------


def test_payloads_are_dropped_and_the_rows_stay(vault: Vault, clock: FrozenClock) -> None:
    """Payloads older than interaction_payload (20 days) are dropped while the row stays;
    a row past its type's own period is deleted (counted there, not as a dropped payload);
    the payload exactly 20 days old stays."""
    cid = _customer(vault)
    now = clock.now
    edge = now - timedelta(days=20)
    for at in (
        now - timedelta(days=120),  # purchase past 100 days: row deleted
        now - timedelta(days=60),  # payload dropped
        edge - timedelta(microseconds=1),  # payload dropped
        edge,  # kept whole
        now - timedelta(days=1),  # kept whole
    ):
        _record(vault, cid, "purchase", at, payload=SECRET)
    report = vault.retention.run(vault.db, dry_run=False, now=now, policy=_policy())
    assert dict(report.counts) == {"deleted.purchase": 1, "dropped.interaction_payload": 2}
    expected = [
        (now - timedelta(days=60), None),
        (edge - timedelta(microseconds=1), None),
        (edge, {"text": SECRET}),
        (now - timedelta(days=1), {"text": SECRET}),
    ]
    assert expected == _payloads(vault, cid)


# -- dry run ------------------------------------------------------------------------


def _mixed_data(vault: Vault, clock: FrozenClock) -> dict[str, uuid.UUID]:
    now = clock.now
    free, held, lifted = _customer(vault), _customer(vault, "Held"), _customer(vault, "Lifted")
    for cid in (free, held, lifted):
        for days in (3, 15, 40, 400):
            _record(vault, cid, "page_view", now - timedelta(days=days), payload=SECRET)
            _record(vault, cid, "purchase", now - timedelta(days=days), payload=SECRET)
        _request(vault, cid, status="completed", closed=now - timedelta(days=45))
        _request(vault, cid, status="rejected", closed=now - timedelta(days=31), events=3)
        _request(vault, cid, status="completed", closed=now - timedelta(days=10))
        _request(vault, cid, status="in_progress", closed=now - timedelta(days=90))
    _hold(vault, held)
    _hold(vault, lifted, lifted=True)
    return {"free": free, "held": held, "lifted": lifted}


def _snapshot(vault: Vault) -> dict[str, object]:
    with vault.db.transaction() as s:
        return {
            "interactions": s.execute(
                select(InteractionRow.id, InteractionRow.payload_ct).order_by(InteractionRow.id)
            ).all(),
            "requests": list(s.scalars(select(DsrRequestRow.id).order_by(DsrRequestRow.id))),
            "events": list(s.scalars(select(DsrEventRow.id).order_by(DsrEventRow.id))),
            "customers": s.execute(select(CustomerRow.id, CustomerRow.status)).all(),
        }


def test_dry_run_changes_nothing_and_counts_what_the_run_then_does(
    vault: Vault, clock: FrozenClock
) -> None:
    """A dry run leaves every table as it was and reports the very counts a real run then
    reports; a second real run finds nothing left to do."""
    _mixed_data(vault, clock)
    before = _snapshot(vault)
    dry = vault.retention.run(vault.db, dry_run=True, now=clock.now, policy=_policy())
    assert before == _snapshot(vault)
    real = vault.retention.run(vault.db, dry_run=False, now=clock.now, policy=_policy())
    expected = {  # per customer not held, and for the held one:
        "deleted.page_view": 6,  # 15, 40 and 400 days old (10 days kept)
        "held.page_view": 3,
        "deleted.purchase": 2,  # 400 days old (100 days kept)
        "held.purchase": 1,
        "dropped.interaction_payload": 2,  # the purchase 40 days old (payloads: 20 days)
        "held.interaction_payload": 1,
        "deleted.dsr_requests": 4,  # completed 45 and rejected 31 days ago (30 days kept)
        "deleted.dsr_events": 10,  # 2 + 3 per customer
        "held.dsr_requests": 2,
    }
    assert expected == dict(dry.counts)
    assert dict(dry.counts) == dict(real.counts)
    assert (dry.dry_run, real.dry_run) == (True, False)
    again = vault.retention.run(vault.db, dry_run=False, now=clock.now, policy=_policy())
    held_only = {k: v for k, v in expected.items() if k.startswith("held.")}
    assert held_only == dict(again.counts)


def test_customers_under_a_legal_hold_keep_everything(vault: Vault, clock: FrozenClock) -> None:
    """An active hold keeps the customer's expired interactions, payloads and closed
    requests (counted as held); a lifted hold protects nothing."""
    ids = _mixed_data(vault, clock)
    vault.retention.run(vault.db, dry_run=False, now=clock.now, policy=_policy())
    now = clock.now
    every_time = sorted([now - timedelta(days=d) for d in (3, 15, 40, 400)] * 2)
    assert every_time == _times(vault, ids["held"])
    lifted = [now - timedelta(days=d) for d in (40, 15, 3, 3)]  # purchases 40, 15; both at 3
    assert lifted == _times(vault, ids["lifted"])
    held_payloads = [p for _, p in _payloads(vault, ids["held"])]
    assert held_payloads == [{"text": SECRET}] * 8
    requests_left = {
        cid: _count(vault, DsrRequestRow, DsrRequestRow.customer_id == cid) for cid in ids.values()
    }
    assert {ids["free"]: 2, ids["held"]: 4, ids["lifted"]: 2} == requests_left


# -- data subject requests ------------------------------------------------------------


def test_closed_requests_expire_from_their_closing_with_their_history(
    vault: Vault, clock: FrozenClock
) -> None:
    """A completed request closed more than 30 days ago goes with its events; one closed
    exactly 30 days ago stays; a rejected one counts from its last event; open requests
    stay however old."""
    cid = _customer(vault)
    now = clock.now
    edge = now - timedelta(days=30)
    gone = _request(vault, cid, status="completed", closed=edge - timedelta(seconds=1))
    rejected = _request(vault, cid, status="rejected", closed=edge - timedelta(seconds=1))
    stays = _request(vault, cid, status="completed", closed=edge)
    recent_reject = _request(vault, cid, status="rejected", closed=now - timedelta(days=2))
    open_ = _request(vault, cid, status="verified", closed=now - timedelta(days=900))
    report = vault.retention.run(vault.db, dry_run=False, now=now, policy=_policy())
    assert dict(report.counts) == {"deleted.dsr_requests": 2, "deleted.dsr_events": 4}
    with vault.db.transaction() as s:
        left = set(s.scalars(select(DsrRequestRow.id)))
        history = set(s.scalars(select(DsrEventRow.request_id)))
    assert {stays, recent_reject, open_} == left
    assert {stays, recent_reject, open_} == history
    assert gone not in left
    assert rejected not in left


# -- tombstones -------------------------------------------------------------------------


def test_tombstones_are_kept_forever_by_default(vault: Vault, clock: FrozenClock) -> None:
    """With ``tombstones = 0`` an erased customer's tombstone stays, however old."""
    cid = _customer(vault)
    _erase_row(vault, cid, clock.now - timedelta(days=10_000))
    report = vault.retention.run(vault.db, dry_run=False, now=clock.now, policy=_policy())
    assert dict(report.counts) == {}
    assert _count(vault, CustomerRow, CustomerRow.id == cid) == 1


def test_expired_tombstones_go_unless_held_or_proof_of_consent_refers_to_them(
    vault: Vault, clock: FrozenClock
) -> None:
    """With ``tombstones = 30``: an old tombstone is deleted with its leftovers (data key
    row, interactions, requests, segment stays); one erased exactly 30 days ago stays; a
    held one stays (held); one with consent events, which the database keeps forever,
    stays (kept); active customers are never touched."""
    now = clock.now
    old, edge, held, consented, active = (_customer(vault) for _ in range(5))
    grant_all_consents(vault, consented)
    _record(vault, old, "call", now - timedelta(days=1))
    _request(vault, old, status="completed", closed=now - timedelta(days=2))
    with vault.db.transaction() as s:
        segment = uuid.uuid4()
        s.add(
            SegmentRow(
                id=segment, name="vip", definition={}, created_at=now, updated_at=now, version=1
            )
        )
        s.flush()
        for cid in (old, edge):
            stay = now - timedelta(days=90)
            s.add(SegmentMembershipRow(segment_id=segment, customer_id=cid, entered_at=stay))
    for cid in (old, held, consented):
        _erase_row(vault, cid, now - timedelta(days=31))
    _erase_row(vault, edge, now - timedelta(days=30))
    _hold(vault, held)
    policy = _policy(tombstones=30)
    dry = vault.retention.run(vault.db, dry_run=True, now=now, policy=policy)
    real = vault.retention.run(vault.db, dry_run=False, now=now, policy=policy)
    expected = {"deleted.tombstones": 1, "held.tombstones": 1, "kept.tombstones": 1}
    assert (expected, expected) == (dict(dry.counts), dict(real.counts))
    with vault.db.transaction() as s:
        left = set(s.scalars(select(CustomerRow.id)))
        keys = set(s.scalars(select(DataKeyRow.customer_id)))
    assert {edge, held, consented, active} == left
    assert {edge, held, consented, active} == keys
    assert _times(vault, old) == []
    with vault.db.transaction() as s:
        stays = set(s.scalars(select(SegmentMembershipRow.customer_id)))
    assert stays == {edge}


def test_a_tombstone_a_newer_table_still_refers_to_is_kept_whole(
    vault: Vault, clock: FrozenClock
) -> None:
    """A table this module does not know (one a later migration adds) that refers to an
    expired tombstone makes the database refuse its deletion: the tombstone is kept (and
    counted so) with every row it had, and the other expired tombstones still go."""
    now = clock.now
    pinned, free = _customer(vault), _customer(vault)
    for cid in (pinned, free):
        _record(vault, cid, "call", now - timedelta(days=1))
        _erase_row(vault, cid, now - timedelta(days=31))
    with vault.db.transaction() as s:
        s.execute(
            text(
                "CREATE TABLE later_memberships (customer_id "
                + ("UUID" if vault.db.dialect == "postgresql" else "CHAR(32)")
                + " NOT NULL REFERENCES customers (id))"
            )
        )
        insert = text("INSERT INTO later_memberships VALUES (:c)")
        s.execute(insert.bindparams(bindparam("c", type_=Uuid())), {"c": pinned})
    report = vault.retention.run(vault.db, dry_run=False, now=now, policy=_policy(tombstones=30))
    assert dict(report.counts) == {"deleted.tombstones": 1, "kept.tombstones": 1}
    assert _count(vault, CustomerRow) == 1
    assert _count(vault, DataKeyRow, DataKeyRow.customer_id == pinned) == 1
    assert len(_times(vault, pinned)) == 1


# -- batches ------------------------------------------------------------------------------


def test_batches_walk_past_held_rows_and_equal_timestamps(
    vault: Vault, settings: Settings, clock: FrozenClock
) -> None:
    """With batches of 3: 8 expired rows sharing one timestamp, 5 more spread out and a
    held customer's rows in between are all handled; payload drops batch the same way."""
    service = RetentionService(settings, vault.audit, batch_size=3)
    now = clock.now
    free, held = _customer(vault), _customer(vault, "Held")
    _hold(vault, held)
    same = now - timedelta(days=30)
    for _ in range(8):
        _record(vault, free, "page_view", same, payload=SECRET)
    for n in range(5):
        _record(vault, held, "page_view", same - timedelta(hours=n), payload=SECRET)
        _record(vault, free, "page_view", same - timedelta(hours=n, minutes=1))
        _record(vault, free, "chat_message", now - timedelta(days=30 + n), payload=SECRET)
    dry = service.run(vault.db, dry_run=True, now=now, policy=_policy())
    report = service.run(vault.db, dry_run=False, now=now, policy=_policy())
    expected = {
        "deleted.page_view": 13,
        "held.page_view": 5,
        "dropped.interaction_payload": 5,
    }
    assert (expected, expected) == (dict(dry.counts), dict(report.counts))
    assert len(_times(vault, held)) == 5


def test_batches_are_found_through_the_type_and_time_index(vault: Vault) -> None:
    """The query that picks a batch of expired interactions reads
    ix_interactions_segment_scan by its (type, occurred_at) prefix (the plan names it on
    SQLite and PostgreSQL)."""
    service = vault.retention
    expired = (InteractionRow.type == "page_view") & (
        InteractionRow.occurred_at < func.current_timestamp()
    )
    stmt = service.batch_query(expired)
    with vault.db.transaction() as s:
        conn = s.connection()
        sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
        if vault.db.dialect == "postgresql":
            conn.execute(text("SET LOCAL enable_seqscan = off"))
            conn.execute(text("SET LOCAL enable_sort = off"))
            plan = "\n".join(str(r[0]) for r in conn.execute(text("EXPLAIN " + sql)))
        else:
            plan = "\n".join(str(r[-1]) for r in conn.execute(text("EXPLAIN QUERY PLAN " + sql)))
    assert "ix_interactions_segment_scan" in plan


# -- audit -------------------------------------------------------------------------------


def test_one_audit_entry_per_run_with_counts_and_no_pii(vault: Vault, clock: FrozenClock) -> None:
    """Each run (dry or real) writes one retention.run entry by system:retention: its
    detail is the report's counts and the dry-run flag, and it names no customer and holds
    no PII value."""
    ids = _mixed_data(vault, clock)
    dry = vault.retention.run(vault.db, dry_run=True, now=clock.now, policy=_policy())
    real = vault.retention.run(vault.db, dry_run=False, now=clock.now, policy=_policy())
    entries = _retention_entries(vault)
    assert [dry.detail(), real.detail()] == [dict(e.detail) for e in entries]
    assert [e.detail["dry_run"] for e in entries] == [True, False]
    assert {("system:retention", "system", None, Outcome.SUCCESS, "{}")} == {
        (e.actor, e.role, e.customer_id, e.outcome, json.dumps(e.fields)) for e in entries
    }
    assert len(real.counts) == 9
    assert all(type(v) is int for e in entries for k, v in e.detail.items() if k != "dry_run")
    raw = b"".join(e.canonical() for e in entries).decode("utf-8")
    for value in (NAME, SECRET, "Held", "litigation", *(str(c) for c in ids.values())):
        assert value not in raw


def test_a_run_that_breaks_part_way_is_audited_as_failed(vault: Vault, clock: FrozenClock) -> None:
    """A run that breaks after deleting page views (a purchase period too large for a date,
    which only a hand-built policy can hold) writes its entry with outcome failed and the
    counts done so far; a naive ``now`` is refused before anything happens."""
    cid = _customer(vault)
    _record(vault, cid, "page_view", clock.now - timedelta(days=11))
    broken = RetentionPolicy(
        default_days=0,
        interactions={InteractionType.PAGE_VIEW: 10, InteractionType.PURCHASE: 10**9},
        categories=dict.fromkeys(RetentionCategory, 0),
    )
    with pytest.raises(OverflowError):
        vault.retention.run(vault.db, dry_run=False, now=clock.now, policy=broken)
    with pytest.raises(ValueError, match="time-zone-aware"):
        vault.retention.run(
            vault.db, dry_run=False, now=clock.now.replace(tzinfo=None), policy=_policy()
        )
    entries = _retention_entries(vault)
    assert [(e.outcome, dict(e.detail)) for e in entries] == [
        (Outcome.FAILED, {"dry_run": False, "deleted.page_view": 1})
    ]


# -- the policy file ----------------------------------------------------------------------


def test_built_in_policy() -> None:
    """Without a file the shipped default applies: page views and email opens 395 days,
    chat 730, purchases and refunds 3650, the rest 1095; payloads 365, closed requests
    1095, tombstones forever."""
    policy = load_policy(None)
    assert policy.source == BUILT_IN
    days = {k.value: policy.days_for(k) for k in InteractionType}
    assert (
        days["page_view"], days["email_open"], days["chat_message"], days["purchase"],
        days["refund"], days["cart_add"],
    ) == (395, 395, 730, 3650, 3650, 1095)  # fmt: skip
    categories = {c.value: d for c, d in policy.categories.items()}
    assert categories == {
        "interaction_payload": 365,
        "dsr_requests": 1095,
        "tombstones": 0,
        "inactive_customers": 0,
        "consent_events": 0,
    }


def test_policy_file_comes_from_the_setting_then_the_data_dir(tmp_path: Path) -> None:
    """CVAULT_RETENTION_FILE wins; else $CVAULT_DATA_DIR/retention.toml when it exists;
    else the built-in default; a named file that is missing is an error, not a fallback."""
    env = {"CVAULT_DATA_DIR": str(tmp_path)}
    assert policy_path(Settings.from_env(env)) is None
    local = tmp_path / "retention.toml"
    local.write_text(POLICY, encoding="utf-8")
    assert local == policy_path(Settings.from_env(env))
    assert load_policy(local).days_for(InteractionType.PAGE_VIEW) == 10
    named = tmp_path / "elsewhere.toml"
    chosen = Settings.from_env({**env, "CVAULT_RETENTION_FILE": str(named)})
    assert named == policy_path(chosen)
    with pytest.raises(RetentionConfigError, match=r"elsewhere\.toml: cannot be read"):
        load_policy(policy_path(chosen))


BAD = [
    ("page_vew = 5", "page_view = 10", "interactions.page_vew", 4, "is not an interaction type"),
    ("payloads = 5", "dsr_requests = 30", "categories.payloads", 10, "is not a data category"),
    ("page_view = -3", "page_view = 10", "interactions.page_view", 4, "must be between 0"),
    ('page_view = "10"', "page_view = 10", "interactions.page_view", 4, "must be a whole number"),
    ("page_view = 1.5", "page_view = 10", "interactions.page_view", 4, "must be a whole number"),
    ("page_view = true", "page_view = 10", "interactions.page_view", 4, "must be a whole number"),
    ("tombstones = 99999", "tombstones = 0", "categories.tombstones", 11, "must be between 0"),
    ("", "default = 0", "interactions.default", 2, "is missing"),
    ("", "tombstones = 0", "categories.tombstones", 8, "is missing"),
]


@pytest.mark.parametrize(("new", "old", "key", "line", "rule"), BAD)
def test_bad_policy_names_the_key_and_line(
    new: str, old: str, key: str, line: int, rule: str
) -> None:
    """An unknown type or category, a value that is not a whole number of days (or is
    negative, or absurdly large), or a missing key raises RetentionConfigError naming
    the key and its line, and never echoing the value."""
    with pytest.raises(RetentionConfigError) as info:
        parse_policy(POLICY.replace(old, new, 1), source="retention.toml")
    error = info.value
    assert (key, line) == (error.key, error.line)
    assert str(error).startswith(f"retention.toml:{line}: retention key '{key}' {rule}")
    for value in ("-3", "1.5", "99999", '"10"'):
        if value in new:
            assert value not in str(error)


def test_bad_toml_and_unknown_sections_are_refused() -> None:
    """A file that is not TOML names the position; an unknown section is named."""
    with pytest.raises(RetentionConfigError, match=r"not valid TOML: .*line 4"):
        parse_policy(POLICY.replace("page_view = 10", "page_view = = 10"), source="r.toml")
    with pytest.raises(RetentionConfigError, match=r"r\.toml:13: retention key 'segments'"):
        parse_policy(POLICY + "\n[segments]\nx = 1\n", source="r.toml")
    with pytest.raises(RetentionConfigError, match=r"retention key 'categories' is missing"):
        parse_policy(POLICY.split("[categories]", maxsplit=1)[0], source="r.toml")


def test_zero_means_keep_forever_and_cutoffs_are_n_days_back(clock: FrozenClock) -> None:
    """``cutoff(now, 0)`` is None (keep forever); otherwise exactly N days before now."""
    policy = _policy()
    assert policy.cutoff(clock.now, 0) is None
    assert clock.now - timedelta(days=10) == policy.cutoff(clock.now, 10)
    assert policy.days_of(RetentionCategory.INTERACTION_PAYLOAD) == 20
    assert repr(policy) == "RetentionPolicy(source='test.toml')"


def test_dead_sign_in_codes_and_page_sessions_go_a_day_after_they_died(
    vault: Vault, clock: FrozenClock
) -> None:
    """A code a day past its expiry and a session a day after its sign-out go; a live
    session stays until a day past its own expiry; a dry run only counts."""
    with vault.unit(CTX) as s:
        cid = vault.customers.create(s, CustomerInput(email="zoe@example.com")).id
    with vault.unit(sign_in_context("client-a")) as s:
        assert vault.sign_in.request(s, "email", "zoe@example.com", browser="b") is not None
        signed_out = vault.page_sessions.open_for_customer(s, cid).session
        vault.page_sessions.open_for_customer(s, cid)
    with vault.unit(signed_out.context("self")) as s:
        vault.page_sessions.revoke(s, signed_out)

    def run(*, dry_run: bool = False) -> dict[str, int]:
        report = vault.retention.run(vault.db, dry_run=dry_run, now=clock.now, policy=_policy())
        return dict(report.counts)

    assert run() == {}
    clock.advance(days=1, minutes=11)  # the code expired at +10 min, the sign-out was at 0
    dead = {"deleted.sign_in_codes": 1, "deleted.page_sessions": 1}
    assert (run(dry_run=True), _count(vault, PageSessionRow)) == (dead, 2)
    assert (run(), _count(vault, PageSessionRow), _count(vault, SignInCodeRow)) == (dead, 1, 0)
    clock.advance(days=1)  # the live one expired 12 hours after it opened
    assert (run(), _count(vault, PageSessionRow)) == ({"deleted.page_sessions": 1}, 0)
