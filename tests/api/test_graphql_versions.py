"""updateCustomer with expectedVersion over GraphQL: Customer.version, the refusal of a
stale version (code CONFLICT, both versions in the extensions, no value) and the hot
read path answering the version like the general one."""

from __future__ import annotations

import json
from pathlib import Path

from policies import Role
from tests.api.test_graphql_audit import Api
from tests.conftest import CTX
from vault.customers import CustomerInput
from vault.runtime import Vault

UPDATE = """mutation($id: ID!, $p: CustomerPatchInput!, $v: Int) {
  updateCustomer(id: $id, input: $p, expectedVersion: $v) { version } }"""
READ = "query($id: ID!) { customer(id: $id) { version } }"
NAME = "\u0e2a\u0e21\u0e0a\u0e32\u0e22"  # Somchai, in Thai


def _create(vault: Vault) -> str:
    with vault.unit(CTX) as s:
        return str(vault.customers.create(s, CustomerInput(first_name="Ana")).id)


def test_a_stale_expected_version_answers_conflict_with_both_versions(
    vault: Vault, tmp_path: Path
) -> None:
    """Created at version 1; an update expecting 1 answers version 2; a second update
    still expecting 1 fails with CONFLICT, extensions naming the versions, the message no
    value, and the record keeps the first update."""
    api = Api(vault, tmp_path)
    cid = _create(vault)
    version = api.ask(Role.SUPPORT_AGENT, "support", READ, id=cid)["data"]["customer"]["version"]
    assert version == 1
    first = api.ask(
        Role.INGEST_SERVICE, "service_delivery", UPDATE, id=cid, p={"firstName": NAME}, v=1
    )
    assert first["data"]["updateCustomer"] == {"version": 2}
    stale = api.ask(
        Role.INGEST_SERVICE, "service_delivery", UPDATE, id=cid, p={"firstName": "Bea"}, v=1
    )
    assert stale["data"]["updateCustomer"] is None
    [error] = stale["errors"]
    assert error["extensions"] == {"code": "CONFLICT", "expectedVersion": 1, "currentVersion": 2}
    assert NAME not in json.dumps(stale, ensure_ascii=False)
    assert "Bea" not in json.dumps(stale)
    now = api.ask(Role.SUPPORT_AGENT, "support", READ, id=cid)
    assert now["data"]["customer"] == {"version": 2}


def test_without_an_expected_version_the_last_writer_wins_and_the_version_grows(
    vault: Vault, tmp_path: Path
) -> None:
    """expectedVersion left out: today's behaviour (the update applies), version + 1."""
    api = Api(vault, tmp_path)
    cid = _create(vault)
    for expected in (2, 3):
        body = api.ask(
            Role.INGEST_SERVICE, "service_delivery", UPDATE, id=cid, p={"firstName": NAME}
        )
        assert body["data"]["updateCustomer"]["version"] == expected
