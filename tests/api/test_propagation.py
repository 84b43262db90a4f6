"""Changes made by another process reach a running server (issue 17 item 1), in one
process: the application under test serves over the ``vault`` fixture; "another
process" is a second vault over the same database. Polling runs every 60 s in these
tests unless a test says otherwise, so on PostgreSQL only a notification explains a
change seen within the few seconds a test waits; on SQLite polling is the only way."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from starlette.testclient import TestClient

from api.app import create_app
from api.auth import LocalTokenIssuer
from api.graphql.schema import build_schema
from api.graphql.trusted import schema_checker
from api.propagation import Propagation
from policies import default_policy_lines
from tests.conftest import CTX
from vault.authorization.context import AccessContext, Actor
from vault.crypto import DecryptionError
from vault.customers import CustomerInput
from vault.documents import parse_manifest
from vault.runtime import Vault
from vault.storage.inuse import current_schema
from vault.storage.notify import application_name, channel_of

HIDE_EMAIL = "p, *, email, read:*, *, deny"
WAIT = 5.0  # seconds a test waits for a change; polling would take 60


def _eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {WAIT} s: {what}")
        time.sleep(0.01)


def _other(vault: Vault) -> Vault:
    """Another process's vault over the same database and keys."""
    return Vault.open(vault.settings, keyring=vault.keyring, database=vault.db, clock=vault.clock)


@pytest.fixture
def serving(vault: Vault, tmp_path: Path) -> Iterator[TestClient]:
    """The application with its background loops running (polling every 60 s)."""
    issuer = LocalTokenIssuer.load_or_create(tmp_path / "jwt.json", "customer-vault",
                                             "customer-vault")  # fmt: skip
    app = create_app(vault, verifier=issuer.verifier(), local_issuer=issuer,
                     policy_every=60.0, webhook_every=None)  # fmt: skip
    with TestClient(app) as client:
        changes: Propagation = app.state.changes
        if changes.listens:
            _eventually(lambda: _metric(client, "cvault_change_listener_connected") == 1,
                        "the listener connects")  # fmt: skip
        yield client


def _replace_policy(vault: Vault) -> int:
    with vault.unit(CTX) as s:
        return vault.policies.replace(s, [*default_policy_lines(), HIDE_EMAIL])


def test_a_policy_stored_elsewhere_is_in_force_without_waiting_for_the_poll(
    vault: Vault, serving: TestClient
) -> None:
    """PostgreSQL: a policy version stored by another process is in force here within a
    few seconds although the poll runs every 60 s (the NOTIFY); SQLite listens to
    nothing: the server is still at the version it loaded."""
    version = _replace_policy(_other(vault))
    if vault.db.dialect == "postgresql":
        _eventually(lambda: vault.policies.version == version, "the new policy version")
        assert "notify" in _applied(serving, "policy")
    else:
        time.sleep(0.5)
        assert vault.policies.version == 0
        assert _applied(serving, "policy") == set()


def test_an_erasure_elsewhere_drops_the_cached_key(vault: Vault, serving: TestClient) -> None:
    """PostgreSQL: a customer whose data key this process cached is erased by another
        process; the key leaves this process's cache at once (the NOTIFY). On SQLite the key
        stays cached, but the shared shred list refuses it on the next lookup (on both, no
    lookup hands it out again)."""
    with vault.unit(CTX) as s:
        cid = vault.customers.create(s, CustomerInput(first_name="Ngozi")).id
    assert vault.keys.cached == 1
    other = _other(vault)
    with other.unit(CTX) as s:
        other.erasure.erase(s, cid)
    if vault.db.dialect == "postgresql":
        _eventually(lambda: vault.keys.cached == 0, "the erased customer's key to leave")
        assert "notify" in _applied(serving, "erasure")
    else:
        assert vault.keys.cached == 1
    with vault.db.transaction() as s, pytest.raises(DecryptionError):
        vault.keys.get(s, cid)  # and never handed out again, on either database


def test_polling_is_the_fallback_and_sqlite_s_way(vault: Vault, tmp_path: Path) -> None:
    """With the listener off (CVAULT_LISTEN=off, or SQLite) and a poll every 0.05 s, a
    policy stored elsewhere is picked up by the poll, on both databases."""
    issuer = LocalTokenIssuer.load_or_create(tmp_path / "jwt.json", "customer-vault",
                                             "customer-vault")  # fmt: skip
    app = create_app(vault, verifier=issuer.verifier(), local_issuer=issuer,
                     policy_every=0.05, webhook_every=None, listen=False)  # fmt: skip
    with TestClient(app) as client:
        assert app.state.changes.listens is False
        version = _replace_policy(_other(vault))
        _eventually(lambda: vault.policies.version == version, "the polled policy")
        assert _applied(client, "policy") == {"poll"}


class Documents:
    """Stands for the trusted documents registry: counts its refreshes."""

    def __init__(self) -> None:
        self.refreshed = 0

    def refresh(self) -> bool:
        self.refreshed += 1
        return True


def test_a_full_refresh_catches_up_on_what_was_missed(vault: Vault) -> None:
    """What every (re)connect runs: the policy stored meanwhile is loaded, the trusted
    documents reloaded, and the whole data key cache emptied (an erasure may have gone
    unheard), on both databases."""
    documents = Documents()
    changes = Propagation(vault, documents, CollectorRegistry(), every=60.0, listen=False)
    with vault.unit(CTX) as s:
        vault.customers.create(s, CustomerInput(first_name="Søren"))
    version = _replace_policy(_other(vault))
    cached_before = vault.keys.cached
    asyncio.run(changes.refresh_all("reconnect"))
    assert (cached_before, vault.keys.cached) == (1, 0)
    assert vault.policies.version == version
    assert documents.refreshed == 1


def test_the_listener_comes_back_after_its_connection_is_cut(
    vault: Vault, serving: TestClient
) -> None:
    """PostgreSQL: the listener's connection is terminated by the server; the listener
    connects again (refreshing everything) and hears the next change."""
    if vault.db.dialect == "sqlite":
        assert serving.app.state.changes.listens is False  # type: ignore[attr-defined]
        return
    name = application_name(channel_of(current_schema(vault.db.engine)))
    with vault.db.engine.begin() as conn:
        cut = conn.scalar(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = :name"
            ),
            {"name": name},
        )
    assert cut == 1
    _eventually(lambda: _metric(serving, "cvault_change_listener_connects_total") == 2,
                "the listener to connect again")  # fmt: skip
    version = _replace_policy(_other(vault))
    _eventually(lambda: vault.policies.version == version, "the change after the reconnect")


def _metric(client: TestClient, name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _applied(client: TestClient, kind: str) -> set[str]:
    """The ``via`` labels under which changes of ``kind`` were applied (from /metrics)."""
    found = set()
    for line in client.get("/metrics").text.splitlines():
        counted = line.startswith("cvault_changes_applied_total{") and f'kind="{kind}"' in line
        if counted and float(line.rsplit(" ", 1)[1]) > 0:
            found.add(line.split('via="', 1)[1].split('"', 1)[0])
    return found


def test_trusted_documents_registered_elsewhere_are_reloaded_on_the_notify(
    vault: Vault, serving: TestClient
) -> None:
    """PostgreSQL: a manifest registered by another process (``cvault documents
    register``) is reloaded by the running server within a few seconds (polling every
    60 s); SQLite waits for its poll."""
    body = "query Customers { customers(first: 5) { edges { node { id } } } }"
    manifest = parse_manifest(json.dumps({hashlib.sha256(body.encode()).hexdigest(): body})
                              .encode())  # fmt: skip
    other = _other(vault)
    operator = AccessContext(Actor("operator:alice", "system"), "administration")
    with other.unit(operator) as s:
        other.documents.register(s, manifest, schema_checker(build_schema()._schema))
    if vault.db.dialect == "postgresql":
        _eventually(lambda: "notify" in _applied(serving, "documents"), "the documents reload")
    else:
        time.sleep(0.5)
        assert _applied(serving, "documents") == set()
