"""kill -9 in the middle of an erasure (`cvault dsr process` of an erasure request).

Two points: after the customer went on the keyring's shred list and its data key was
destroyed, before the transaction committed (``erasure.shredded``); and after the
commit, before the purge of its interactions (``erasure.purge``). Afterwards readers see
the customer intact or erased, never INTERNAL, and `cvault erasure reapply` /
`cvault erasure purge` complete what the killed process left.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from consent import Privacy
from consent.dsr.desk import DsrInput
from policies import Role
from tests.processes import fault_env, kill, run_cli, start_cli, token, vault_env, wait_for_file
from tests.reliability.test_crashes import scalar_rows
from vault.authorization.context import AccessContext
from vault.config import Settings
from vault.customers import CustomerInput
from vault.interactions import InteractionInput
from vault.runtime import Vault

pytestmark = pytest.mark.processes

OPERATOR = AccessContext.system("dsr", purpose="compliance")
READ = "query($id: ID!) { customer(id: $id) { status firstName } }"


def erasure_request(env: Mapping[str, str]) -> tuple[uuid.UUID, uuid.UUID]:
    """A customer with a name and three interactions, and a verified erasure request."""
    vault = Vault.open(Settings.from_env(env))
    desk = Privacy.of(vault).desk
    try:
        with vault.unit(OPERATOR) as session:
            cid = vault.customers.create(session, CustomerInput(first_name="Grace")).id
            vault.interactions.record_many(
                session,
                [
                    InteractionInput("web", "page_view", datetime(2026, 11, d, tzinfo=UTC), cid)
                    for d in (1, 2, 3)
                ],
            )
            filed = desk.create(session, DsrInput("erasure", cid, None))
        with vault.unit(OPERATOR) as session:
            desk.verify(session, filed.request.id, filed.verification_token)
    finally:
        vault.close()
    return cid, filed.request.id


def kill_erasure_at(point: str, env: Mapping[str, str], folder: Path, request: uuid.UUID) -> None:
    announce = folder / "fault"
    process = start_cli(
        fault_env(env, point, announce), "dsr", "process", str(request), log=folder / "dsr.log"
    )
    try:
        assert wait_for_file(announce, process) == point
    finally:
        kill(process)


def read(env: Mapping[str, str], customer_id: uuid.UUID) -> dict[str, Any]:
    """`customer(id)` as a support agent, through the application a restarted server runs."""
    vault = Vault.open(Settings.from_env(env))
    with TestClient(create_app(vault, webhook_every=None)) as client:
        answer = client.post(
            "/graphql",
            json={"query": READ, "variables": {"id": str(customer_id)}},
            headers={
                "Authorization": f"Bearer {token(env, Role.SUPPORT_AGENT)}",
                "X-Purpose": "support",
            },
        )
    body: dict[str, Any] = answer.json()
    return body


ERASED = {"data": {"customer": {"status": "ERASED", "firstName": None}}}
INTACT = {"data": {"customer": {"status": "ACTIVE", "firstName": "Grace"}}}


def test_readers_never_get_internal_after_a_kill_between_shred_and_commit(
    tmp_path: Path, database_url: tuple[str, str | None]
) -> None:
    """Killed after the shred, before the commit: the customer reads as intact or as
    erased, never INTERNAL."""
    env = vault_env(tmp_path / "data", database_url)
    run_cli(env, "init")
    customer_id, request = erasure_request(env)
    kill_erasure_at("erasure.shredded", env, tmp_path, request)
    assert read(env, customer_id) in (INTACT, ERASED)


def test_erasure_reapply_completes_an_erasure_killed_between_shred_and_commit(
    tmp_path: Path, database_url: tuple[str, str | None]
) -> None:
    """Killed after the shred, before the commit: nothing of the transaction is stored
    (the customer is still live in the database, its data unreadable); `cvault erasure
    reapply` erases it again and purges its interactions; readers then see it erased."""
    env = vault_env(tmp_path / "data", database_url)
    run_cli(env, "init")
    customer_id, request = erasure_request(env)
    kill_erasure_at("erasure.shredded", env, tmp_path, request)
    assert scalar_rows(env, "SELECT status FROM customers") == ["active"]
    done = run_cli(env, "erasure", "reapply")
    assert "1 customers erased again, 3 interactions purged" in done.stdout
    assert read(env, customer_id) == ERASED
    assert scalar_rows(env, "SELECT count(*) FROM interactions") == [0]


def test_erasure_purge_completes_an_erasure_killed_before_its_purge(
    tmp_path: Path, database_url: tuple[str, str | None]
) -> None:
    """Killed after the commit, before the purge: readers see the customer erased; its
    three interactions wait; `cvault erasure purge` deletes them."""
    env = vault_env(tmp_path / "data", database_url)
    run_cli(env, "init")
    customer_id, request = erasure_request(env)
    kill_erasure_at("erasure.purge", env, tmp_path, request)
    assert read(env, customer_id) == ERASED
    assert scalar_rows(env, "SELECT count(*) FROM interactions") == [3]
    done = run_cli(env, "erasure", "purge")
    assert "3 interactions of erased customers deleted" in done.stdout
    assert scalar_rows(env, "SELECT count(*) FROM interactions") == [0]
