"""Mutations over GraphQL leave nothing half-written: a failing field rolls back alone."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from policies import Role
from tests.api.test_graphql_audit import Api
from tests.conftest import CTX
from vault.customers import CustomerInput, ExternalId
from vault.runtime import Vault
from vault.storage.models import CustomerRow

CREATE = """mutation($a: CustomerInput!, $b: CustomerInput!) {
  ok: createCustomer(input: $a) { id }
  clash: createCustomer(input: $b) { id } }"""


def test_a_failing_mutation_field_writes_nothing_and_spares_the_others(
    vault: Vault, tmp_path: Path
) -> None:
    """Two creates in one request: the one whose external id is taken fails with DUPLICATE
    and leaves no row behind; the other one is stored."""
    with vault.unit(CTX) as s:
        vault.customers.create(s, CustomerInput(external_ids=[ExternalId("crm", "7")]))
    api = Api(vault, tmp_path)
    body = api.ask(
        Role.INGEST_SERVICE, "service_delivery", CREATE,
        a={"firstName": "Kept"},
        b={"firstName": "Clash", "externalIds": [{"source": "crm", "externalId": "7"}]},
    )  # fmt: skip
    assert body["data"]["ok"] is not None
    assert body["data"]["clash"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["DUPLICATE"]
    with vault.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(CustomerRow)) == 2
