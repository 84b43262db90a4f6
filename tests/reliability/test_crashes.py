"""kill -9 in the middle of work: a server taking interaction batches, an import
mid-file. Afterwards every acknowledged batch is stored, no batch is stored in
part, the audit trail exports and verifies, and doing the work again adds nothing.

Each process is stopped at a named fault point (vault.faults: ``unit.commit:N``
is the N-th unit of work, written and about to commit) and only then killed, so the
kill lands at the same step every run.
"""

from __future__ import annotations

import csv
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import text

from policies import Role
from tests.conftest import CTX
from tests.processes import (
    Server,
    fault_env,
    kill,
    run_cli,
    start_cli,
    token,
    vault_env,
    wait_for_file,
)
from vault.config import Settings
from vault.customers import CustomerInput
from vault.runtime import Vault
from vault.storage.db import make_engine

pytestmark = pytest.mark.processes

RECORD = """mutation($items: [InteractionInput!]!) {
  recordInteractions(interactions: $items) { inserted duplicates } }"""
BATCH = 40


def scalar_rows(env: Mapping[str, str], sql: str) -> list[Any]:
    """The first column of ``sql`` run on the vault's database."""
    engine = make_engine(Settings.from_env(env).database_url)
    try:
        with engine.connect() as conn:
            return [row[0] for row in conn.execute(text(sql))]
    finally:
        engine.dispose()


def assert_audit_verifies(env: Mapping[str, str], folder: Path) -> None:
    """``cvault audit export`` then ``cvault audit verify`` against the vault's key: exit 0."""
    vault = Vault.open(Settings.from_env(env))
    try:
        (folder / "vault.vkey").write_text(vault.audit.public_vkey + "\n")
    finally:
        vault.close()
    trail = folder / "trail.jsonl"
    run_cli(env, "audit", "export", "-o", str(trail))
    vkey = str(folder / "vault.vkey")
    verified = run_cli(env, "audit", "verify", str(trail), "--public-key", vkey)
    assert "Traceback" not in verified.stdout + verified.stderr


def batch(customer_id: str, number: int) -> list[dict[str, Any]]:
    return [
        {
            "channel": "WEB",
            "type": "PAGE_VIEW",
            "occurredAt": f"2026-11-{1 + number:02d}T10:{i // 60:02d}:{i % 60:02d}Z",
            "customerId": customer_id,
            "externalId": f"crash-{number}-{i}",
        }
        for i in range(BATCH)
    ]


def test_kill_9_of_the_server_during_interaction_batches_loses_no_acknowledged_batch(
    tmp_path: Path, database_url: tuple[str, str | None]
) -> None:
    """A client sends batches of 40 interactions; the server is killed (SIGKILL) while
    the fourth batch is written and not yet committed. After a restart the three
    acknowledged batches are there whole, nothing of the fourth is; the client's retry
    of all four stores the fourth once and the rest as duplicates; the audit verifies."""
    env = vault_env(tmp_path / "data", database_url)
    run_cli(env, "init")
    vault = Vault.open(Settings.from_env(env))
    with vault.unit(CTX) as session:
        customer_id = str(vault.customers.create(session, CustomerInput(first_name="Ada")).id)
    vault.close()
    ingest = token(env, Role.INGEST_SERVICE)

    announce = tmp_path / "fault"
    server = Server(fault_env(env, "unit.commit:4", announce), tmp_path).start()
    acknowledged: list[int] = []
    failures: list[str] = []

    def client() -> None:
        for number in range(8):
            try:
                answer = server.graphql(
                    ingest, "service_delivery", RECORD, {"items": batch(customer_id, number)}
                )
            except requests.ConnectionError:
                failures.append(f"batch {number}: connection lost")
                return
            if answer.json().get("data", {}).get("recordInteractions") != {
                "inserted": BATCH,
                "duplicates": 0,
            }:
                failures.append(f"batch {number}: {answer.status_code} {answer.text[:200]}")
                return
            acknowledged.append(number)

    sender = threading.Thread(target=client)
    sender.start()
    assert server.process is not None
    assert wait_for_file(announce, server.process) == "unit.commit"
    server.kill()
    sender.join(timeout=30)

    assert (acknowledged, failures) == ([0, 1, 2], ["batch 3: connection lost"])
    stored = scalar_rows(env, "SELECT external_id FROM interactions")
    assert sorted(stored) == sorted(f"crash-{n}-{i}" for n in range(3) for i in range(BATCH))

    restarted = Server(env, tmp_path).start()
    try:
        retried = [
            restarted.graphql(ingest, "service_delivery", RECORD, {"items": batch(customer_id, n)})
            for n in range(4)
        ]
        answers = [r.json()["data"]["recordInteractions"] for r in retried]
    finally:
        restarted.stop()
    assert answers == [{"inserted": 0, "duplicates": BATCH}] * 3 + [
        {"inserted": BATCH, "duplicates": 0}
    ]
    assert scalar_rows(env, "SELECT count(*) FROM interactions") == [4 * BATCH]
    assert_audit_verifies(env, tmp_path)


def write_customers(path: Path, rows: int) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "first_name", "last_name", "source", "external_id"])
        for i in range(rows):
            writer.writerow([f"person{i}@example.org", f"First{i}", f"Last{i}", "crm", f"c{i}"])


def test_kill_9_of_an_import_mid_file_keeps_whole_batches_and_the_rerun_adds_nothing(
    tmp_path: Path, database_url: tuple[str, str | None]
) -> None:
    """`cvault import customers` of 1,200 rows (batches of 500) is killed while its
    second batch is written and not committed: exactly the first batch is stored. The
    same import run again stores the other 700 and reports 500 already present; a third
    run adds nothing; the audit trail verifies."""
    env = vault_env(tmp_path / "data", database_url)
    run_cli(env, "init")
    source = tmp_path / "customers.csv"
    write_customers(source, 1200)

    announce = tmp_path / "fault"
    importer = start_cli(
        fault_env(env, "unit.commit:2", announce),
        "import", "customers", str(source),
        log=tmp_path / "import.log",
    )  # fmt: skip
    try:
        assert wait_for_file(announce, importer) == "unit.commit"
    finally:
        kill(importer)
    assert scalar_rows(env, "SELECT count(*) FROM customers") == [500]
    refs = scalar_rows(env, "SELECT external_id FROM customer_external_ids")
    assert sorted(refs) == sorted(f"c{i}" for i in range(500))

    again = run_cli(env, "import", "customers", str(source))
    assert "1200 rows read, 700 accepted, 500 already present, 0 rejected" in again.stdout
    third = run_cli(env, "import", "customers", str(source))
    assert "1200 rows read, 0 accepted, 1200 already present, 0 rejected" in third.stdout
    assert scalar_rows(env, "SELECT count(*) FROM customers") == [1200]
    assert_audit_verifies(env, tmp_path)
