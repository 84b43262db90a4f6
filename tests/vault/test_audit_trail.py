"""The audit trail: written by the domain layer, append-only, ordered, signed, verifiable."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from api.graphql.schema import build_schema
from api.graphql.trusted import schema_checker
from audit.checkpoint import open_checkpoint
from audit.entries import AuditAction
from audit.merkle import root
from audit.verify import VerificationError, verify_lines
from tests.conftest import CTX, grant_all_consents
from vault.audit_trail.export import AuditFilter, export_audit
from vault.authorization.context import AccessContext, AccessContextMissing, Actor
from vault.crypto.signing import ed25519_verify
from vault.customers import CustomerInput, CustomerPatch
from vault.documents import document_sha256, parse_manifest
from vault.interactions import InteractionInput
from vault.runtime import Vault
from vault.storage.models import (
    APPEND_ONLY_TABLES,
    AuditEntryRow,
    AuditLogRow,
    AuditPendingRow,
    CustomerRow,
)

AGENT = AccessContext(
    actor=Actor(subject="agent-7", role="support_agent"), purpose="support", request_id="req-1"
)
INGEST = AccessContext(
    actor=Actor(subject="shop-sync", role="ingest_service"), purpose="service_delivery"
)
PII = {
    "email": "audit.canary@example.com",
    "phone": "+33612345678",
    "first_name": "\u067e\u0631\u0648\u06cc\u0646",
    "last_name": "Canaryson",
    "address": "9 Rue du Canari, Lyon",
}


def _entries(vault: Vault) -> list[dict[str, object]]:
    with vault.db.transaction() as s:
        rows = s.scalars(select(AuditEntryRow.canonical).order_by(AuditEntryRow.id)).all()
    return [json.loads(r) for r in rows]


def _export(vault: Vault, filter_: AuditFilter | None = None, previous: str | None = None) -> str:
    buffer = io.StringIO()
    export_audit(vault, buffer, context=CTX, filter_=filter_, previous_note=previous)
    return buffer.getvalue()


def _verify(vault: Vault, exported: str, previous: str | None = None) -> None:
    verify_lines(
        exported.splitlines(keepends=True),
        trusted_vkey=vault.audit.public_vkey,
        verify=ed25519_verify,
        previous_note=previous,
    )


def _activity(vault: Vault, n: int = 3) -> list[uuid.UUID]:
    ids = []
    for i in range(n):
        email = f"p{i}.{uuid.uuid4().hex[:8]}@ex.com"  # one customer per address
        with vault.unit(INGEST) as s:
            c = vault.customers.create(s, CustomerInput(first_name=f"P{i}", email=email))
        with vault.unit(AGENT) as s:
            vault.customers.get(s, c.id)
            ids.append(c.id)
        vault.audit.sequence(vault.db)  # as the server's background sequencer would
    return ids


def test_services_refuse_a_unit_without_an_access_context(vault: Vault) -> None:
    """Customer data is reachable only inside Vault.unit(context): a bare transaction is
    refused before any work, so no edge can skip the audit trail."""
    with vault.unit(CTX) as s:
        c = vault.customers.create(s, CustomerInput(first_name="A"))
    calls: list[Callable[[Session], object]] = [
        lambda s: vault.customers.create(s, CustomerInput(first_name="B")),
        lambda s: vault.customers.get(s, c.id),
        lambda s: vault.customers.find_by_email(s, "a@example.com"),
        lambda s: vault.customers.update(s, c.id, CustomerPatch(tier="gold")),
        lambda s: vault.interactions.timeline(s, c.id),
        lambda s: vault.interactions.record_many(
            s,
            [
                InteractionInput(
                    customer_id=c.id,
                    channel="web",
                    type="page_view",
                    occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
                )
            ],
        ),
    ]
    refused = 0
    for call in calls:
        with pytest.raises(AccessContextMissing), vault.db.transaction() as s:
            call(s)
        refused += 1
    assert refused == len(calls)


def test_reads_of_one_customer_in_one_request_make_one_entry(vault: Vault) -> None:
    """Reading a customer three times and its timeline once in a unit of work leaves one
    pii.access entry, with every field and resource read and how each resolved."""
    with vault.unit(CTX) as s:
        c = vault.customers.create(s, CustomerInput(first_name="Ann"))
    with vault.unit(AGENT) as s:
        for _ in range(3):
            vault.customers.get(s, c.id)
        vault.interactions.timeline(s, c.id)
    reads = [e for e in _entries(vault) if e["request"] == "req-1"]
    assert [str(e["action"]) for e in reads] == ["pii.access"]
    pii_read = reads[0]
    assert pii_read["customer"] == str(c.id)
    assert pii_read["fields"] == {
        "address": "masked", "birth_date": "hidden", "email": "masked",
        "first_name": "clear", "last_name": "clear", "phone": "masked",
        "locale": "clear", "tier": "clear", "tags": "clear", "attributes": "clear",
        "undeclared_attributes": "hidden", "attr:anniversary": "masked",
        "attr:household_size": "masked", "attr:loyalty_number": "masked",
        "attr:nickname": "masked", "interactions": "clear", "interaction_payload": "hidden",
    }  # fmt: skip
    assert (pii_read["actor"], pii_read["role"], pii_read["purpose"]) == (
        "agent-7",
        "support_agent",
        "support",
    )


def test_every_write_is_recorded_and_no_entry_holds_pii(vault: Vault) -> None:
    """Create, update, lookup, ingest and merge each leave entries naming ids and field
    names only; no PII value appears in any entry's bytes."""
    with vault.unit(INGEST) as s:
        a = vault.customers.create(s, CustomerInput(**PII))  # type: ignore[arg-type]
        b = vault.customers.create(s, CustomerInput(email="second." + PII["email"]))
        vault.customers.update(s, a.id, CustomerPatch(last_name=PII["last_name"] + "x", phone=None))
        vault.customers.find_by_email(s, PII["email"])
        vault.interactions.record_many(
            s,
            [
                InteractionInput(
                    customer_id=a.id, channel="chat", type="chat_message",
                    occurred_at=datetime(2026, 1, 1, tzinfo=UTC), payload={"text": PII["address"]},
                )
            ],
        )  # fmt: skip
        vault.customers.merge(s, a.id, b.id)
    entries = _entries(vault)
    actions = [e["action"] for e in entries]
    for expected in ("customer.create", "customer.update", "customer.lookup",
                     "interactions.record", "customer.merge"):  # fmt: skip
        assert expected in actions
    update = next(e for e in entries if e["action"] == "customer.update")
    assert update["fields"] == {"last_name": "written", "phone": "cleared"}
    with vault.db.transaction() as s:
        raw = b"".join(s.scalars(select(AuditEntryRow.canonical)).all())
    leaked = [v for v in PII.values() if v.encode() in raw or v.lower().encode() in raw.lower()]
    assert leaked == []


def test_a_failed_audit_write_fails_the_request(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the audit entries cannot be written, the unit of work rolls back: fail closed."""

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(vault.audit, "write", broken)
    with pytest.raises(RuntimeError), vault.unit(INGEST) as s:  # a caller that may create
        vault.customers.create(s, CustomerInput(first_name="Lost"))
    with vault.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(CustomerRow)) == 0


def test_sequencer_orders_entries_and_signs_the_tree(vault: Vault) -> None:
    """Sequencing gives positions 0..n-1, empties the queue, and signs a checkpoint whose
    root is the RFC 6962 root of the entries in log order; a second run has nothing to do."""
    _activity(vault)
    with vault.unit(INGEST) as s:
        vault.customers.create(s, CustomerInput(first_name="Late"))
    done = vault.audit.sequence(vault.db)
    with vault.db.transaction() as s:
        rows = s.execute(
            select(AuditLogRow.position, AuditEntryRow.canonical)
            .join(AuditEntryRow, AuditEntryRow.id == AuditLogRow.entry_pk)
            .order_by(AuditLogRow.position)
        ).all()
        pending = s.scalar(select(func.count()).select_from(AuditPendingRow))
        latest = vault.audit.latest_checkpoint(s)
    assert latest is not None
    assert done == 1
    assert [p for p, _ in rows] == list(range(7))
    assert pending == 0
    checkpoint = open_checkpoint(latest.note, vault.audit.public_vkey, ed25519_verify)
    assert (checkpoint.size, checkpoint.root_hash) == (7, root([c for _, c in rows]))
    assert vault.audit.sequence(vault.db) == 0


OPERATOR = AccessContext(Actor("operator:alice", "system"), "administration")
_DOCUMENT = "query Few { customers(first: 1) { edges { cursor } } }"


@pytest.mark.parametrize("table", APPEND_ONLY_TABLES)
def test_audit_tables_refuse_update_delete_and_truncate(vault: Vault, table: str) -> None:
    """The database itself refuses to change or remove audit rows, consent events, policy
    versions and trusted documents (TRUNCATE too, on PostgreSQL, even with
    session_replication_role = replica)."""
    _activity(vault, 1)
    with vault.unit(CTX) as s:
        someone = vault.customers.create(s, CustomerInput(first_name="Ledger"))
    grant_all_consents(vault, someone.id)  # a row in the consent ledger, append-only too
    with vault.unit(CTX) as s:
        vault.policies.reset(s)  # a stored policy version, append-only too
    with vault.unit(OPERATOR) as s:  # a trusted document and its event, append-only too
        manifest = parse_manifest(json.dumps({document_sha256(_DOCUMENT): _DOCUMENT}).encode())
        vault.documents.register(s, manifest, schema_checker(build_schema()._schema))
    vault.audit.sequence(vault.db)
    statements = [f"UPDATE {table} SET {_column(table)} = {_column(table)}", f"DELETE FROM {table}"]
    if vault.db.dialect == "postgresql":
        statements += [f"TRUNCATE {table} CASCADE"]
    refused = []

    def attempt(statement: str) -> None:
        with vault.db.engine.begin() as conn:
            if vault.db.dialect == "postgresql":
                conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.execute(text(statement))

    for statement in statements:
        with pytest.raises(DBAPIError):
            attempt(statement)
        refused.append(statement.split()[0])
    assert refused == [s.split()[0] for s in statements]


def _column(table: str) -> str:
    return {
        "audit_entries": "actor",
        "audit_log": "leaf_hash",
        "audit_checkpoints": "note",
        "consent_events": "purpose",
        "policy_versions": "actor",
        "trusted_documents": "body",
        "trusted_document_events": "actor",
    }[table]


def _tamper(vault: Vault, *statements: str) -> None:
    """Change audit rows as a privileged operator would: switch the triggers off first."""
    with vault.db.engine.begin() as conn:
        for table in APPEND_ONLY_TABLES:
            if vault.db.dialect == "postgresql":
                conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
            else:
                for op in ("update", "delete"):
                    conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_{op}"))
        for statement in statements:
            conn.execute(text(statement))
        if vault.db.dialect == "postgresql":
            for table in APPEND_ONLY_TABLES:
                for name in ("no_change", "no_truncate"):
                    conn.execute(text(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_{name}"))


def test_full_export_verifies(vault: Vault) -> None:
    """A full export of real activity verifies offline with only the public key."""
    _activity(vault, 4)
    exported = _export(vault)
    _verify(vault, exported)
    lines = [json.loads(line) for line in exported.splitlines()]
    assert lines[0]["type"] == "cvault-audit-export"
    assert lines[-1] == {"type": "end", "entries": len(lines) - 2 - sum(
        1 for line in lines if line["type"] == "checkpoint")}  # fmt: skip


def test_filtered_export_carries_proofs_that_verify(vault: Vault) -> None:
    """An export filtered to one customer holds only that customer's entries, each with an
    inclusion proof into the signed tree."""
    ids = _activity(vault, 4)
    exported = _export(vault, AuditFilter(customer_id=ids[2]))
    _verify(vault, exported)
    entries = [json.loads(line) for line in exported.splitlines()][1:-1]
    assert {e["entry"]["customer"] for e in entries} == {str(ids[2])}
    assert all("proof" in e for e in entries)


# Each unit of _activity writes two entries and is sequenced on its own, so checkpoints
# stand at tree sizes 2, 4, 6, 8; a rewrite that keeps hashes consistent is pinned to the
# two positions between the last checkpoint that holds and the first that fails.
FIRST_BAD = {"edit": 3, "edit-with-hash": 2, "delete": 4, "insert": 2, "swap": 2}
EXPECTED = {
    "edit": "does not match its recorded leaf hash",
    "edit-with-hash": "positions 2 to 3 do not rebuild",
    "delete": "missing",
    "insert": "positions 2 to 3 do not rebuild",
    "swap": "positions 2 to 3 do not rebuild",
}


@pytest.mark.parametrize("attack", ["edit", "edit-with-hash", "delete", "insert", "swap"])
def test_tampering_turns_verify_red_and_names_the_entry(vault: Vault, attack: str) -> None:
    """Editing, deleting, inserting or swapping an entry through a connection that bypasses
    the triggers makes the export fail verification: an edit that left the leaf hash is
    named by position; one that recomputed it (or an insert, a swap) by the interval of
    positions the first refuting checkpoint covers, as no single entry can be told."""
    _activity(vault, 4)
    vault.audit.sequence(vault.db)
    with vault.db.transaction() as s:
        log = s.execute(
            select(AuditLogRow.position, AuditLogRow.entry_pk).order_by(AuditLogRow.position)
        ).all()
        canon = dict(s.execute(select(AuditEntryRow.id, AuditEntryRow.canonical)).all())
    pk3 = log[3][1]
    edited = canon[pk3].replace(b'"agent-7"', b'"nobody"')
    forged = (
        "x'" + edited.hex() + "'" if vault.db.dialect == "sqlite" else f"'\\x{edited.hex()}'::bytea"
    )
    if attack == "edit":
        _tamper(vault, f"UPDATE audit_entries SET canonical = {forged} WHERE id = {pk3}")
    elif attack == "edit-with-hash":
        from audit.merkle import leaf_hash  # noqa: PLC0415

        digest = leaf_hash(edited).hex()
        forged_hash = f"x'{digest}'" if vault.db.dialect == "sqlite" else f"'\\x{digest}'::bytea"
        _tamper(
            vault,
            f"UPDATE audit_entries SET canonical = {forged} WHERE id = {pk3}",
            f"UPDATE audit_log SET leaf_hash = {forged_hash} WHERE position = 3",
        )
    elif attack == "delete":
        _tamper(vault, "DELETE FROM audit_log WHERE position = 3")
    elif attack == "insert":
        from audit.merkle import leaf_hash  # noqa: PLC0415

        new_id = uuid.uuid4()
        entry_id = f"'{new_id.hex}'" if vault.db.dialect == "sqlite" else f"'{new_id}'::uuid"
        digest = leaf_hash(edited).hex()
        forged_hash = f"x'{digest}'" if vault.db.dialect == "sqlite" else f"'\\x{digest}'::bytea"
        _tamper(
            vault,
            "INSERT INTO audit_entries (entry_id, recorded_at, actor, action, customer_id, "
            f"canonical) SELECT {entry_id}, recorded_at, actor, action, customer_id, {forged} "
            f"FROM audit_entries WHERE id = {pk3}",
            "UPDATE audit_log SET position = position + 1000 WHERE position >= 3",
            "UPDATE audit_log SET position = position - 999 WHERE position >= 1003",
            "INSERT INTO audit_log (position, entry_pk, leaf_hash) SELECT 3, max(id), "
            f"{forged_hash} FROM audit_entries",
        )
    else:
        _tamper(vault, "UPDATE audit_log SET position = -1 WHERE position = 3",
                "UPDATE audit_log SET position = 3 WHERE position = 5",
                "UPDATE audit_log SET position = 5 WHERE position = -1")  # fmt: skip
    # The export reads the rows as they now are; the signed checkpoints are untouched.
    buffer = io.StringIO()
    with vault.db.transaction() as s:
        latest = vault.audit.latest_checkpoint(s)
    assert latest is not None
    export_audit(vault, buffer, context=CTX, checkpoint_every=1)
    with pytest.raises(VerificationError) as info:
        _verify(vault, buffer.getvalue())
    first = info.value.position if info.value.positions is None else info.value.positions[0]
    assert (first, EXPECTED[attack] in str(info.value)) == (FIRST_BAD[attack], True)


def test_verify_checks_consistency_with_an_earlier_checkpoint(vault: Vault) -> None:
    """A checkpoint saved earlier is consistent with a later full or filtered export; an
    entry edited before that point is caught even with its leaf hash rewritten."""
    ids = _activity(vault, 2)
    vault.audit.sequence(vault.db)
    with vault.db.transaction() as s:
        old = vault.audit.latest_checkpoint(s)
    assert old is not None
    _activity(vault, 2)
    _verify(vault, _export(vault), previous=old.note)
    filtered = _export(vault, AuditFilter(customer_id=ids[0]), previous=old.note)
    _verify(vault, filtered, previous=old.note)
    with pytest.raises(VerificationError):
        _verify(vault, _export(vault, AuditFilter(customer_id=ids[0])), previous=old.note)


def test_audit_export_is_itself_audited(vault: Vault) -> None:
    """Exporting the trail leaves an audit.export entry."""
    _activity(vault, 1)
    _export(vault)
    assert AuditAction.AUDIT_EXPORT.value in [e["action"] for e in _entries(vault)]


def test_public_key_file_round_trip(vault: Vault, tmp_path: Path) -> None:
    """The vkey printed for verifiers names the signer and opens the vault's checkpoints."""
    _activity(vault, 1)
    vault.audit.sequence(vault.db)
    key = tmp_path / "vault.vkey"
    key.write_text(vault.audit.public_vkey, encoding="utf-8")
    with vault.db.transaction() as s:
        latest = vault.audit.latest_checkpoint(s)
    assert latest is not None
    cp = open_checkpoint(latest.note, key.read_text(encoding="utf-8"), ed25519_verify)
    assert cp.origin == "customer-vault/test"
