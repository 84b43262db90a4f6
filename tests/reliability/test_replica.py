"""Replica reads (issue 17 item 7) against a real streaming replica the test starts
itself: a throwaway primary, ``pg_basebackup -R`` into a temporary folder, the standby
on its own loopback port (tests/topology.py); never the machine's shared server.

Routing is proved by pausing the standby's replay (``pg_wal_replay_pause()``): a
customer created then is read by a profile read (the primary) but not counted by the
audit log search (lag tolerated: the replica), whose own audit entry lands on the
primary. Once replay resumes the search sees it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from policies import Role
from tests.processes import PostgresCluster, run_cli, serving, token, vault_env, wait_for
from tests.topology import psql, replicated_cluster

pytestmark = pytest.mark.processes

CREATE = "mutation($v: CustomerInput!) { createCustomer(input: $v) { id customerId } }"
READ = "query($id: ID!) { customer(id: $id) { firstName } }"
CREATED = """{ auditLog(first: 100, filter: {action: "customer.create"}) {
  edges { node { customerId } } } }"""


def _ok(answer: Any) -> dict[str, Any]:  # a requests.Response
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    assert body.get("errors") is None, body
    data: dict[str, Any] = body["data"]
    return data


def _count(cluster: PostgresCluster, action: str) -> int:
    query = f"SELECT count(*) FROM audit_entries WHERE action = '{action}'"
    return int(psql(cluster.port, "postgres", query))


def _caught_up(primary: PostgresCluster, standby: PostgresCluster) -> bool:
    """The standby replayed everything the primary had written when asked."""
    wanted = psql(primary.port, "postgres", "SELECT pg_current_wal_lsn()")
    behind = f"SELECT pg_wal_lsn_diff('{wanted}', pg_last_wal_replay_lsn()) <= 0"
    return psql(standby.port, "postgres", behind) == "t"


def test_lag_tolerant_reads_go_to_the_replica_and_their_audit_to_the_primary(
    tmp_path: Path,
) -> None:
    """With the standby's replay paused, a customer created through the server is read
    by a profile read (primary) while the audit log search (replica) lists only the
    customer created before the pause; the search's own audit entry (audit.export) is on
    the primary and not yet on the standby. After replay resumes the search lists both."""
    with replicated_cluster() as (primary, standby):
        env = vault_env(
            tmp_path / "data", (primary.url, None), CVAULT_DATABASE_REPLICA_URL=standby.url
        )
        run_cli(env, "init")
        with serving(env, tmp_path) as server:
            writer = token(env, Role.INGEST_SERVICE)
            officer = token(env, Role.COMPLIANCE_OFFICER)

            def create(name: str) -> str:
                made = _ok(server.graphql(writer, "service_delivery", CREATE,
                                          {"v": {"firstName": name}}))  # fmt: skip
                return str(made["createCustomer"]["customerId"])

            def listed() -> list[str]:
                page = _ok(server.graphql(officer, "compliance", CREATED))["auditLog"]
                return [e["node"]["customerId"] for e in page["edges"]]

            before = create("Ngozi")
            wait_for(lambda: _caught_up(primary, standby), "the standby to catch up")
            psql(standby.port, "postgres", "SELECT pg_wal_replay_pause()")
            during = create("Đặng Thị Hương")
            profile = _ok(server.graphql(token(env, Role.SUPPORT_AGENT), "support", READ,
                                         {"id": during}))["customer"]  # fmt: skip
            lagging = listed()
            searches = (_count(primary, "audit.export"), _count(standby, "audit.export"))
            psql(standby.port, "postgres", "SELECT pg_wal_replay_resume()")
            wait_for(lambda: _caught_up(primary, standby), "the standby to catch up again")
            caught_up = sorted(listed())
    assert profile == {"firstName": "Đặng Thị Hương"}
    assert [before] == lagging
    assert searches == (1, 0)
    assert sorted([before, during]) == caught_up
