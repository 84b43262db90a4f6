"""The vault behind PgBouncer in transaction pooling mode (issue 17 item 8): a throwaway
cluster, Debian's ``pgbouncer`` in front of it on its own port, ``cvault`` over the
pooler (``CVAULT_DATABASE_URL``) with the direct URL beside it
(``CVAULT_DATABASE_DIRECT_URL``) for migrations, LISTEN and the session advisory locks.

PgBouncer 1.18 keeps no prepared statement per client: the vault's pooled connections
prepare none (a statement run more than psycopg's default threshold of 5 times would
otherwise be prepared on one server connection and executed on another).
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from policies import Role, default_policy_lines
from tests.processes import Server, run_cli, token, vault_env, wait_for
from tests.reliability.test_scheduled_jobs import sample
from tests.topology import pgbouncer, psql

pytestmark = pytest.mark.processes

CREATE = "mutation($v: CustomerInput!) { createCustomer(input: $v) { id } }"
READ = "query($id: ID!) { customer(id: $id) { firstName email } }"
UPDATE = "mutation($id: ID!, $v: CustomerPatchInput!) { updateCustomer(id: $id, input: $v) { id } }"
BY_EMAIL = "query($e: String!) { customerByEmail(email: $e) { firstName } }"
HIDE_EMAIL = "p, *, email, read:*, *, deny"


def _ok(answer: Any) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    assert body.get("errors") is None, body
    data: dict[str, Any] = body["data"]
    return data


def test_the_vault_serves_behind_pgbouncer_in_transaction_pooling_mode(tmp_path: Path) -> None:
    """``cvault init`` migrates over the direct URL; two servers serve over the pooler
    (each its own 16 threads, the pooler 5 server connections): customers are created,
    read 20 times each (past psycopg's prepare threshold), updated and found by e-mail
    without an error; a policy replaced through one server reaches the other by NOTIFY
    (the listener on the direct connection); one server leads retention (a session
    advisory lock on the direct connection) and runs it; and PgBouncer counted the
    vault's transactions, so the traffic went through it."""
    with pgbouncer() as (cluster, bouncer), ExitStack() as stack:
        env = vault_env(
            tmp_path / "data",
            (bouncer.url, None),
            CVAULT_DATABASE_DIRECT_URL=cluster.url,
            CVAULT_REFRESH_SECONDS="60",
            CVAULT_RETENTION_EVERY="1s",
            CVAULT_LEADER_POLL="0.2",
        )
        run_cli(env, "init")
        servers = [Server(env, tmp_path), Server(env, tmp_path)]
        for server in servers:
            stack.callback(server.stop)
            server.start()
        clerk = token(env, Role.SUPPORT_AGENT)
        writer = token(env, Role.INGEST_SERVICE)
        ids = [
            _ok(servers[i % 2].graphql(writer, "service_delivery", CREATE,
                {"v": {"firstName": name, "email": f"c{i}@example.org"}}))["createCustomer"]["id"]
            for i, name in enumerate(["Zoë", "مریم", "สมชาย", "王芳"])
        ]  # fmt: skip
        reads = [
            _ok(servers[n % 2].graphql(clerk, "support", READ, {"id": ids[n % 4]}))["customer"]
            for n in range(80)
        ]
        for i, customer in enumerate(ids):
            _ok(servers[i % 2].graphql(writer, "service_delivery", UPDATE,
                {"id": customer, "v": {"firstName": f"Renamed {i}"}}))  # fmt: skip
        found = [
            _ok(servers[1].graphql(clerk, "support", BY_EMAIL, {"e": f"c{i}@example.org"}))
            for i in range(4)
        ]
        _ok(servers[0].graphql(
            token(env, Role.ADMIN), "administration",
            "mutation($lines: [String!]!) { replacePolicy(lines: $lines) { version } }",
            {"lines": [*default_policy_lines(), HIDE_EMAIL]},
        ))  # fmt: skip
        wait_for(
            lambda: (
                _ok(servers[1].graphql(clerk, "support", READ, {"id": ids[0]}))["customer"]["email"]
                is None
            ),
            "the policy at the second server",
        )
        notified = sample(servers[1].url, "cvault_changes_applied_total",
                          {"kind": "policy", "via": "notify"})  # fmt: skip
        wait_for(
            lambda: (
                sum(
                    sample(s.url, "cvault_scheduler_leader", {"job": "retention"}) or 0
                    for s in servers
                )
                == 1
            ),
            "one server to lead retention",
        )
        wait_for(
            lambda: psql(cluster.port, "postgres",
                         "SELECT count(*) > 0 FROM job_runs WHERE job = 'retention'"
                         " AND outcome = 'ok'") == "t",
            "a retention run",
        )  # fmt: skip
        pooled = {row["database"]: row for row in bouncer.show("STATS")}["postgres"]
    assert [r["firstName"] for r in reads] == ["Zoë", "مریم", "สมชาย", "王芳"] * 20
    assert [{"customerByEmail": {"firstName": f"Renamed {i}"}} for i in range(4)] == found
    assert notified == 1.0
    assert int(pooled["total_xact_count"]) > 100
    assert "prepared statement" not in bouncer.log()
