"""``cvault serve --server granian|uvicorn`` (issue 15 item 5): the application in each
server as a real process on a loopback port, over SQLite and PostgreSQL: the lifespan runs (the
stored policy, the event-loop pool, LISTEN, the scheduler), GraphQL and /healthz answer,
names in several scripts round-trip, and SIGTERM stops it cleanly (exit 0, the audit
entries of its requests sequenced and verifiable)."""

from __future__ import annotations

import signal
import uuid
from pathlib import Path

import pytest
import requests

from policies import Role
from tests.conftest import CTX
from tests.processes import Server, run_cli, token, vault_env, wait_for
from tests.reliability.test_crashes import assert_audit_verifies
from vault.config import Settings
from vault.customers import CustomerInput
from vault.runtime import Vault

pytestmark = pytest.mark.processes

READ = "query($id: ID!) { customer(id: $id) { firstName email } }"
NAMES = ["Zoë", "سارا", "สมชาย", "王小明"]
# After its orderly shutdown granian exits 0; uvicorn re-raises the SIGTERM it caught.
EXIT_AFTER_SIGTERM = {"granian": 0, "uvicorn": -signal.SIGTERM}


def _listening(server: Server) -> bool:
    """Whether the server's /metrics says it listens for changes (PostgreSQL LISTEN)."""
    lines = requests.get(f"{server.url}/metrics", timeout=10).text.splitlines()
    return any(
        line.startswith("cvault_change_listener_connected") and line.endswith(" 1.0")
        for line in lines
    )


@pytest.mark.parametrize("server_name", ["granian", "uvicorn"])
def test_each_server_serves_graphql_and_health_and_stops_cleanly(
    tmp_path: Path, database_url: tuple[str, str | None], server_name: str
) -> None:
    """Under granian (the default) and uvicorn: four customers (Latin, Persian, Thai,
    Chinese names) read through the server equal what was stored; /healthz answers 200;
    on PostgreSQL the change listener connects; after SIGTERM the process ends with its
    server's orderly exit status and no traceback, and the audit trail of those reads
    verifies."""
    pytest.importorskip("granian")
    env = vault_env(tmp_path / "data", database_url)
    run_cli(env, "init")
    vault = Vault.open(Settings.from_env(env))
    try:
        with vault.unit(CTX) as session:
            ids = [
                str(vault.customers.create(session, CustomerInput(
                    first_name=name, email=f"{uuid.uuid4().hex}@example.org")).id)
                for name in NAMES
            ]  # fmt: skip
    finally:
        vault.close()
    server = Server(env, tmp_path, "--server", server_name).start()
    try:
        health = requests.get(f"{server.url}/healthz", timeout=10).status_code
        bearer = token(env, Role.SUPPORT_AGENT)
        answers = [server.graphql(bearer, "support", READ, {"id": i}) for i in ids]
        if database_url[0].startswith("postgresql"):  # the lifespan's LISTEN connection
            wait_for(lambda: _listening(server), "cvault_change_listener_connected 1")
    finally:
        server.stop()
    assert server.process is not None
    read = [a.json()["data"]["customer"]["firstName"] for a in answers]
    assert (health, read) == (200, NAMES)
    stopped = EXIT_AFTER_SIGTERM[server_name]
    assert (stopped, False) == (server.process.returncode, "Traceback" in server.output())
    assert_audit_verifies(env, tmp_path)
