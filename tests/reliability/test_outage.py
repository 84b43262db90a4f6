"""A database outage under load: a PostgreSQL cluster of the test's own (initdb into a
temporary folder, its own port on 127.0.0.1; never the machine's shared server) is
stopped and started again while a client writes through `cvault serve`.

Requests during the outage answer 503 SERVICE_UNAVAILABLE (they return: connect and
pool timeouts are short), `/readyz` says not ready, the same server process serves again
once the database is back, and every acknowledged write is stored. An audit write that
fails fails its request: no data goes out.
"""

from __future__ import annotations

import itertools
import threading
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, text

from policies import Role
from tests.conftest import BACKENDS, CTX
from tests.processes import postgres_cluster, run_cli, serving, token, vault_env, wait_for
from tests.reliability.test_crashes import RECORD, scalar_rows
from vault.config import Settings
from vault.customers import CustomerInput
from vault.runtime import Vault

pytestmark = [
    pytest.mark.processes,
    pytest.mark.skipif(
        "postgresql" not in BACKENDS, reason="CVAULT_TEST_DATABASES omits postgresql"
    ),
]

READ = "query($id: ID!) { customer(id: $id) { firstName } }"
UNAVAILABLE = (503, "SERVICE_UNAVAILABLE")


PROBE = {
    "channel": "WEB", "type": "PAGE_VIEW", "occurredAt": "2026-12-07T09:00:00Z",
    "externalId": "probe", "customerExternalId": "nobody", "source": "crm",
}  # fmt: skip


def code(answer: requests.Response) -> tuple[int, str | None]:
    errors = answer.json().get("errors") or [{}]
    return answer.status_code, errors[0].get("extensions", {}).get("code")


class Load:
    """A client recording interactions one by one until told to stop; it notes which
    were acknowledged and every answer that was neither an acknowledgement nor a 503."""

    def __init__(self, send: Any, customer_id: str) -> None:
        self.send = send
        self.customer_id = customer_id
        self.acknowledged: list[str] = []
        self.unavailable = 0
        self.unexpected: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def run(self) -> None:
        for n in itertools.count():
            if self.stop.is_set():
                return
            item = {
                "channel": "WEB", "type": "PAGE_VIEW", "occurredAt": "2026-12-07T10:00:00Z",
                "customerId": self.customer_id, "externalId": f"load-{n}",
            }  # fmt: skip
            try:
                answer = self.send(RECORD, {"items": [item]})
            except requests.RequestException as exc:  # a hang or a dropped connection
                self.unexpected.append(f"load-{n}: {type(exc).__name__}")
                continue
            if answer.status_code == 200 and answer.json()["data"]["recordInteractions"] == {
                "inserted": 1,
                "duplicates": 0,
            }:
                self.acknowledged.append(f"load-{n}")
            elif code(answer) == UNAVAILABLE and "data" not in answer.json():
                self.unavailable += 1
            else:
                self.unexpected.append(f"load-{n}: {answer.status_code} {answer.text[:200]}")


def test_a_database_restart_under_load_answers_503_and_loses_no_acknowledged_write(
    tmp_path: Path,
) -> None:
    """The cluster stops (fast shutdown: connections cut) while a client writes: every
    request answers 503 SERVICE_UNAVAILABLE with no data, /readyz 503; after the start
    the same server acknowledges writes again, and every acknowledged write is stored."""
    with postgres_cluster() as cluster:
        env = vault_env(tmp_path / "data", (cluster.url, None))
        run_cli(env, "init")
        vault = Vault.open(Settings.from_env(env))
        with vault.unit(CTX) as session:
            customer = str(vault.customers.create(session, CustomerInput(first_name="Ada")).id)
        vault.close()
        ingest, agent = token(env, Role.INGEST_SERVICE), token(env, Role.SUPPORT_AGENT)
        with serving(env, tmp_path) as server:
            load = Load(lambda q, v: server.graphql(ingest, "service_delivery", q, v), customer)
            load.thread.start()
            try:
                wait_for(lambda: len(load.acknowledged) >= 5, "writes before the outage")
                cluster.stop("fast")
                during = [
                    code(server.graphql(agent, "support", READ, {"id": customer})),
                    code(server.graphql(ingest, "service_delivery", RECORD, {"items": [PROBE]})),
                ]
                ready = requests.get(f"{server.url}/readyz", timeout=10)
                wait_for(lambda: load.unavailable >= 3, "the client's writes during the outage")
                before_restart = len(load.acknowledged)
                cluster.start()
                wait_for(server.ready, "/readyz after the database is back")
                wait_for(
                    lambda: len(load.acknowledged) >= before_restart + 5, "writes after the outage"
                )
            finally:
                load.stop.set()
                load.thread.join(timeout=60)
            after = server.graphql(agent, "support", READ, {"id": customer})
            assert server.process is not None
            assert server.process.poll() is None  # the same process served throughout
        stored = set(scalar_rows(env, "SELECT external_id FROM interactions"))

    assert during == [UNAVAILABLE, UNAVAILABLE]
    assert (ready.status_code, ready.json()["status"]) == (503, "unavailable")
    assert load.unexpected == []
    assert after.json() == {"data": {"customer": {"firstName": "Ada"}}}
    assert set(load.acknowledged) <= stored


def test_a_failed_audit_write_fails_its_request_and_returns_no_data(tmp_path: Path) -> None:
    """While inserting audit entries fails (a trigger raises disk_full), reading a
    customer answers 503 SERVICE_UNAVAILABLE without its data; once audit writes work
    again, the same read answers the name."""
    with postgres_cluster() as cluster:
        env = vault_env(tmp_path / "data", (cluster.url, None))
        run_cli(env, "init")
        vault = Vault.open(Settings.from_env(env))
        with vault.unit(CTX) as session:
            customer = str(vault.customers.create(session, CustomerInput(first_name="Ada")).id)
        vault.close()
        agent = token(env, Role.SUPPORT_AGENT)
        admin = create_engine(cluster.url, isolation_level="AUTOCOMMIT")
        with serving(env, tmp_path) as server:
            with admin.connect() as conn:
                conn.execute(text(FAIL_AUDIT))
            refused = server.graphql(agent, "support", READ, {"id": customer})
            with admin.connect() as conn:
                conn.execute(text("DROP TRIGGER audit_fails ON audit_entries"))
            served = server.graphql(agent, "support", READ, {"id": customer})
        admin.dispose()

    assert code(refused) == UNAVAILABLE
    assert "data" not in refused.json()
    assert "Ada" not in refused.text
    assert served.json() == {"data": {"customer": {"firstName": "Ada"}}}


FAIL_AUDIT = """
CREATE FUNCTION audit_fails() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'no space for audit entries' USING ERRCODE = 'disk_full'; END $$;
CREATE TRIGGER audit_fails BEFORE INSERT ON audit_entries
FOR EACH ROW EXECUTE FUNCTION audit_fails();
"""
