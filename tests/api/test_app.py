"""The HTTP app: health, readiness and request ids."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from api.auth import LocalTokenIssuer
from policies import Role
from vault.config import ConfigError, Settings
from vault.runtime import Vault


def test_health_and_readiness(vault: Vault) -> None:
    """/healthz answers ok; /readyz pings the database, names its dialect and how many
    restored customers wait for `cvault erasure reapply` (none here)."""
    client = TestClient(create_app(vault))
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert (ready.status_code, ready.json()) == (
        200,
        {"status": "ready", "database": vault.db.dialect, "erasures_to_reapply": 0},
    )


def test_request_id_is_returned_and_generated(vault: Vault) -> None:
    """A well-formed X-Request-ID is echoed; a missing or malformed one is replaced."""
    client = TestClient(create_app(vault))
    kept = client.get("/healthz", headers={"X-Request-ID": "abc-123-def"})
    bad = client.get("/healthz", headers={"X-Request-ID": "<script>"})
    assert kept.headers["x-request-id"] == "abc-123-def"
    assert bad.headers["x-request-id"] != "<script>"
    assert len(bad.headers["x-request-id"]) == 32


def test_readiness_reports_a_dead_database(vault: Vault) -> None:
    """When the database cannot be reached, /readyz answers 503 without details."""
    from sqlalchemy import create_engine  # noqa: PLC0415

    from vault.storage.db import Database  # noqa: PLC0415

    broken = Vault.open(
        vault.settings,
        keyring=vault.keyring,
        database=Database(create_engine("sqlite:////nonexistent-dir/x/y.db")),
    )
    response = TestClient(create_app(broken)).get("/readyz")
    assert (response.status_code, response.json()) == (
        503,
        {"status": "unavailable", "database": "down"},
    )


def test_the_server_sequences_audit_entries_in_the_background(vault: Vault) -> None:
    """While the app runs, pending audit entries get positions and a signed checkpoint."""
    import time  # noqa: PLC0415

    from tests.conftest import CTX  # noqa: PLC0415
    from vault.customers import CustomerInput  # noqa: PLC0415

    with vault.unit(CTX) as s:
        vault.customers.create(s, CustomerInput(first_name="Bg"))
    with TestClient(create_app(vault, sequence_every=0.05)):
        deadline = time.monotonic() + 5
        latest = None
        while time.monotonic() < deadline:
            with vault.db.transaction() as s:
                latest = vault.audit.latest_checkpoint(s)
            if latest is not None:
                break
            time.sleep(0.05)
    assert latest is not None
    assert latest.tree_size == 1


def test_metrics_count_requests_by_route_template_without_values(vault: Vault) -> None:
    """/metrics exposes request counts labelled by route template and status; a request
    path carrying a value never becomes a label."""
    client = TestClient(create_app(vault))
    client.get("/healthz")
    client.get("/no/such/path/jane.doe@example.com")
    body = client.get("/metrics").text
    assert 'cvault_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in body
    assert 'route="other"' in body
    assert "jane.doe" not in body


def test_graphql_threads_come_from_the_settings(tmp_path: Path) -> None:
    """CVAULT_GRAPHQL_THREADS sizes the operation threads (16 by default); a value outside
    1..256 is a configuration error naming the variable."""
    env = {"CVAULT_DATA_DIR": str(tmp_path)}
    assert Settings.from_env(env).graphql_threads == 16
    assert Settings.from_env({**env, "CVAULT_GRAPHQL_THREADS": "12"}).graphql_threads == 12
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**env, "CVAULT_GRAPHQL_THREADS": "0"})
    assert str(caught.value) == "Config 'CVAULT_GRAPHQL_THREADS' must be between 1 and 256."


def test_graphql_operations_run_on_that_many_threads(vault: Vault, tmp_path: Path) -> None:
    """Operations run on at most graphql_threads named threads, which stop with the app."""
    sized = Vault.open(
        dataclasses.replace(vault.settings, graphql_threads=2),
        keyring=vault.keyring,
        database=vault.db,
    )
    issuer = LocalTokenIssuer.load_or_create(tmp_path / "jwt.json", "customer-vault",
                                             "customer-vault")  # fmt: skip
    token = issuer.issue("agent-1", Role.SUPPORT_AGENT)
    headers = {"Authorization": f"Bearer {token}", "X-Purpose": "support"}
    app = create_app(sized, verifier=issuer.verifier(), local_issuer=issuer)
    with TestClient(app) as client:
        answers = [
            client.post("/graphql", json={"query": "{ __typename }"}, headers=headers).json()
            for _ in range(6)
        ]
        running = {t.name for t in threading.enumerate() if t.name.startswith("cvault-graphql")}
    left = {t.name for t in threading.enumerate() if t.name.startswith("cvault-graphql")}
    assert answers == [{"data": {"__typename": "Query"}}] * 6
    assert (1 <= len(running) <= 2, left) == (True, set())


def test_start_up_objects_are_frozen_out_of_the_collector(vault: Vault) -> None:
    """Once the app has started, what start-up built is frozen (gc.freeze), so the cyclic
    collector does not walk it again under load."""
    import gc  # noqa: PLC0415

    gc.unfreeze()
    with TestClient(create_app(vault)) as client:
        assert client.get("/healthz").status_code == 200
        frozen = gc.get_freeze_count()
    gc.unfreeze()
    assert frozen > 0
