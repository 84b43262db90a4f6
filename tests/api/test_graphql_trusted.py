"""Trusted documents at the gateway (issue 16, item 3): documentId, Apollo's
persistedQuery, GET for queries only, and the off / allow / require rule.

Every test runs the real ASGI app over the ``vault`` fixture (SQLite and PostgreSQL);
documents are registered through the vault's store as `cvault documents register` does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from api.app import create_app
from api.auth import LocalTokenIssuer
from api.graphql.endpoint import RateLimiter
from api.graphql.schema import build_schema
from api.graphql.trusted import schema_checker
from policies import Role
from tests.conftest import CTX
from vault.authorization.context import AccessContext, Actor
from vault.config import Environment, TrustedDocuments
from vault.customers import CustomerInput
from vault.documents import parse_manifest
from vault.runtime import Vault
from vault.storage.models import CustomerRow

ISSUER = "customer-vault"
CUSTOMERS = "query Customers { customers(first: 5) { edges { node { firstName } } } }"
CREATE = "mutation Create($input: CustomerInput!) { createCustomer(input: $input) { customerId } }"
UNREGISTERED = "query Other { customers(first: 1) { edges { node { id } } } }"
OPERATOR = AccessContext(Actor("operator:test", "system"), "administration")
CHECK = schema_checker(build_schema()._schema)


def sha256(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


def md5(body: str) -> str:
    return hashlib.md5(body.encode(), usedforsecurity=False).hexdigest()


@dataclasses.dataclass
class Gateway:
    client: TestClient
    issuer: LocalTokenIssuer

    def headers(self, role: Role = Role.SUPPORT_AGENT, purpose: str = "support") -> dict[str, str]:
        token = self.issuer.issue(f"{role.value}-1", role)
        return {"Authorization": f"Bearer {token}", "X-Purpose": purpose}

    def post(self, body: dict[str, Any] | list[dict[str, Any]], **kw: Any) -> httpx2.Response:
        return self.client.post("/graphql", json=body, headers=self.headers(**kw))

    def get(self, params: dict[str, str], **kw: Any) -> httpx2.Response:
        return self.client.get("/graphql", params=params, headers=self.headers(**kw))


def register(vault: Vault, data: dict[str, Any]) -> None:
    with vault.unit(OPERATOR) as s:
        vault.documents.register(s, parse_manifest(json.dumps(data).encode()), CHECK)


def revoke(vault: Vault, document_id: str) -> None:
    with vault.unit(OPERATOR) as s:
        vault.documents.revoke(s, document_id)


def gateway_for(vault: Vault, tmp_path: Path, mode: TrustedDocuments | None, **app: Any) -> Gateway:
    """The app over the same database with CVAULT_TRUSTED_DOCUMENTS=mode (None: unset)."""
    settings = dataclasses.replace(vault.settings, trusted_documents_setting=mode)
    reopened = Vault.open(settings, keyring=vault.keyring, database=vault.db, clock=vault.clock)
    issuer = LocalTokenIssuer.load_or_create(tmp_path / "jwt.json", ISSUER, ISSUER)
    application = create_app(
        reopened, verifier=issuer.verifier(), local_issuer=issuer,
        rate_limiter=RateLimiter(10_000), **app,
    )  # fmt: skip
    return Gateway(TestClient(application), issuer)


@pytest.fixture
def seeded(vault: Vault) -> Vault:
    """One customer named in Persian, and two documents registered (a query under its
    MD5, as Relay names it; a mutation under sha256:)."""
    with vault.unit(CTX) as s:
        vault.customers.create(s, CustomerInput(first_name="مهسا"))
    register(vault, {md5(CUSTOMERS): CUSTOMERS, f"sha256:{sha256(CREATE)}": CREATE})
    return vault


def _code(response: httpx2.Response) -> tuple[int, str]:
    return response.status_code, response.json()["errors"][0]["extensions"]["code"]


def _customers(vault: Vault) -> int:
    with vault.db.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(CustomerRow)) or 0)


EXPECTED = {"data": {"customers": {"edges": [{"node": {"firstName": "مهسا"}}]}}}


# -- the default per environment ------------------------------------------------------------


def test_require_is_the_default_in_production_allow_elsewhere(vault: Vault) -> None:
    """Unset, the rule is require in production and allow in development and test; the
    setting overrides it; a bad value names the variable."""
    from vault.config import ConfigError, Settings  # noqa: PLC0415

    def mode(**env: str) -> TrustedDocuments:
        return Settings.from_env({"CVAULT_DATA_DIR": "/tmp/x", **env}).trusted_documents

    assert mode(CVAULT_ENV="production") is TrustedDocuments.REQUIRE
    assert mode(CVAULT_ENV="development") is TrustedDocuments.ALLOW
    assert mode(CVAULT_ENV="test") is TrustedDocuments.ALLOW
    assert mode(CVAULT_ENV="production", CVAULT_TRUSTED_DOCUMENTS="off") is TrustedDocuments.OFF
    with pytest.raises(ConfigError, match="CVAULT_TRUSTED_DOCUMENTS' must be one of: off, allow"):
        mode(CVAULT_TRUSTED_DOCUMENTS="sometimes")
    production = dataclasses.replace(vault.settings, environment=Environment.PRODUCTION)
    assert production.trusted_documents is TrustedDocuments.REQUIRE


# -- require --------------------------------------------------------------------------------


def test_require_runs_registered_documents_by_any_id(seeded: Vault, tmp_path: Path) -> None:
    """Under require a registered document runs by documentId (sha256:, bare hex, the
    Relay MD5), by Apollo's persistedQuery hash, and by its exact text."""
    gateway = gateway_for(seeded, tmp_path, TrustedDocuments.REQUIRE)
    apollo = {"persistedQuery": {"version": 1, "sha256Hash": sha256(CUSTOMERS)}}
    answers = [
        gateway.post({"documentId": f"sha256:{sha256(CUSTOMERS)}"}),
        gateway.post({"documentId": sha256(CUSTOMERS)}),
        gateway.post({"documentId": md5(CUSTOMERS)}),
        gateway.post({"extensions": apollo}),
        gateway.post({"query": CUSTOMERS}),
        gateway.post({"query": CUSTOMERS, "extensions": apollo}),
    ]
    assert [(a.status_code, a.json()) for a in answers] == [(200, EXPECTED)] * 6


def test_require_refuses_free_text_and_unknown_ids(seeded: Vault, tmp_path: Path) -> None:
    """Under require, text nobody registered is 400 TRUSTED_DOCUMENT_REQUIRED (also with
    a matching Apollo hash: nothing registers itself); an unknown id is 404
    PERSISTED_QUERY_NOT_FOUND with Apollo's message; nothing runs."""
    gateway = gateway_for(seeded, tmp_path, TrustedDocuments.REQUIRE)
    text = gateway.post({"query": UNREGISTERED})
    apq = gateway.post(
        {
            "query": UNREGISTERED,
            "extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256(UNREGISTERED)}},
        }
    )
    unknown = gateway.post({"documentId": f"sha256:{sha256(UNREGISTERED)}"})
    custom = gateway.post({"documentId": "x-ours:getCustomers"})
    assert _code(text) == (400, "TRUSTED_DOCUMENT_REQUIRED")
    assert "cvault documents register" in text.json()["errors"][0]["message"]
    assert _code(apq) == (400, "TRUSTED_DOCUMENT_REQUIRED")
    assert _code(unknown) == (404, "PERSISTED_QUERY_NOT_FOUND")
    assert unknown.json()["errors"][0]["message"] == "PersistedQueryNotFound"
    assert "data" not in unknown.json()
    assert _code(custom) == (404, "PERSISTED_QUERY_NOT_FOUND")


def test_a_document_registered_after_start_runs_at_once(seeded: Vault, tmp_path: Path) -> None:
    """A server already running serves a document registered after it loaded its cache:
    a miss reloads it."""
    gateway = gateway_for(seeded, tmp_path, TrustedDocuments.REQUIRE)
    before = gateway.post({"documentId": sha256(UNREGISTERED)})
    register(seeded, {sha256(UNREGISTERED): UNREGISTERED})
    after = gateway.post({"documentId": sha256(UNREGISTERED)})
    assert _code(before) == (404, "PERSISTED_QUERY_NOT_FOUND")
    assert (after.status_code, after.json()["data"]["customers"]["edges"][0]) == (
        200,
        {"node": {"id": after.json()["data"]["customers"]["edges"][0]["node"]["id"]}},
    )


def test_a_revoked_document_is_refused_after_the_refresh(seeded: Vault, tmp_path: Path) -> None:
    """Revoking (another process: the CLI) reaches the server at its next refresh: the
    document's id is then 404 and its text 400 under require."""
    gateway = gateway_for(seeded, tmp_path, TrustedDocuments.REQUIRE)
    before = gateway.post({"documentId": md5(CUSTOMERS)})
    revoke(seeded, md5(CUSTOMERS))
    endpoint = gateway.client.app.state.graphql  # type: ignore[attr-defined]
    assert endpoint.trusted.refresh() is True  # what the server's loop does every 2 s
    by_id = gateway.post({"documentId": md5(CUSTOMERS)})
    by_text = gateway.post({"query": CUSTOMERS})
    assert before.status_code == 200
    assert _code(by_id) == (404, "PERSISTED_QUERY_NOT_FOUND")
    assert _code(by_text) == (400, "TRUSTED_DOCUMENT_REQUIRED")


def test_the_server_loop_picks_a_revocation_up(seeded: Vault, tmp_path: Path) -> None:
    """With the app's lifespan running, a revocation made elsewhere reaches the server
    through its background refresh, without any request missing first."""
    gateway = gateway_for(seeded, tmp_path, TrustedDocuments.REQUIRE, policy_every=0.05)
    with gateway.client:
        assert gateway.post({"documentId": md5(CUSTOMERS)}).status_code == 200
        revoke(seeded, md5(CUSTOMERS))
        deadline = time.monotonic() + 30
        while gateway.post({"documentId": md5(CUSTOMERS)}).status_code == 200:
            assert time.monotonic() < deadline, "the revocation never reached the server"
            time.sleep(0.05)
        assert _code(gateway.post({"documentId": md5(CUSTOMERS)})) == (
            404, "PERSISTED_QUERY_NOT_FOUND"
        )  # fmt: skip


def test_registered_documents_are_parsed_once(
    seeded: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A registered document is parsed and validated on its first use only; later
    requests (by any of its ids, and after a reload) reuse the same AST."""
    parsed: list[str] = []
    from graphql import parse as real_parse  # noqa: PLC0415

    def counting_parse(source: str, **kwargs: Any) -> Any:
        parsed.append(source)
        return real_parse(source, **kwargs)

    monkeypatch.setattr("api.graphql.trusted.parse", counting_parse)
    gateway = gateway_for(seeded, tmp_path, TrustedDocuments.REQUIRE)
    endpoint = gateway.client.app.state.graphql  # type: ignore[attr-defined]
    for document_id in (md5(CUSTOMERS), sha256(CUSTOMERS), f"sha256:{sha256(CUSTOMERS)}"):
        assert gateway.post({"documentId": document_id}).status_code == 200
    first = endpoint.trusted._entries[sha256(CUSTOMERS)].document
    register(seeded, {sha256(UNREGISTERED): UNREGISTERED})
    assert endpoint.trusted.refresh() is True
    assert gateway.post({"documentId": md5(CUSTOMERS)}).status_code == 200
    assert parsed.count(CUSTOMERS) == 1  # (registering the other one parsed it, once)
    assert endpoint.trusted._entries[sha256(CUSTOMERS)].document is first


# -- allow and off --------------------------------------------------------------------------


def test_allow_runs_text_and_registered_ids(seeded: Vault, tmp_path: Path) -> None:
    """Under allow (development, tests) any text runs, a registered id runs, an unknown
    id is 404, and an Apollo hash sent with text must be that text's hash."""
    gateway = gateway_for(seeded, tmp_path, None)
    text = gateway.post({"query": UNREGISTERED})
    by_id = gateway.post({"documentId": md5(CUSTOMERS)})
    unknown = gateway.post({"documentId": sha256(UNREGISTERED)})
    apq = gateway.post(
        {
            "query": UNREGISTERED,
            "extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256(UNREGISTERED)}},
        }
    )
    mismatch = gateway.post(
        {
            "query": UNREGISTERED,
            "extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256(CUSTOMERS)}},
        }
    )
    assert (text.status_code, by_id.json()) == (200, EXPECTED)
    assert _code(unknown) == (404, "PERSISTED_QUERY_NOT_FOUND")
    assert apq.status_code == 200
    assert _code(mismatch) == (400, "PERSISTED_QUERY_HASH_MISMATCH")


def test_off_takes_text_only(seeded: Vault, tmp_path: Path) -> None:
    """Under off any text runs (an Apollo hash beside it is ignored) and a document id
    is 400 PERSISTED_QUERY_NOT_SUPPORTED."""
    gateway = gateway_for(seeded, tmp_path, TrustedDocuments.OFF)
    text = gateway.post({"query": CUSTOMERS})
    by_id = gateway.post({"documentId": md5(CUSTOMERS)})
    apollo_only = gateway.post(
        {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256(CUSTOMERS)}}}
    )
    assert text.json() == EXPECTED
    assert _code(by_id) == (400, "PERSISTED_QUERY_NOT_SUPPORTED")
    assert _code(apollo_only) == (400, "PERSISTED_QUERY_NOT_SUPPORTED")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"documentId": 7}, "documentId must be a string"),
        ({"extensions": {"persistedQuery": {"version": 2, "sha256Hash": "ab"}}}, "version 1"),
        ({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "xyz"}}}, "64 hex"),
        ({"extensions": []}, "extensions must be an object"),
        ({"variables": {}}, "send {query or documentId"),
    ],
)
def test_malformed_document_requests_are_400(
    seeded: Vault, tmp_path: Path, body: dict[str, Any], message: str
) -> None:
    """A document id of the wrong shape is 400 BAD_REQUEST saying what is expected."""
    response = gateway_for(seeded, tmp_path, TrustedDocuments.REQUIRE).post(body)
    assert _code(response) == (400, "BAD_REQUEST")
    assert message in response.json()["errors"][0]["message"]


# -- GET --------------------------------------------------------------------------------------


def test_get_runs_a_registered_query(seeded: Vault, tmp_path: Path) -> None:
    """GET /graphql?documentId=...&variables=... (the GraphQL-over-HTTP form, urql's and
    Relay's GET) and Apollo's ?extensions=... run a registered query; the answer may not
    be stored by any cache."""
    gateway = gateway_for(seeded, tmp_path, TrustedDocuments.REQUIRE)
    by_id = gateway.get({"documentId": f"sha256:{sha256(CUSTOMERS)}", "variables": "{}"})
    apollo = gateway.get(
        {
            "operationName": "Customers",
            "extensions": json.dumps(
                {"persistedQuery": {"version": 1, "sha256Hash": sha256(CUSTOMERS)}}
            ),
        }
    )
    assert (by_id.status_code, by_id.json()) == (200, EXPECTED)
    assert (apollo.status_code, apollo.json()) == (200, EXPECTED)
    assert by_id.headers["cache-control"] == "no-store"


def test_get_never_runs_a_mutation(seeded: Vault, tmp_path: Path) -> None:
    """A registered mutation over GET is 405 (Allow: POST) and writes nothing, under
    require and under allow, by id or as text; the same mutation over POST runs."""
    variables = json.dumps({"input": {"firstName": "Somchai สมชาย"}})
    refused = []
    for mode in (TrustedDocuments.REQUIRE, TrustedDocuments.ALLOW):
        gateway = gateway_for(seeded, tmp_path, mode)
        refused += [
            gateway.get(
                {"documentId": f"sha256:{sha256(CREATE)}", "variables": variables},
                role=Role.INGEST_SERVICE,
                purpose="service_delivery",
            ),
            gateway.get(
                {"query": CREATE, "variables": variables},
                role=Role.INGEST_SERVICE,
                purpose="service_delivery",
            ),
        ]
    posted = gateway.post(
        {"documentId": sha256(CREATE), "variables": json.loads(variables)},
        role=Role.INGEST_SERVICE,
        purpose="service_delivery",
    )
    assert [_code(r) for r in refused] == [(405, "METHOD_NOT_ALLOWED")] * 4
    assert {r.headers["allow"] for r in refused} == {"POST"}
    assert "POST" in refused[0].json()["errors"][0]["message"]
    created = posted.json()["data"]["createCustomer"]["customerId"]
    with seeded.unit(CTX) as s:
        assert seeded.customers.get(s, uuid.UUID(created)).first_name == "Somchai สมชาย"
    assert _customers(seeded) == 2  # the seeded one and the one POST created


def test_get_free_text_runs_under_allow_only(seeded: Vault, tmp_path: Path) -> None:
    """A free-text query over GET runs under allow; under require it is refused unless it
    is a registered document's exact text; under off GET runs nothing (405)."""
    allow = gateway_for(seeded, tmp_path, TrustedDocuments.ALLOW)
    require = gateway_for(seeded, tmp_path, TrustedDocuments.REQUIRE)
    off = gateway_for(seeded, tmp_path, TrustedDocuments.OFF)
    assert allow.get({"query": UNREGISTERED}).status_code == 200
    assert _code(require.get({"query": UNREGISTERED})) == (400, "TRUSTED_DOCUMENT_REQUIRED")
    assert require.get({"query": CUSTOMERS}).json() == EXPECTED
    assert _code(off.get({"query": CUSTOMERS})) == (405, "METHOD_NOT_ALLOWED")


def test_get_still_needs_a_token_and_a_purpose(seeded: Vault, tmp_path: Path) -> None:
    """A GET with no bearer token (what a cross-site page can send) is 401 and runs
    nothing; bad JSON in variables is 400; errors are not cached either."""
    gateway = gateway_for(seeded, tmp_path, TrustedDocuments.REQUIRE)
    anonymous = gateway.client.get("/graphql", params={"documentId": md5(CUSTOMERS)})
    bad = gateway.get({"documentId": md5(CUSTOMERS), "variables": "{not json"})
    assert _code(anonymous) == (401, "UNAUTHENTICATED")
    assert anonymous.headers["cache-control"] == "no-store"
    assert _code(bad) == (400, "BAD_REQUEST")


def test_post_keeps_its_content_type_rule(seeded: Vault, tmp_path: Path) -> None:
    """A persisted-document POST is still application/json only (a form post, which a
    cross-site page can send, is 415)."""
    gateway = gateway_for(seeded, tmp_path, TrustedDocuments.REQUIRE)
    form = gateway.client.post(
        "/graphql",
        content=f"documentId={sha256(CREATE)}",
        headers={**gateway.headers(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert _code(form) == (415, "UNSUPPORTED_MEDIA_TYPE")
    assert _customers(seeded) == 1


def test_batches_mix_ids_and_text_per_the_rule(seeded: Vault, tmp_path: Path) -> None:
    """A batch under allow may mix a registered id and text; each item follows the rule."""
    gateway = gateway_for(seeded, tmp_path, TrustedDocuments.ALLOW)
    response = gateway.post([{"documentId": md5(CUSTOMERS)}, {"query": CUSTOMERS}])
    assert (response.status_code, response.json()) == (200, [EXPECTED, EXPECTED])


def test_no_pii_of_a_refused_document_reaches_the_logs(seeded: Vault, tmp_path: Path) -> None:
    """Text refused under require, and a registered document refused at validation, leave
    no literal of theirs in a log line or the answer."""
    from structlog.testing import capture_logs  # noqa: PLC0415

    leaky = 'query Leak { customerByEmail(email: "jane.doe@example.org") { id } }'
    gateway = gateway_for(seeded, tmp_path, TrustedDocuments.REQUIRE)
    with capture_logs() as logs:
        refused = gateway.post({"query": leaky})
        bad_variable = gateway.post(
            {"documentId": md5(CUSTOMERS), "variables": {"x": "jane.doe@example.org"}}
        )
    assert _code(refused) == (400, "TRUSTED_DOCUMENT_REQUIRED")
    assert bad_variable.status_code == 200
    assert "jane" not in refused.text + json.dumps(logs, default=str)


def test_a_miss_finds_what_a_concurrent_miss_loaded(seeded: Vault, tmp_path: Path) -> None:
    """Two requests missing at once: the second one's reload finds nothing new (the
    first one loaded it meanwhile), and it still runs the document rather than 404."""
    import asyncio  # noqa: PLC0415
    from collections.abc import Callable  # noqa: PLC0415

    from api.graphql.trusted import DocumentRequest  # noqa: PLC0415

    gateway = gateway_for(seeded, tmp_path, TrustedDocuments.REQUIRE)
    registry = gateway.client.app.state.graphql.trusted  # type: ignore[attr-defined]
    reloads: list[bool] = []

    async def other_request_first(work: Callable[[], bool]) -> bool:
        reloads.append(registry.refresh())  # the concurrent miss, done first
        reloads.append(work())
        return reloads[-1]

    request = DocumentRequest.from_body({"documentId": md5(CUSTOMERS)})
    resolved = asyncio.run(registry.resolve(request, other_request_first))
    assert reloads == [True, False]
    assert resolved.text == CUSTOMERS


def test_refusals_raised_again_and_again_do_not_pile_up(seeded: Vault, tmp_path: Path) -> None:
    """The same refusal raised for request after request is a new exception each time:
    its traceback stays as long as the first one's (nothing of old requests is kept)."""
    import asyncio  # noqa: PLC0415
    from collections.abc import Callable  # noqa: PLC0415

    from api.graphql.problems import Problem  # noqa: PLC0415
    from api.graphql.trusted import DocumentRequest  # noqa: PLC0415

    gateway = gateway_for(seeded, tmp_path, TrustedDocuments.REQUIRE)
    registry = gateway.client.app.state.graphql.trusted  # type: ignore[attr-defined]

    async def inline(work: Callable[[], bool]) -> bool:
        return work()

    def depth(document_id: str) -> int:
        request = DocumentRequest.from_body({"documentId": document_id})
        with pytest.raises(Problem) as refused:
            asyncio.run(registry.resolve(request, inline))
        frames, tb = 0, refused.value.__traceback__
        while tb is not None:
            frames, tb = frames + 1, tb.tb_next
        return frames

    depths = [depth(sha256(UNREGISTERED)) for _ in range(3)]
    assert depths == [depths[0]] * 3
