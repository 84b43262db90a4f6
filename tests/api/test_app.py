"""The HTTP app: health, readiness and request ids."""

from __future__ import annotations

from starlette.testclient import TestClient

from api.app import create_app
from vault.runtime import Vault


def test_health_and_readiness(vault: Vault) -> None:
    """/healthz answers ok; /readyz pings the database and names its dialect."""
    client = TestClient(create_app(vault))
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert (ready.status_code, ready.json()) == (
        200,
        {"status": "ready", "database": vault.db.dialect},
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
