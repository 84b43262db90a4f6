"""A database backup restored after an erasure: the customer reads as erased everywhere.

The restore is simulated as in tests/vault/test_erasure.py: the customer's rows (profile,
wrapped data key, external ids, consents, segment stays) are copied before the erasure and
put back after it, next to the same keyring, whose shred list names the customer. Until
``cvault erasure reapply`` runs, every read answers the tombstone (status ERASED, PII
null) without decrypting, lists carry on with the other customers, the audit trail records
no PII read, the CLI prints one line, the server warns and ``/readyz`` counts them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
from sqlalchemy import Table, delete, insert, select, update
from starlette.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.auth import LocalTokenIssuer
from api.cli import app
from api.graphql.endpoint import RateLimiter
from audit.entries import AuditAction
from consent import Privacy
from consent.dsr.requests import DsrInput
from policies import Role
from tests.api.test_cli import cli_env
from tests.api.test_graphql_policy import Gateway
from tests.conftest import CTX, grant_all_consents
from vault.config import Settings
from vault.customers import CustomerInput, CustomerPatch, ExternalId
from vault.errors import CustomerErased
from vault.interactions import InteractionInput
from vault.keys import KeyShredded
from vault.runtime import Vault
from vault.storage.models import (
    AuditEntryRow,
    ConsentStateRow,
    CustomerExternalIdRow,
    CustomerRow,
    DataKeyRow,
    SegmentMembershipRow,
)
from vault.types import PiiField

GOLD = {"attribute": {"field": "tier", "op": "eq", "value": "gold"}}
PII = "email phone firstName lastName birthDate address"
ONE = f"query($id: ID!) {{ customer(id: $id) {{ id status {PII} tier tags attributes"
ONE += " interactions(first: 5) { edges { node { id type } } } } }"
LIST = f"{{ customers(first: 10) {{ edges {{ node {{ customerId status {PII} tier }} }} }} }}"
BY_EMAIL = "query($e: String!) { customerByEmail(email: $e) { id } }"
MEMBERS = f"query($id: ID!) {{ segment(id: $id) {{ members(first: 10) {{ edges {{ node {{ customerId status {PII} }} }} }} }} }}"  # noqa: E501
ME = (
    f"{{ me {{ customerId status {PII} interactions(first: 3) {{ edges {{ node {{ id }} }} }} }} }}"
)
ERASED_NODE = {
    "status": "ERASED", "email": None, "phone": None, "firstName": None, "lastName": None,
    "birthDate": None, "address": None,
}  # fmt: skip
Snapshot = dict[Any, list[dict[str, Any]]]
_BY_CUSTOMER = (CustomerExternalIdRow, ConsentStateRow, SegmentMembershipRow)


def _person(vault: Vault, name: str) -> uuid.UUID:
    """A gold customer with an e-mail, an external id, two interactions and every consent."""
    with vault.unit(CTX) as s:
        cid = vault.customers.create(
            s, CustomerInput(first_name=name, email=f"{name.lower()}@example.com", tier="gold",
                             external_ids=[ExternalId("shop", f"ext-{name}")]),
        ).id  # fmt: skip
        vault.interactions.record_many(
            s,
            [InteractionInput(customer_id=cid, channel="chat", type="chat_message",
                              occurred_at=datetime(2026, 5, d, tzinfo=UTC),
                              payload={"text": f"hello from {name}"}) for d in (1, 2)],
        )  # fmt: skip
    grant_all_consents(vault, cid)
    return cid


def _snapshot(vault: Vault, cid: uuid.UUID) -> Snapshot:
    """The customer's rows, as a database backup taken now holds them."""
    with vault.db.transaction() as s:
        taken: Snapshot = {
            CustomerRow: [dict(r) for r in s.execute(
                select(CustomerRow.__table__).where(CustomerRow.id == cid)).mappings()],
            DataKeyRow: [dict(r) for r in s.execute(
                select(DataKeyRow.__table__).where(DataKeyRow.customer_id == cid)).mappings()],
        }  # fmt: skip
        for model in _BY_CUSTOMER:
            table: Table = model.__table__  # type: ignore[assignment]
            rows = s.execute(select(table).where(table.c.customer_id == cid)).mappings()
            taken[model] = [dict(r) for r in rows]
    return taken


def _put_back(vault: Vault, cid: uuid.UUID, taken: Snapshot) -> None:
    """Restore the snapshot over the erased customer (the backup is restored)."""
    with vault.db.transaction() as s:
        s.execute(update(CustomerRow).where(CustomerRow.id == cid).values(**taken[CustomerRow][0]))
        s.execute(
            update(DataKeyRow).where(DataKeyRow.customer_id == cid).values(**taken[DataKeyRow][0])
        )
        for model in _BY_CUSTOMER:
            table: Table = model.__table__  # type: ignore[assignment]
            s.execute(delete(table).where(table.c.customer_id == cid))
            if taken[model]:
                s.execute(insert(table), taken[model])


@pytest.fixture
def restored(vault: Vault) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """(back, kept, segment): ``back`` erased after the backup and restored with it (its
    erasure undone, its id on the shred list); ``kept`` never erased; both in ``segment``."""
    back, kept = _person(vault, "Roya"), _person(vault, "Arash")
    with vault.unit(CTX) as s:
        segment = vault.segments.create(s, name="gold", definition=GOLD).id
        vault.segments.refresh(s, segment)
    taken = _snapshot(vault, back)
    with vault.unit(CTX) as s:
        vault.erasure.erase(s, back)
    _put_back(vault, back, taken)
    assert [back] == vault.erasure.restored(vault.db)
    return back, kept, segment


@pytest.fixture
def served(vault: Vault, tmp_path: Path) -> Iterator[tuple[Gateway, Any]]:
    """The app with its lifespan running (the start-up scan), and the captured logs."""
    issuer = LocalTokenIssuer.load_or_create(tmp_path / "jwt.json", "cvault-test", "cvault-test")
    application = create_app(
        vault, verifier=issuer.verifier(), local_issuer=issuer, rate_limiter=RateLimiter(10_000),
        webhook_every=None,
    )  # fmt: skip
    with structlog.testing.capture_logs() as logs, TestClient(application) as client:
        yield Gateway(client, issuer), logs


def _ask(gw: Gateway, query: str, role: Role = Role.SUPPORT_AGENT, **variables: Any) -> Any:
    purpose = {
        Role.SUPPORT_AGENT: "support",
        Role.DATA_SUBJECT: "self",
        Role.MARKETING: "marketing_email",
    }[role]
    owner = variables.pop("owner", None)
    response = gw.post(query, variables, role=role, purpose=purpose, customer_id=owner)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def _audited(vault: Vault, cid: uuid.UUID) -> list[tuple[str, dict[str, Any]]]:
    """(action, fields) of the audit entries about ``cid`` written by reads."""
    import json  # noqa: PLC0415

    reads = {AuditAction.PII_ACCESS.value, AuditAction.INTERACTIONS_READ.value}
    with vault.db.transaction() as s:
        rows = s.execute(
            select(AuditEntryRow.action, AuditEntryRow.canonical)
            .where(AuditEntryRow.customer_id == cid, AuditEntryRow.action.in_(reads))
            .order_by(AuditEntryRow.id)
        ).all()
    return [(action, json.loads(canonical)["fields"]) for action, canonical in rows]


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "graphql-core"])
def test_single_reads_answer_the_tombstone(
    vault: Vault, restored: tuple[uuid.UUID, uuid.UUID, uuid.UUID],
    served: tuple[Gateway, Any], compiled: bool,
) -> None:  # fmt: skip
    """customer(id:) and me (on the compiled path and through graphql-core) answer status
    ERASED with PII, profile, external ids and interactions empty; the e-mail finds no
    one; the audit trail records the reads as of erased fields, no interactions read."""
    back, _kept, _segment = restored
    gw, _logs = served
    gw.client.app.state.graphql.compiled = compiled  # type: ignore[attr-defined]
    simple = f"query($id: ID!) {{ customer(id: $id) {{ customerId status {PII} "
    simple += "interactions(first: 5) { edges { node { id } } } } }"
    expected: dict[str, Any] = {
        "customerId": str(back), **ERASED_NODE, "interactions": {"edges": []},
    }  # fmt: skip
    assert {"customer": expected} == _ask(gw, simple, id=str(back))
    assert {"me": expected} == _ask(gw, ME, Role.DATA_SUBJECT, owner=back)
    full = _ask(gw, ONE, id=str(back))["customer"]
    assert (full["tier"], full["tags"], full["attributes"], full["interactions"]) == (
        None,
        [],
        {},
        {"edges": []},
    )
    assert _ask(gw, BY_EMAIL, e="roya@example.com") == {"customerByEmail": None}
    erased = {f.value: "erased" for f in PiiField}
    assert {(AuditAction.PII_ACCESS.value, tuple(sorted(erased.items())))} == {
        (action, tuple(sorted(fields.items()))) for action, fields in _audited(vault, back)
    }


def test_lists_carry_on_with_the_other_customers(
    vault: Vault, restored: tuple[uuid.UUID, uuid.UUID, uuid.UUID], served: tuple[Gateway, Any]
) -> None:
    """customers and a segment's members list the restored customer as ERASED and every
    other customer as usual: the page does not fail."""
    back, kept, segment = restored
    gw, _logs = served
    nodes = {e["node"]["customerId"]: e["node"] for e in _ask(gw, LIST)["customers"]["edges"]}
    assert {str(back), str(kept)} == set(nodes)
    assert {"customerId": str(back), **ERASED_NODE, "tier": None} == nodes[str(back)]
    assert (nodes[str(kept)]["status"], nodes[str(kept)]["firstName"]) == ("ACTIVE", "Arash")
    members = _ask(gw, MEMBERS, Role.MARKETING, id=str(segment))["segment"]["members"]["edges"]
    shown = {e["node"]["customerId"]: e["node"]["status"] for e in members}
    assert {str(back): "ERASED", str(kept): "ACTIVE"} == shown


def test_the_server_warns_and_readyz_counts_until_reapply(
    vault: Vault, restored: tuple[uuid.UUID, uuid.UUID, uuid.UUID], served: tuple[Gateway, Any]
) -> None:
    """At start-up the server logs one warning naming `cvault erasure reapply`; /readyz
    reports one restored customer waiting, and none once the erasures are re-applied."""
    back, _kept, _segment = restored
    gw, logs = served
    warnings = [e for e in logs if e["event"] == "erasure.restored_customers"]
    assert [(e["log_level"], e["customers"], e["run"]) for e in warnings] == [
        ("warning", 1, "cvault erasure reapply")
    ]
    ready = gw.client.get("/readyz").json()
    assert (ready["status"], ready["erasures_to_reapply"]) == ("ready", 1)
    report = vault.reapply_erasures()
    assert ([back], [], 2) == (report.erased, report.held, report.purged)
    assert gw.client.get("/readyz").json()["erasures_to_reapply"] == 0


def test_writes_and_key_lookups_refuse_with_a_domain_error(
    vault: Vault, restored: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    """Updating the restored customer or asking for its key raises CustomerErased (code
    CUSTOMER_ERASED, naming the repair), never a bare decryption failure; a reader that
    meets one logs it once."""
    back, _kept, _segment = restored
    with structlog.testing.capture_logs() as logs:
        with pytest.raises(CustomerErased) as refused, vault.unit(CTX) as s:
            vault.customers.update(s, back, CustomerPatch(first_name="Someone"))
        with pytest.raises(KeyShredded), vault.db.transaction() as s:
            vault.keys.get(s, back)
    assert refused.value.code == "CUSTOMER_ERASED"
    assert f"customer {back} is erased" in str(refused.value)
    assert "cvault erasure reapply" in str(refused.value)
    assert sum(e["event"] == "customer.erasure_undone" for e in logs) == 1


def test_dsr_access_of_a_restored_customer_prints_one_line(
    tmp_path: Path, database_url: tuple[str, str | None]
) -> None:
    """`cvault dsr process` of an access request whose customer a restored backup brought
    back exits 1 with one line naming `cvault erasure reapply` (no traceback)."""
    env = cli_env(tmp_path, database_url)
    assert CliRunner().invoke(app, ["init"], env=env).exit_code == 0
    vault = Vault.open(Settings.from_env(env))
    try:
        back = _person(vault, "Roya")
        desk = Privacy.of(vault).desk
        with vault.unit(CTX) as s:
            created = desk.create(s, DsrInput(type="access", customer_id=back))
        with vault.unit(CTX) as s:
            desk.verify(s, created.request.id, created.verification_token)
        taken = _snapshot(vault, back)
        with vault.unit(CTX) as s:
            vault.erasure.erase(s, back)
        _put_back(vault, back, taken)
    finally:
        vault.close()
    result = CliRunner().invoke(
        app, ["dsr", "process", str(created.request.id), "--output", str(tmp_path / "b.zip")],
        env=env, terminal_width=300,
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert f"customer {back} is erased" in lines[0]
    assert "cvault erasure reapply" in lines[0]
    assert not (tmp_path / "b.zip").exists()
