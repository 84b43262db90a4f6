"""The audit trail over GraphQL: compliance officers read and prove it, a data subject
sees who accessed its data (Art. 15), nobody else gets in."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from api.auth import LocalTokenIssuer
from audit.checkpoint import open_checkpoint
from audit.merkle import verify_inclusion
from policies import Role
from tests.conftest import CTX
from vault.crypto.signing import ed25519_verify
from vault.customers import Customer, CustomerInput
from vault.runtime import Vault


class Api:
    def __init__(self, vault: Vault, tmp_path: Path) -> None:
        self.issuer = LocalTokenIssuer.load_or_create(
            tmp_path / "jwt.json", "customer-vault", "customer-vault"
        )
        self.client = TestClient(create_app(vault, verifier=self.issuer.verifier()))

    def ask(
        self,
        role: Role,
        purpose: str,
        query: str,
        customer: Customer | None = None,
        **variables: Any,
    ) -> dict[str, Any]:
        token = self.issuer.issue(
            f"{role.value}-1", role, None if customer is None else customer.id
        )
        response = self.client.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}", "X-Purpose": purpose},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
def api(vault: Vault, tmp_path: Path) -> Api:
    return Api(vault, tmp_path)


@pytest.fixture
def person(vault: Vault) -> Customer:
    with vault.unit(CTX) as s:
        return vault.customers.create(s, CustomerInput(first_name="Noor", email="noor@example.com"))


READ = "query($id: ID!) { customer(id: $id) { firstName email } }"
LOG = """query($first: Int, $after: String, $action: String) {
  auditLog(first: $first, after: $after, filter: {action: $action}) {
    edges { node { id action actor role purpose customerId fields } cursor }
    pageInfo { hasNextPage endCursor } } }"""


def test_compliance_officer_pages_through_the_log(api: Api, person: Customer) -> None:
    """auditLog lists entries newest first, filters by action and pages by cursor."""
    for _ in range(3):
        api.ask(Role.SUPPORT_AGENT, "support", READ, id=str(person.id))
    first = api.ask(Role.COMPLIANCE_OFFICER, "compliance", LOG, first=2, action="pii.access")
    page = first["data"]["auditLog"]
    assert [e["node"]["action"] for e in page["edges"]] == ["pii.access", "pii.access"]
    assert page["pageInfo"]["hasNextPage"] is True
    rest = api.ask(
        Role.COMPLIANCE_OFFICER, "compliance", LOG, first=5, action="pii.access",
        after=page["pageInfo"]["endCursor"],
    )["data"]["auditLog"]  # fmt: skip
    assert len(rest["edges"]) == 1
    node = page["edges"][0]["node"]
    assert (node["role"], node["purpose"], node["customerId"]) == (
        "support_agent",
        "support",
        str(person.id),
    )
    assert node["fields"]["email"] == "masked"


def test_others_may_not_read_the_log(api: Api, person: Customer) -> None:
    """A support agent asking for auditLog gets FORBIDDEN and no data."""
    body = api.ask(Role.SUPPORT_AGENT, "support", LOG, first=2)
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_checkpoint_and_inclusion_proof_verify(api: Api, person: Customer, vault: Vault) -> None:
    """The checkpoint opens with the published key and an entry's proof leads to its root."""
    api.ask(Role.SUPPORT_AGENT, "support", READ, id=str(person.id))
    vault.audit.sequence(vault.db)
    entry_id = api.ask(Role.COMPLIANCE_OFFICER, "compliance", LOG, first=5, action="pii.access")[
        "data"
    ]["auditLog"]["edges"][0]["node"]["id"]
    vault.audit.sequence(vault.db)
    cp = api.ask(
        Role.COMPLIANCE_OFFICER, "compliance",
        "{ auditCheckpoint { treeSize rootHash note publicKey } }",
    )["data"]["auditCheckpoint"]  # fmt: skip
    checkpoint = open_checkpoint(cp["note"], cp["publicKey"], ed25519_verify)
    assert (checkpoint.size, base64.b64encode(checkpoint.root_hash).decode()) == (
        cp["treeSize"],
        cp["rootHash"],
    )
    proof = api.ask(
        Role.COMPLIANCE_OFFICER, "compliance",
        "query($e: ID!) { auditInclusionProof(entryId: $e) "
        "{ position treeSize leafHash proof checkpoint } }",
        e=entry_id,
    )["data"]["auditInclusionProof"]  # fmt: skip
    latest = open_checkpoint(proof["checkpoint"], cp["publicKey"], ed25519_verify)
    verify_inclusion(
        base64.b64decode(proof["leafHash"]),
        proof["position"],
        proof["treeSize"],
        [base64.b64decode(p) for p in proof["proof"]],
        latest.root_hash,
    )
    assert proof["treeSize"] == latest.size


def test_a_data_subject_sees_who_accessed_its_data(api: Api, person: Customer) -> None:
    """me { accessHistory } lists the support agent's read with its purpose; another
    customer's history is not reachable."""
    api.ask(Role.SUPPORT_AGENT, "support", READ, id=str(person.id))
    body = api.ask(
        Role.DATA_SUBJECT, "self",
        "{ me { accessHistory(first: 10) { edges { node { actor role purpose action } } } } }",
        customer=person,
    )  # fmt: skip
    history = [e["node"] for e in body["data"]["me"]["accessHistory"]["edges"]]
    assert {"actor": "support_agent-1", "role": "support_agent", "purpose": "support",
            "action": "pii.access"} in history  # fmt: skip


def test_the_client_address_is_recorded_as_its_keyed_pseudonym(
    api: Api, person: Customer, vault: Vault
) -> None:
    """Every entry of a request names the client by the keyed pseudonym of its address
    (the same for each request from that address), never the address itself."""
    import json  # noqa: PLC0415

    from sqlalchemy import select  # noqa: PLC0415

    from vault.storage.models import AuditEntryRow  # noqa: PLC0415

    for _ in range(2):
        api.ask(Role.SUPPORT_AGENT, "support", READ, id=str(person.id))
    with vault.db.transaction() as s:
        reads = [
            json.loads(c)
            for c in s.scalars(
                select(AuditEntryRow.canonical).where(AuditEntryRow.action == "pii.access")
            )
        ]
    expected = vault.keyring.blind_indexer.pseudonym("audit.client", "testclient")
    assert [r["client"] for r in reads] == [expected, expected]
    assert "testclient" not in json.dumps(reads)
