"""A GraphQL query's audit goes through the app's group-committed writer; a failed batch
answers an error and no data (fail-closed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from api.auth import LocalTokenIssuer
from api.graphql.endpoint import RateLimiter
from audit.entries import AuditEntry
from policies import Role
from tests.conftest import CTX
from vault.customers import CustomerInput
from vault.runtime import Vault
from vault.storage.db import Database, StorageUnavailable

ISSUER: Final = "customer-vault"
NAME: Final = "\u067e\u0631\u0648\u06cc\u0646"
QUERY: Final = "query($id: ID!) { customer(id: $id) { firstName } }"


def _ask(client: TestClient, issuer: LocalTokenIssuer, cid: str) -> tuple[int, Any]:
    token = issuer.issue("agent-1", Role.SUPPORT_AGENT)
    response = client.post(
        "/graphql",
        json={"query": QUERY, "variables": {"id": cid}},
        headers={"Authorization": f"Bearer {token}", "X-Purpose": "support"},
    )
    return response.status_code, response.json()


def test_a_query_waits_for_its_batch_and_fails_with_it(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under the app's lifespan the query's entry is committed by the writer before the
    answer; when the batch's commit fails, the answer is an error without the name."""
    with vault.unit(CTX) as s:
        cid = str(vault.customers.create(s, CustomerInput(first_name=NAME)).id)
    issuer = LocalTokenIssuer.load_or_create(tmp_path / "jwt.json", ISSUER, ISSUER)
    app = create_app(
        vault, verifier=issuer.verifier(), local_issuer=issuer, rate_limiter=RateLimiter(10_000)
    )
    assert vault.writer is not None
    with TestClient(app) as client:
        ok_status, ok_body = _ask(client, issuer, cid)
        committed = vault.writer.stats.requests

        def refuse(db: Database, entries: Sequence[AuditEntry]) -> None:
            raise StorageUnavailable("injected batch failure")

        monkeypatch.setattr(vault.audit, "write_now", refuse)
        failed_status, failed_body = _ask(client, issuer, cid)
        failed_batches = vault.writer.stats.failed
    assert (ok_status, ok_body["data"]["customer"]["firstName"], committed) == (200, NAME, 1)
    assert NAME not in str(failed_body)
    assert (failed_status == 200 and failed_body.get("data") is not None) is False
    assert failed_batches == 1
