"""Rate limits that hold across processes (issue 17 item 2): two applications over one
database (two processes' worth of state each) share the per-token and failed-token
limits of GraphQL and the sign-in limits: through PostgreSQL's counters, or Redis when
``CVAULT_REDIS_URL`` is set. On SQLite without Redis each process counts alone."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

import httpx2
import pytest
import redis
from sqlalchemy import text
from starlette.testclient import TestClient

from api.app import create_app
from api.auth import LocalTokenIssuer
from api.graphql.ratelimit import RateLimiter, SharedRateLimiter, rate_limiter_for
from policies import Role
from tests.redis_store import require_redis
from vault.runtime import Vault
from vault.sign_in import SignInLimits
from vault.sign_in.errors import SignInLimited
from vault.storage.db import StorageUnavailable

ISSUER = "customer-vault"
CUSTOMERS = "{ customers(first: 1) { edges { node { id } } } }"
PER_MINUTE = 30  # a burst of 3 in any 6 seconds


def _pair(
    vault: Vault, tmp_path: Path, redis_url: str | None = None
) -> tuple[list[TestClient], Vault, str]:
    """Two applications over the vault's database and keys ("two processes"), each with
    the limiter the vault's settings call for; the last vault; the token's subject."""
    settings = dataclasses.replace(
        vault.settings, rate_limit_per_minute=PER_MINUTE, redis_url=redis_url
    )
    issuer = LocalTokenIssuer.load_or_create(tmp_path / "jwt.json", ISSUER, ISSUER)
    clients = []
    last = vault
    for _ in range(2):
        last = Vault.open(settings, keyring=vault.keyring, database=vault.db, clock=vault.clock)
        app = create_app(last, verifier=issuer.verifier(), local_issuer=issuer)
        clients.append(TestClient(app))
    subject = f"agent-{uuid.uuid4().hex[:8]}"  # one per test: Redis outlives the test
    clients[0].headers["Authorization"] = f"Bearer {issuer.issue(subject, Role.SUPPORT_AGENT)}"
    clients[1].headers["Authorization"] = clients[0].headers["Authorization"]
    return clients, last, subject


def _spread(clients: list[TestClient], n: int, **headers: str) -> list[int]:
    """``n`` requests, alternating between the two applications: their statuses."""
    answers: list[httpx2.Response] = [
        clients[i % 2].post(
            "/graphql", json={"query": CUSTOMERS}, headers={"X-Purpose": "support", **headers}
        )
        for i in range(n)
    ]
    return [a.status_code for a in answers]


def test_the_token_limit_holds_across_two_processes(vault: Vault, tmp_path: Path) -> None:
    """8 requests of one subject alternating between two applications, 30 a minute (a
    burst of 3): on PostgreSQL 3 answer 200 and the rest 429 with Retry-After, from both;
    on SQLite (one host, no Redis) each application counts alone, 3 each."""
    clients, _, _ = _pair(vault, tmp_path)
    statuses = _spread(clients, 8)
    if vault.db.dialect == "postgresql":
        assert statuses == [200, 200, 200, 429, 429, 429, 429, 429]
    else:
        assert statuses == [200, 200, 200, 200, 200, 200, 429, 429]


def test_the_token_limit_holds_across_two_processes_through_redis(
    vault: Vault, tmp_path: Path
) -> None:
    """With CVAULT_REDIS_URL, on either database: 3 of 8 alternating requests answer 200
    and the later ones 429 with a whole-second Retry-After of at least 1."""
    clients, last, _ = _pair(vault, tmp_path, redis_url=require_redis())
    statuses = _spread(clients, 8)
    limited = clients[1].post("/graphql", json={"query": CUSTOMERS},
                              headers={"X-Purpose": "support"})  # fmt: skip
    assert isinstance(rate_limiter_for(last), SharedRateLimiter)
    assert statuses == [200, 200, 200, 429, 429, 429, 429, 429]
    assert int(limited.headers["retry-after"]) >= 1


def test_the_failed_token_limit_holds_across_two_processes(vault: Vault, tmp_path: Path) -> None:
    """Bad tokens from one client, alternating between two applications, 30 a minute: on
    PostgreSQL 3 are answered 401 and the rest 429; on SQLite 3 per application."""
    clients, _, _ = _pair(vault, tmp_path)
    statuses = _spread(clients, 8, Authorization="Bearer not-a-token")
    if vault.db.dialect == "postgresql":
        assert statuses == [401, 401, 401, 429, 429, 429, 429, 429]
    else:
        assert statuses == [401, 401, 401, 401, 401, 401, 429, 429]


def test_stored_keys_are_keyed_digests_never_the_subject(vault: Vault, tmp_path: Path) -> None:
    """The shared store's keys name a keyed digest of the caller, never its subject (on
    PostgreSQL, the counters table; SQLite keeps no shared counters)."""
    clients, _, subject = _pair(vault, tmp_path)
    _spread(clients, 2)
    if vault.db.dialect == "sqlite":
        assert isinstance(rate_limiter_for(vault), RateLimiter)
        return
    with vault.db.engine.connect() as conn:
        keys = [str(k) for k in conn.scalars(text("SELECT key FROM rate_limit_counters"))]
    assert len(keys) == 2  # the burst and the minute window
    assert all(subject not in key and "graphql" in key for key in keys)


def test_an_unreachable_redis_answers_503_and_refuses_sign_in(vault: Vault, tmp_path: Path) -> None:
    """A Redis that cannot be reached fails closed: GraphQL answers 503
    SERVICE_UNAVAILABLE with Retry-After, a sign-in limit raises StorageUnavailable."""
    clients, last, _ = _pair(vault, tmp_path, redis_url="redis://127.0.0.1:1/0")
    answer = clients[0].post("/graphql", json={"query": CUSTOMERS},
                             headers={"X-Purpose": "support"})  # fmt: skip
    with pytest.raises(StorageUnavailable, match="rate limit store"):
        SignInLimits(storage=last.shared_limits).attempt("client-digest")
    assert answer.status_code == 503
    assert answer.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert answer.headers["retry-after"] == "1"


def _sign_in_pair(vault: Vault, storage_of: Vault) -> list[str]:
    """Code requests for one contact from many clients through two SignInLimits (two
    processes) over the vault's shared store, 3 per contact an hour."""
    limits = [SignInLimits(per_contact="3/hour", storage=storage_of.shared_limits)
              for _ in range(2)]  # fmt: skip
    contact = f"contact-{uuid.uuid4().hex}"
    outcomes = []
    for i in range(6):
        try:
            limits[i % 2].request(contact, f"client-{i}")
        except SignInLimited as exc:
            outcomes.append(exc.scope)
        else:
            outcomes.append("ok")
    assert vault.db.dialect in {"sqlite", "postgresql"}
    return outcomes


def test_sign_in_limits_hold_across_two_processes(vault: Vault) -> None:
    """3 code requests per contact an hour, asked through two processes: on PostgreSQL
    the fourth is refused (contact), whichever process it reaches; on SQLite each
    process counts alone."""
    outcomes = _sign_in_pair(vault, vault)
    if vault.db.dialect == "postgresql":
        assert outcomes == ["ok", "ok", "ok", "contact", "contact", "contact"]
    else:
        assert outcomes == ["ok", "ok", "ok", "ok", "ok", "ok"]


def test_sign_in_limits_hold_across_two_processes_through_redis(
    vault: Vault,
) -> None:
    """The same through Redis, on either database: the fourth request is refused."""
    redis_url = require_redis()
    with_redis = Vault.open(
        dataclasses.replace(vault.settings, redis_url=redis_url),
        keyring=vault.keyring, database=vault.db, clock=vault.clock,
    )  # fmt: skip
    outcomes = _sign_in_pair(vault, with_redis)
    assert outcomes == ["ok", "ok", "ok", "contact", "contact", "contact"]
    stored = redis.Redis.from_url(redis_url).keys("cvault*contact*")
    assert stored  # the contact's digest is counted under the vault's prefix
