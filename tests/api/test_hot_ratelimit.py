"""The shared rate limit rides on the hot profile read (issue 15: at most 2 round trips
per request). On PostgreSQL's counters table with the event-loop pool open, a hot
profile request's limit is hit by the read's own statement (one round trip: read and
limit; then the audit append); every other request hits it once by itself before any
work. Whichever way a request goes, the limit counts it exactly once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from starlette.testclient import TestClient

from api.app import create_app
from api.auth import LocalTokenIssuer
from policies import Role
from tests.api.test_graphql_compiled import (  # noqa: F401 - fixtures used by name
    BAD_FIRST,
    PROFILE,
    Harness,
    People,
    people,
)
from tests.api.test_graphql_hot import APPEND_ROUND_TRIPS, BY_EMAIL, BY_PHONE, round_trips
from tests.api.test_graphql_trusted import register
from tests.conftest import CTX
from vault.config import TrustedDocuments
from vault.customers import CustomerInput
from vault.runtime import Vault

ISSUER = "customer-vault"
AGENT = (Role.SUPPORT_AGENT, "support")
LISTING = "query Listing { customers(first: 2) { edges { node { id } } } }"
UNKNOWN = "00000000-0000-4000-8000-000000000000"

Open = Callable[[int], Harness]


@pytest.fixture
def limited(vault: Vault, tmp_path: Path) -> Iterator[Open]:
    """Opens the application over the vault's database (PostgreSQL) with its own shared
    limiter (``per_minute`` requests, a tenth of it in a burst) and its lifespan running."""
    if vault.db.dialect != "postgresql":
        pytest.skip("the counters table and the event-loop pool are PostgreSQL's")
    issuer = LocalTokenIssuer.load_or_create(tmp_path / "jwt.json", ISSUER, ISSUER)
    clients: list[TestClient] = []

    def open_app(per_minute: int) -> Harness:
        settings = dataclasses.replace(
            vault.settings,
            rate_limit_per_minute=per_minute,
            trusted_documents_setting=TrustedDocuments.ALLOW,
        )
        each = Vault.open(settings, keyring=vault.keyring, database=vault.db, clock=vault.clock)
        app = create_app(each, verifier=issuer.verifier(), local_issuer=issuer,
                         webhook_every=None, sequence_every=None, listen=False)  # fmt: skip
        client = TestClient(app)
        client.__enter__()  # the lifespan opens the event-loop pool
        clients.append(client)
        return Harness(client, app.state.graphql, issuer, vault)

    yield open_app
    for client in clients:
        client.__exit__(None, None, None)


def hits(vault: Vault) -> int:
    """Every hit the counters table holds (each allowed request: one in each window)."""
    with vault.db.engine.connect() as conn:
        return int(conn.execute(text("SELECT coalesce(sum(hits), 0) FROM rate_limit_counters"))
                   .scalar_one())  # fmt: skip


def headers(harness: Harness, role: Role = AGENT[0], purpose: str = AGENT[1]) -> dict[str, str]:
    token = harness.issuer.issue("caller-1", role)
    return {"Authorization": f"Bearer {token}", "X-Purpose": purpose}


def test_a_hot_profile_request_is_one_statement_then_its_audit_append(
    limited: Open,
    people: People,  # noqa: F811 - fixture
) -> None:
    """The profile on the event loop: one statement on its pool (the read with the
    limit's hit in it), the audit append, nothing else; each window counted once. The
    first request of a document the server has not parsed yet is counted before the
    parse (its own statement): 2 on the pool, once."""
    harness = limited(600)
    sent, moved = [], []
    for _ in range(3):
        before = hits(harness.vault)
        with round_trips(harness) as counts:
            reply = harness.client.post(
                "/graphql", json={"query": PROFILE, "variables": {"id": str(people.full)}},
                headers=headers(harness),
            )  # fmt: skip
        assert "errors" not in reply.json()
        assert reply.json()["data"]["customer"]["firstName"] == "زهرا"
        sent.append(counts)
        moved.append(hits(harness.vault) - before)
    # The audit append goes on the event-loop pool too (the loop's group commit).
    read_and_limit = {"pool": 1 + APPEND_ROUND_TRIPS, "engine": 0}
    assert sent == [{"pool": 2 + APPEND_ROUND_TRIPS, "engine": 0}, read_and_limit, read_and_limit]
    assert moved == [2, 2, 2]  # a hit in the burst window and one in the minute window


def test_a_hot_lookup_carries_the_limit_too(
    limited: Open,
    people: People,  # noqa: F811 - fixture
) -> None:
    """``customerByEmail`` and ``customerByPhone`` on the event loop: once their documents
    are known, one statement (lookup and limit), then the audit append; one hit each."""
    harness = limited(600)
    sent, moved = [], []
    for query, variables in (
        (BY_EMAIL, {"email": "zahra.karimi@example.ir"}),
        (BY_PHONE, {"phone": "+989123456789"}),
    ):
        body = {"query": query, "variables": variables}
        harness.client.post("/graphql", json=body, headers=headers(harness))  # parsed
        before = hits(harness.vault)
        with round_trips(harness) as counts:
            reply = harness.client.post("/graphql", json=body, headers=headers(harness))
        assert "errors" not in reply.json()
        sent.append(counts)
        moved.append(hits(harness.vault) - before)
    assert sent == [{"pool": 1 + APPEND_ROUND_TRIPS, "engine": 0}] * 2
    assert moved == [2, 2]


def test_at_the_limit_a_hot_request_is_refused_and_reads_nothing(
    limited: Open,
    people: People,  # noqa: F811 - fixture
) -> None:
    """10 a minute (a burst of 1): the second hot request is 429 RATE_LIMITED with a
    Retry-After, no data, no ``pii.access`` entry; its one statement counted nothing."""
    harness = limited(10)
    variables = {"id": str(people.full)}
    status, _body, audit = harness.post(PROFILE, variables, *AGENT, compiled=True)
    assert status == 200
    assert "pii.access" in [e["action"] for e in audit]
    before = hits(harness.vault)
    with round_trips(harness) as counts:
        reply = harness.client.post(
            "/graphql", json={"query": PROFILE, "variables": variables}, headers=headers(harness)
        )
    assert reply.status_code == 429
    assert reply.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert int(reply.headers["retry-after"]) >= 1
    assert "data" not in reply.json()
    assert "Zahra" not in reply.text
    assert counts["pool"] == 1
    assert hits(harness.vault) == before
    status, _body, audit = harness.post(PROFILE, variables, *AGENT, compiled=True)
    assert (status, [e["action"] for e in audit if e["action"] == "pii.access"]) == (429, [])


def test_every_way_a_request_goes_it_is_counted_once(
    limited: Open,
    people: People,  # noqa: F811 - fixture
    vault: Vault,
) -> None:
    """A hot request, hot requests that fall back after their statement (an unknown id,
    a merged customer, a restricted one for marketing), one the hot path declines before
    (an invalid ``first``), a non-hot document, a batch of two operations, a GET of a
    trusted document: each HTTP request moves the counters by one hit per window."""
    harness = limited(600)
    with vault.unit(CTX) as s:
        gone = vault.customers.create(s, CustomerInput(first_name="Ana", last_name="Nguyễn"))
        vault.customers.merge(s, people.bare, gone.id)
    digest = hashlib.sha256(PROFILE.encode()).hexdigest()
    register(vault, {f"sha256:{digest}": PROFILE})
    one = {"query": PROFILE, "variables": {"id": str(people.full)}}
    trusted = {"documentId": f"sha256:{digest}", "variables": json.dumps(one["variables"])}
    restricted = {"query": PROFILE, "variables": {"id": str(people.restricted)}}
    marketing = (Role.MARKETING, "marketing_email")
    requests = {
        "hot": ("post", one, AGENT),
        "unknown id": ("post", {"query": PROFILE, "variables": {"id": UNKNOWN}}, AGENT),
        "merged": ("post", {"query": PROFILE, "variables": {"id": str(gone.id)}}, AGENT),
        "restricted": ("post", restricted, marketing),
        "invalid first": ("post", {"query": BAD_FIRST, "variables": one["variables"]}, AGENT),
        "not hot": ("post", {"query": LISTING}, AGENT),
        "batch of 2": ("post", [one, {"query": LISTING}], AGENT),
        "GET trusted": ("get", trusted, AGENT),
    }
    moved = {}
    for name, (method, body, (role, purpose)) in requests.items():
        before = hits(vault)
        if method == "get":
            assert isinstance(body, dict)
            reply = harness.client.get("/graphql", params=body,
                                       headers=headers(harness, role, purpose))  # fmt: skip
        else:
            reply = harness.client.post("/graphql", json=body,
                                        headers=headers(harness, role, purpose))  # fmt: skip
        assert reply.status_code == 200, name
        moved[name] = hits(vault) - before
    assert dict.fromkeys(requests, 2) == moved


def test_refusals_before_the_document_still_count_once_and_429_comes_first(
    limited: Open,
    people: People,  # noqa: F811 - fixture
    vault: Vault,
) -> None:
    """An unknown purpose and a document that does not validate are counted once each;
    at the limit they are 429, before their own refusal, and no ``access.denied`` entry
    is written for the refused caller."""
    harness = limited(20)  # a burst of 2
    before = hits(vault)
    unknown = harness.client.post("/graphql", json={"query": LISTING},
                                  headers=headers(harness, purpose="nope"))  # fmt: skip
    invalid = harness.client.post("/graphql", json={"query": "{ nothing }"},
                                  headers=headers(harness))  # fmt: skip
    assert (unknown.status_code, invalid.status_code, hits(vault) - before) == (400, 400, 4)
    status, _body, audit = harness.post(LISTING, None, Role.SUPPORT_AGENT, "nope", compiled=True)
    assert (status, audit) == (429, [])
    invalid = harness.client.post("/graphql", json={"query": "{ nothing }"},
                                  headers=headers(harness))  # fmt: skip
    assert invalid.status_code == 429


def test_the_limit_holds_across_two_applications_on_the_hot_path(
    limited: Open,
    people: People,  # noqa: F811 - fixture
) -> None:
    """8 hot profile requests alternating between two applications, 30 a minute (a burst
    of 3), each counted by its read's statement: 3 answer 200, the rest 429."""
    apps = [limited(30), limited(30)]
    body = {"query": PROFILE, "variables": {"id": str(people.full)}}
    answers = [
        apps[i % 2].client.post("/graphql", json=body, headers=headers(apps[i % 2]))
        for i in range(8)
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429, 429, 429, 429]


def test_a_hot_request_still_sweeps_expired_counters(
    limited: Open,
    people: People,  # noqa: F811 - fixture
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When the sweep is due, a hot request (its hit carried by the read) deletes the
    counters that expired, as a hit sent alone does."""
    harness = limited(600)
    body = {"query": PROFILE, "variables": {"id": str(people.full)}}
    harness.client.post("/graphql", json=body, headers=headers(harness))  # parsed: now hot
    with vault_engine(harness).begin() as conn:
        conn.execute(text("INSERT INTO rate_limit_counters (key, hits, expires_at) "
                          "VALUES ('expired', 1, 1.0)"))  # fmt: skip
    monkeypatch.setattr("vault.storage.counters._SWEEP_EVERY", 0.0)
    with round_trips(harness) as counts:
        reply = harness.client.post("/graphql", json=body, headers=headers(harness))
    with vault_engine(harness).connect() as conn:
        left = conn.execute(text("SELECT count(*) FROM rate_limit_counters "
                                 "WHERE key = 'expired'")).scalar_one()  # fmt: skip
    assert (reply.status_code, counts["pool"], left) == (200, 1 + APPEND_ROUND_TRIPS, 0)


def vault_engine(harness: Harness) -> Engine:
    return harness.vault.db.engine
