"""Many processes, one database (issue 17 item 6): real ``cvault serve`` processes on
their own loopback ports over one PostgreSQL database (the shared server, a schema of
the test's own) or one SQLite file.

Servers poll for changes every 60 s here (``CVAULT_REFRESH_SECONDS=60``) and each wait
below lasts a few seconds at most: a change seen by every server in that time travelled
by NOTIFY. The delay itself is measured by bench/propagation.py, never asserted here.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import requests

from policies import Role, default_policy_lines
from tests.conftest import CTX
from tests.processes import Server, run_cli, token, vault_env
from tests.redis_store import require_redis
from tests.reliability.test_crashes import assert_audit_verifies, scalar_rows
from vault.config import Settings
from vault.customers import CustomerInput
from vault.runtime import Vault

pytestmark = pytest.mark.processes

POSTGRESQL = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
BOUND = 5.0  # seconds a test waits for every server; polling would take 60
READ = "query($id: ID!) { customer(id: $id) { status firstName email } }"
HIDE_EMAIL = "p, *, email, read:*, *, deny"


def _servers(stack: ExitStack, env: Mapping[str, str], folder: Path, n: int) -> list[Server]:
    """``n`` servers over the vault of ``env``, started together, stopped at the end."""
    servers = [Server(env, folder) for _ in range(n)]
    for server in servers:
        stack.callback(server.stop)
    with ThreadPoolExecutor(n) as pool:
        list(pool.map(lambda s: s.start(), servers))
    return servers


def _within(bound: float, condition: Callable[[], bool], what: str) -> int:
    """Poll ``condition`` for at most ``bound`` seconds; the number of polls it took."""
    deadline = time.monotonic() + bound
    polls = 1
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {bound} s (polling runs every 60 s): {what}")
        time.sleep(0.02)
        polls += 1
    return polls


def _customer(env: Mapping[str, str], name: str) -> str:
    vault = Vault.open(Settings.from_env(env))
    try:
        with vault.unit(CTX) as session:
            made = vault.customers.create(
                session, CustomerInput(first_name=name, email=f"{uuid.uuid4().hex}@example.org")
            )
        return str(made.id)
    finally:
        vault.close()


def _read(server: Server, env: Mapping[str, str], customer_id: str) -> dict[str, Any]:
    answer = server.graphql(token(env, Role.SUPPORT_AGENT), "support", READ, {"id": customer_id})
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()["data"]["customer"]
    return found


def _email_hidden(server: Server, env: Mapping[str, str], customer_id: str) -> bool:
    return _read(server, env, customer_id)["email"] is None


def _no_key_cached(server: Server) -> bool:
    return _metric(server, "cvault_data_keys_cached") == 0


def _metric(server: Server, name: str) -> float:
    for line in requests.get(f"{server.url}/metrics", timeout=10).text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _env(tmp_path: Path, database_url: tuple[str, str | None], **extra: str) -> dict[str, str]:
    env = vault_env(tmp_path / "data", database_url, CVAULT_REFRESH_SECONDS="60", **extra)
    run_cli(env, "init")
    return env


@POSTGRESQL
def test_a_policy_replaced_through_one_server_is_enforced_by_all(
    tmp_path: Path, database_url: tuple[str, str | None]
) -> None:
    """Three servers; an administrator replaces the policy through the first (email
    hidden from everyone); within a few seconds (polling every 60 s) every server
    answers a support agent's read with the email hidden."""
    env = _env(tmp_path, database_url)
    customer = _customer(env, "Aiyana")
    with ExitStack() as stack:
        servers = _servers(stack, env, tmp_path, 3)
        before = [_read(s, env, customer)["email"] for s in servers]
        replaced = servers[0].graphql(
            token(env, Role.ADMIN), "administration",
            "mutation($lines: [String!]!) { replacePolicy(lines: $lines) { version } }",
            {"lines": [*default_policy_lines(), HIDE_EMAIL]},
        )  # fmt: skip
        assert replaced.status_code == 200, replaced.text
        for server in servers:
            _within(
                BOUND, partial(_email_hidden, server, env, customer), f"the policy at {server.url}"
            )
        notified = [_metric(s, 'cvault_changes_applied_total{kind="policy",via="notify"}')
                    for s in servers[1:]]  # fmt: skip
    assert all(email is not None for email in before)
    assert notified == [1.0, 1.0]


@POSTGRESQL
def test_an_erasure_through_one_server_is_unreadable_through_all(
    tmp_path: Path, database_url: tuple[str, str | None]
) -> None:
    """Three servers each read a customer (each caches its data key); a compliance
    officer erases it through the first (a verified erasure request). Within a few
    seconds every server's data key cache is empty (the key dropped on the NOTIFY, not
    on a later lookup) and every server reads the customer as erased."""
    env = _env(tmp_path, database_url)
    customer = _customer(env, "Thabo")
    officer = token(env, Role.COMPLIANCE_OFFICER)
    with ExitStack() as stack:
        servers = _servers(stack, env, tmp_path, 3)
        read_before = [_read(s, env, customer)["firstName"] for s in servers]
        cached_before = [_metric(s, "cvault_data_keys_cached") for s in servers]
        filed = servers[0].graphql(officer, "compliance",
            "mutation($c: ID!) { createDsrRequest(input: {type: ERASURE, customerId: $c}) "
            "{ verificationToken request { id } } }", {"c": customer},
        ).json()["data"]["createDsrRequest"]  # fmt: skip
        request = filed["request"]["id"]
        servers[0].graphql(officer, "compliance",
            "mutation($i: ID!, $t: String!) { verifyDsrRequest(id: $i, token: $t) { id } }",
            {"i": request, "t": filed["verificationToken"]},
        )  # fmt: skip
        done = servers[0].graphql(officer, "compliance",
            "mutation($i: ID!) { processDsrRequest(id: $i) { request { status } } }",
            {"i": request},
        )  # fmt: skip
        assert done.json()["data"]["processDsrRequest"]["request"]["status"] == "COMPLETED"
        for server in servers:
            _within(BOUND, partial(_no_key_cached, server), f"the erased key to leave {server.url}")
        read_after = [_read(s, env, customer) for s in servers]
    assert read_before == ["Thabo"] * 3
    assert cached_before == [1.0, 1.0, 1.0]
    assert read_after == [{"status": "ERASED", "firstName": None, "email": None}] * 3


def test_writes_through_all_servers_at_once_leave_one_audit_log_that_verifies(
    tmp_path: Path, database_url: tuple[str, str | None]
) -> None:
    """Three servers take 30 customer creations at once (10 each, from 6 threads); every
    one is audited, and the exported log verifies against the vault's public key."""
    env = _env(tmp_path, database_url)
    writer = token(env, Role.INGEST_SERVICE)
    create = "mutation($n: String!) { createCustomer(input: {firstName: $n}) { id } }"
    names = [f"Писатель {i} 作家" for i in range(30)]
    with ExitStack() as stack:
        servers = _servers(stack, env, tmp_path, 3)
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(
                lambda i: servers[i % 3].graphql(writer, "service_delivery", create,
                                                 {"n": names[i]}),
                range(30),
            ))  # fmt: skip
    run_cli(env, "audit", "seal")
    assert [a.status_code for a in answers] == [200] * 30
    created = scalar_rows(
        env, "SELECT count(*) FROM audit_entries WHERE action = 'customer.create'"
    )
    assert created == [30]
    assert_audit_verifies(env, tmp_path)


def _spread(servers: list[Server], env: Mapping[str, str], n: int) -> list[tuple[int, int]]:
    """``n`` reads of one subject alternating between the servers: (server, status)."""
    reader = token(env, Role.SUPPORT_AGENT, sub=f"agent-{uuid.uuid4().hex[:8]}")
    query = "{ customers(first: 1) { edges { node { id } } } }"
    return [(i % len(servers), servers[i % len(servers)].graphql(reader, "support", query)
             .status_code) for i in range(n)]  # fmt: skip


def _assert_shared(answers: list[tuple[int, int]]) -> None:
    """30 a minute is a burst of 3 in 6 s: counted apart, two servers would let 6 of the
    first 6 through; counted together, 3 (4 if the requests straddled a window edge on
    a slow machine), and both servers answer 429."""
    passed = [server for server, status in answers if status == 200]
    refused = {server for server, status in answers if status == 429}
    assert 3 <= len(passed) <= 4, answers
    assert refused == {0, 1}, answers


@POSTGRESQL
def test_the_rate_limit_answers_429_across_servers_through_postgresql(
    tmp_path: Path, database_url: tuple[str, str | None]
) -> None:
    """Two servers on PostgreSQL, 30 requests a minute per token: 10 requests of one
    token spread over both exceed it together."""
    env = _env(tmp_path, database_url, CVAULT_RATE_LIMIT_PER_MINUTE="30")
    with ExitStack() as stack:
        answers = _spread(_servers(stack, env, tmp_path, 2), env, 10)
    _assert_shared(answers)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_rate_limit_answers_429_across_servers_through_redis(
    tmp_path: Path, database_url: tuple[str, str | None]
) -> None:
    """Two servers on one SQLite file with CVAULT_REDIS_URL: the same limit holds
    across them (Redis counts; without it, SQLite servers count apart)."""
    env = _env(tmp_path, database_url, CVAULT_RATE_LIMIT_PER_MINUTE="30",
               CVAULT_REDIS_URL=require_redis())  # fmt: skip
    with ExitStack() as stack:
        answers = _spread(_servers(stack, env, tmp_path, 2), env, 10)
    _assert_shared(answers)
