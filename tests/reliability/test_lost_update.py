"""No lost update across processes (issue 17 item 5): two real ``cvault serve`` processes
on their own loopback ports over one PostgreSQL database (the shared server, a schema of
this module's own) take concurrent ``updateCustomer`` calls on one record, half through
each server, all released together by a barrier.

With one ``expectedVersion`` for all, exactly one write lands and every other answers
CONFLICT; writers that re-read and retry on CONFLICT all land, one version each. The two
servers are started once for the module (each test works on a customer of its own).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from policies import Role
from tests.conftest import CTX, POSTGRES_URL, postgres_schema
from tests.processes import Server, run_cli, token, vault_env
from tests.reliability.test_crashes import assert_audit_verifies, scalar_rows
from vault.config import Settings
from vault.customers import CustomerInput
from vault.runtime import Vault

pytestmark = pytest.mark.processes

WRITERS = 8  # half through each server
UPDATE = """mutation($id: ID!, $p: CustomerPatchInput!, $v: Int) {
  updateCustomer(id: $id, input: $p, expectedVersion: $v) { version } }"""
READ = "query($id: ID!) { customer(id: $id) { version firstName } }"


@dataclass(frozen=True)
class Vaults:
    """The two servers over one database, the environment, and the folder they log to."""

    env: dict[str, str]
    servers: tuple[Server, Server]
    folder: Path

    def server(self, i: int) -> Server:
        return self.servers[i % 2]


@pytest.fixture(scope="module")
def vaults(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vaults]:
    """Two servers on one PostgreSQL schema; unreachable PostgreSQL fails under CI=true."""
    folder = tmp_path_factory.mktemp("lost-update")
    servers: list[Server] = []
    with postgres_schema() as schema:
        try:
            env = vault_env(folder / "data", (POSTGRES_URL, schema))
            run_cli(env, "init")
            servers = [Server(env, folder), Server(env, folder)]
            for server in servers:
                server.start()
            yield Vaults(env, (servers[0], servers[1]), folder)
        finally:
            for server in servers:
                server.stop()


def _customer(env: dict[str, str]) -> str:
    vault = Vault.open(Settings.from_env(env))
    try:
        with vault.unit(CTX) as session:
            return str(vault.customers.create(session, CustomerInput(first_name="Ana")).id)
    finally:
        vault.close()


def _read(vaults: Vaults, customer_id: str, via: int = 0) -> dict[str, Any]:
    reader = token(vaults.env, Role.SUPPORT_AGENT)
    answer = vaults.server(via).graphql(reader, "support", READ, {"id": customer_id})
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()["data"]["customer"]
    return found


def _update(vaults: Vaults, writer: int, customer_id: str, name: str, expected: int) -> Any:
    """One updateCustomer through server ``writer % 2``: its JSON answer."""
    answer = vaults.server(writer).graphql(
        token(vaults.env, Role.INGEST_SERVICE), "service_delivery", UPDATE,
        {"id": customer_id, "p": {"firstName": name}, "v": expected},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    return answer.json()


def _codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors") or []]


def _together(work: Any, n: int) -> list[Any]:
    """Run ``work(i)`` for i in 0..n-1 on n threads released at once; the results in order."""
    start = threading.Barrier(n)
    results: list[Any] = [None] * n
    failures: list[BaseException] = []

    def run(i: int) -> None:
        start.wait(timeout=60)
        try:
            results[i] = work(i)
        except BaseException as failed:  # noqa: BLE001 - reported by the assertion below
            failures.append(failed)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert failures == []
    return results


def _audited_updates(vaults: Vaults, customer_id: str) -> int:
    [count] = scalar_rows(
        vaults.env,
        "SELECT count(*) FROM audit_entries "
        f"WHERE action = 'customer.update' AND customer_id = '{customer_id}'",
    )
    return int(count)


def _names(n: int) -> list[str]:
    return [f"Writer {i} نویسنده 作家 นักเขียน Zoë" for i in range(n)]


def test_concurrent_updates_expecting_one_version_through_two_servers_one_wins(
    vaults: Vaults,
) -> None:
    """8 writers (4 through each server) read version v and update together expecting
    v: exactly one answers version v + 1, the 7 others CONFLICT (nothing written); the
    record holds the winner's name at v + 1, one update is audited, and the audit log
    verifies."""
    customer = _customer(vaults.env)
    version = _read(vaults, customer)["version"]
    names = _names(WRITERS)
    answers = _together(lambda i: _update(vaults, i, customer, names[i], version), WRITERS)
    won = [i for i, a in enumerate(answers) if not _codes(a)]
    lost = [i for i, a in enumerate(answers) if _codes(a) == ["CONFLICT"]]
    assert len(won) == 1, answers
    assert sorted(won + lost) == list(range(WRITERS)), answers
    [winner] = won
    assert answers[winner]["data"]["updateCustomer"] == {"version": version + 1}
    after = [_read(vaults, customer, via) for via in (0, 1)]
    assert after == [{"version": version + 1, "firstName": names[winner]}] * 2
    assert _audited_updates(vaults, customer) == 1
    run_cli(vaults.env, "audit", "seal")
    assert_audit_verifies(vaults.env, vaults.folder)


def test_writers_that_reread_and_retry_on_conflict_all_land(vaults: Vaults) -> None:
    """8 writers (4 through each server) start together; each reads the version,
    updates expecting it, and on CONFLICT reads again and retries. Every write lands
    at a version of its own (v + 1 .. v + 8, each once), the record ends at v + 8 with
    the name of the writer that got v + 8, 8 updates are audited and the log verifies."""
    customer = _customer(vaults.env)
    version = _read(vaults, customer)["version"]
    names = _names(WRITERS)

    def persist(i: int) -> int:
        for _ in range(10 * WRITERS):  # each round lets at least one writer through
            expected = _read(vaults, customer, i)["version"]
            body = _update(vaults, i, customer, names[i], expected)
            if not _codes(body):
                landed: int = body["data"]["updateCustomer"]["version"]
                return landed
            assert _codes(body) == ["CONFLICT"], body
        pytest.fail(f"writer {i} never landed")

    landed = _together(persist, WRITERS)
    assert sorted(landed) == list(range(version + 1, version + WRITERS + 1))
    last = landed.index(version + WRITERS)
    assert _read(vaults, customer, 1) == {"version": version + WRITERS, "firstName": names[last]}
    assert _audited_updates(vaults, customer) == WRITERS
    run_cli(vaults.env, "audit", "seal")
    assert_audit_verifies(vaults.env, vaults.folder)
