"""The shared rate limit on the event loop (issue 15 item 5): with the application's
lifespan running on PostgreSQL, a GraphQL request's limit is one prepared statement on
the event loop's pool (burst and minute windows together) and none on a worker thread's
connection; two applications still share the limit exactly."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from starlette.testclient import TestClient

from api.app import create_app
from api.auth import LocalTokenIssuer
from policies import Role
from vault.runtime import Vault

ISSUER = "customer-vault"
CUSTOMERS = "{ customers(first: 1) { edges { node { id } } } }"
PER_MINUTE = 30  # a burst of 3 in any 6 seconds


@pytest.fixture
def running(vault: Vault, tmp_path: Path) -> Iterator[tuple[list[TestClient], list[Any]]]:
    """Two applications over the vault's database (PostgreSQL), lifespans running,
    sharing one token; and their endpoints."""
    if vault.db.dialect != "postgresql":
        pytest.skip("the shared table and the event-loop pool are PostgreSQL's")
    settings = dataclasses.replace(vault.settings, rate_limit_per_minute=PER_MINUTE)
    issuer = LocalTokenIssuer.load_or_create(tmp_path / "jwt.json", ISSUER, ISSUER)
    token = issuer.issue(f"agent-{uuid.uuid4().hex[:8]}", Role.SUPPORT_AGENT)
    with ExitStack() as stack:
        clients, endpoints = [], []
        for _ in range(2):
            each = Vault.open(settings, keyring=vault.keyring, database=vault.db,
                              clock=vault.clock)  # fmt: skip
            app = create_app(each, verifier=issuer.verifier(), local_issuer=issuer)
            client = stack.enter_context(TestClient(app))
            client.headers["Authorization"] = f"Bearer {token}"
            client.headers["X-Purpose"] = "support"
            clients.append(client)
            endpoints.append(app.state.graphql)
        yield clients, endpoints


def test_a_request_limit_is_one_statement_on_the_event_loop(
    vault: Vault, running: tuple[list[TestClient], list[Any]]
) -> None:
    """One request (not a hot profile shape) sends 1 statement on the event loop's pool,
    the limiter's, and no statement on the engine touches the counters."""
    clients, endpoints = running
    sent: list[str] = []

    def record(*args: Any) -> None:
        sent.append(str(args[2]))

    pool = endpoints[0].hot.reader.pool
    before = pool.statements
    event.listen(vault.db.engine, "before_cursor_execute", record)
    try:
        status = clients[0].post("/graphql", json={"query": CUSTOMERS}).status_code
    finally:
        event.remove(vault.db.engine, "before_cursor_execute", record)
    counting = [s for s in sent if "rate_limit_counters" in s]
    assert (status, pool.statements - before, counting) == (200, 1, [])


def test_the_limit_holds_across_two_applications_on_the_event_loop(
    running: tuple[list[TestClient], list[Any]],
) -> None:
    """8 requests alternating between two applications, 30 a minute (a burst of 3),
    counted on their event loops: 3 answer 200, the rest 429 with a Retry-After."""
    clients, _ = running
    answers = [clients[i % 2].post("/graphql", json={"query": CUSTOMERS}) for i in range(8)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429, 429, 429, 429]
    assert int(answers[-1].headers["retry-after"]) >= 1
