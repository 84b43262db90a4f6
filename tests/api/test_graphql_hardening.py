"""Hardening of POST /graphql (issue 3, items 3, 4 and 6): each rule gets the bad request.

Every test builds the real ASGI app over the ``vault`` fixture (SQLite and
PostgreSQL) and talks to it through Starlette's test client with tokens from a
local issuer.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from graphql import get_introspection_query
from sqlalchemy import func, select
from starlette.testclient import TestClient

from api.app import create_app
from api.auth import LocalTokenIssuer
from api.graphql import limits as limits_module
from api.graphql.endpoint import RateLimiter
from api.graphql.limits import Limits
from policies import Role
from tests.conftest import CTX
from vault.config import Environment, TrustedDocuments
from vault.customers import CustomerInput
from vault.runtime import Vault
from vault.storage.models import AuditEntryRow, CustomerRow

ISSUER = "customer-vault"
UNAUTHENTICATED = {
    "errors": [{"message": "invalid or missing token", "extensions": {"code": "UNAUTHENTICATED"}}]
}
CUSTOMERS = "{ customers(first: 5) { edges { node { id firstName } } } }"


@dataclasses.dataclass
class Gateway:
    """The app under test, a client for it and the issuer of its tokens."""

    client: TestClient
    issuer: LocalTokenIssuer

    def token(self, role: Role = Role.SUPPORT_AGENT, sub: str = "agent-1") -> str:
        customer_id = uuid.uuid4() if role is Role.DATA_SUBJECT else None
        return self.issuer.issue(sub, role, customer_id=customer_id)

    def headers(
        self, role: Role = Role.SUPPORT_AGENT, purpose: str | None = "support", sub: str = "agent-1"
    ) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token(role, sub)}"}
        if purpose is not None:
            headers["X-Purpose"] = purpose
        return headers

    def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        role: Role = Role.SUPPORT_AGENT,
        purpose: str = "support",
        sub: str = "agent-1",
    ) -> httpx2.Response:
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        return self.client.post("/graphql", json=body, headers=self.headers(role, purpose, sub))


def _issuer(tmp_path: Path, name: str = "jwt.json") -> LocalTokenIssuer:
    return LocalTokenIssuer.load_or_create(tmp_path / name, ISSUER, ISSUER)


def _gateway(
    vault: Vault,
    tmp_path: Path,
    *,
    limits: Limits | None = None,
    rate_limiter: RateLimiter | None = None,
) -> Gateway:
    issuer = _issuer(tmp_path)
    app = create_app(
        vault,
        verifier=issuer.verifier(),
        local_issuer=issuer,
        limits=limits,
        rate_limiter=rate_limiter or RateLimiter(10_000),
    )
    return Gateway(TestClient(app), issuer)


def _reopened(vault: Vault, **changes: Any) -> Vault:
    """The same database and keys under changed settings (environment, limits, CORS)."""
    return Vault.open(
        dataclasses.replace(vault.settings, **changes),
        keyring=vault.keyring,
        database=vault.db,
        clock=vault.clock,
    )


@pytest.fixture
def gateway(vault: Vault, tmp_path: Path) -> Gateway:
    return _gateway(vault, tmp_path)


def _code(response: httpx2.Response) -> tuple[int, str]:
    return response.status_code, response.json()["errors"][0]["extensions"]["code"]


def _audit(vault: Vault, action: str) -> list[dict[str, Any]]:
    with vault.db.transaction() as s:
        rows = s.scalars(
            select(AuditEntryRow.canonical)
            .where(AuditEntryRow.action == action)
            .order_by(AuditEntryRow.id)
        ).all()
    return [json.loads(r) for r in rows]


def _root(body: dict[str, Any], field: str) -> Any:
    """A root field of the response: null when the field or the whole data is null (a
    refused mutation is null either way, whichever nullability the schema gives it)."""
    return (body.get("data") or {}).get(field)


def _customer_count(vault: Vault) -> int:
    with vault.db.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(CustomerRow)) or 0)


# -- authentication (401) ---------------------------------------------------------------


def test_missing_garbage_foreign_and_expired_tokens_get_one_identical_401(
    gateway: Gateway, tmp_path: Path
) -> None:
    """No token, a garbage token, a token signed by another key and an expired token all
    get HTTP 401, code UNAUTHENTICATED and byte-identical bodies: nothing tells an attacker
    which check failed."""
    past = datetime.now(UTC) - timedelta(hours=3)
    expired = gateway.issuer.issue("agent-1", Role.SUPPORT_AGENT, ttl=timedelta(hours=1), now=past)
    foreign = _issuer(tmp_path, "other.json").issue("agent-1", Role.SUPPORT_AGENT)
    attempts: list[dict[str, str]] = [
        {"X-Purpose": "support"},
        {"X-Purpose": "support", "Authorization": "Bearer not.a.jwt"},
        {"X-Purpose": "support", "Authorization": "Basic YWRtaW46YWRtaW4="},
        {"X-Purpose": "support", "Authorization": f"Bearer {foreign}"},
        {"X-Purpose": "support", "Authorization": f"Bearer {expired}"},
    ]
    responses = [
        gateway.client.post("/graphql", json={"query": CUSTOMERS}, headers=h) for h in attempts
    ]
    assert [r.status_code for r in responses] == [401] * len(attempts)
    assert {r.content for r in responses} == {responses[0].content}
    assert responses[0].json() == UNAUTHENTICATED
    assert [r.headers.get("www-authenticate") for r in responses] == ["Bearer"] * len(attempts)


def test_a_token_failure_is_audited_without_the_token(vault: Vault, gateway: Gateway) -> None:
    """Each refused token writes one auth.token_failure entry (actor anonymous, outcome
    denied) that carries neither the token nor anything from it."""
    garbage = "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJtYWxsb3J5In0.c2ln"
    response = gateway.client.post(
        "/graphql",
        json={"query": CUSTOMERS},
        headers={"Authorization": garbage, "X-Purpose": "support"},
    )
    entries = _audit(vault, "auth.token_failure")
    assert response.status_code == 401
    assert [(e["actor"], e["role"], e["outcome"], e["customer"]) for e in entries] == [
        ("anonymous", "none", "denied", None)
    ]
    assert "eyJ" not in json.dumps(entries)
    assert "mallory" not in json.dumps(entries)


def test_introspection_needs_a_token(gateway: Gateway) -> None:
    """Introspection is for authenticated callers only: without a token it is a 401; with
    one (outside production) it answers."""
    query = "{ __schema { types { name } } }"
    anonymous = gateway.client.post("/graphql", json={"query": query})
    signed_in = gateway.post(query)
    assert _code(anonymous) == (401, "UNAUTHENTICATED")
    assert signed_in.status_code == 200
    assert "Customer" in {t["name"] for t in signed_in.json()["data"]["__schema"]["types"]}


# -- purpose (400 / 403) ----------------------------------------------------------------


@pytest.mark.parametrize("purpose", [None, "", "   "])
def test_a_missing_purpose_is_400_purpose_required(gateway: Gateway, purpose: str | None) -> None:
    """A request without an X-Purpose header (or with an empty one) is refused with 400
    PURPOSE_REQUIRED before anything is read."""
    headers = gateway.headers(purpose=None)
    if purpose is not None:
        headers["X-Purpose"] = purpose
    response = gateway.client.post("/graphql", json={"query": CUSTOMERS}, headers=headers)
    assert _code(response) == (400, "PURPOSE_REQUIRED")
    assert response.json()["errors"][0]["message"] == "name the purpose in the X-Purpose header"


def test_an_unknown_purpose_is_400_and_audited_without_echo(vault: Vault, gateway: Gateway) -> None:
    """A purpose outside the registry is 400 UNKNOWN_PURPOSE; the refusal is audited as
    purpose 'unknown', never with the header's text."""
    response = gateway.post(CUSTOMERS, purpose="gossip_about_jane")
    denials = _audit(vault, "access.denied")
    assert _code(response) == (400, "UNKNOWN_PURPOSE")
    assert "gossip" not in response.text
    assert [(d["purpose"], d["outcome"], d["detail"]) for d in denials] == [
        ("unknown", "denied", {"stage": "purpose"})
    ]
    assert "gossip" not in json.dumps(denials)


# -- method and media type (405 / 415) --------------------------------------------------


@pytest.mark.parametrize("accept", ["application/json", "*/*", "text/html"])
def test_get_is_405_when_trusted_documents_are_off(
    vault: Vault, tmp_path: Path, accept: str
) -> None:
    """With CVAULT_TRUSTED_DOCUMENTS=off, GET /graphql never runs an operation: 405 with
    Allow: POST. Outside development mode even a browser (Accept: text/html) gets no
    GraphiQL page. (GET of registered queries: tests/api/test_graphql_trusted.py.)"""
    off = _gateway(_reopened(vault, trusted_documents_setting=TrustedDocuments.OFF), tmp_path)
    response = off.client.get(
        "/graphql",
        params={"query": CUSTOMERS},
        headers={**off.headers(), "Accept": accept},
    )
    assert _code(response) == (405, "METHOD_NOT_ALLOWED")
    assert response.headers["allow"] == "POST"


def test_graphiql_is_served_only_in_development(vault: Vault, tmp_path: Path) -> None:
    """In development mode a browser GET gets GraphiQL; a GET for JSON that names no
    document is still 405."""
    development = _gateway(_reopened(vault, environment=Environment.DEVELOPMENT), tmp_path)
    page = development.client.get("/graphql", headers={"Accept": "text/html"})
    api = development.client.get(
        "/graphql", headers={**development.headers(), "Accept": "application/json"}
    )
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "graphiql" in page.text.lower()
    assert _code(api) == (405, "METHOD_NOT_ALLOWED")


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "text/plain",
        "application/graphql",
    ],
)
def test_a_non_json_body_is_415_and_runs_nothing(
    vault: Vault, gateway: Gateway, content_type: str
) -> None:
    """A form-encoded, multipart or text body (what a cross-site form can send without a
    preflight) is 415 UNSUPPORTED_MEDIA_TYPE, and the mutation in it does not run."""
    mutation = 'mutation { createCustomer(input: {tier: "csrf"}) { id } }'
    bodies = {
        "application/x-www-form-urlencoded": f"query={mutation}",
        "multipart/form-data; boundary=xyz": (
            f'--xyz\r\nContent-Disposition: form-data; name="query"\r\n\r\n{mutation}\r\n--xyz--'
        ),
        "text/plain": json.dumps({"query": mutation}),
        "application/graphql": mutation,
    }
    response = gateway.client.post(
        "/graphql",
        content=bodies[content_type].encode(),
        headers={
            **gateway.headers(Role.INGEST_SERVICE, "service_delivery"),
            "Content-Type": content_type,
        },
    )
    assert _code(response) == (415, "UNSUPPORTED_MEDIA_TYPE")
    assert _customer_count(vault) == 0


# -- body (413 / 400) -------------------------------------------------------------------


def test_a_body_over_the_limit_is_413_whether_declared_or_streamed(
    vault: Vault, tmp_path: Path
) -> None:
    """With max_body_bytes=2048 a larger body is 413 PAYLOAD_TOO_LARGE, both when its
    Content-Length says so and when it arrives in chunks without one; a body under the
    limit runs."""
    gateway = _gateway(_reopened(vault, max_body_bytes=2048), tmp_path)
    padding = " " * 3000
    big = json.dumps({"query": CUSTOMERS + padding}).encode()
    small = json.dumps({"query": CUSTOMERS + " " * 1000}).encode()
    headers = {**gateway.headers(), "Content-Type": "application/json"}

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 512):
            yield big[start : start + 512]

    declared = gateway.client.post("/graphql", content=big, headers=headers)
    streamed = gateway.client.post("/graphql", content=chunks(), headers=headers)
    under = gateway.client.post("/graphql", content=small, headers=headers)
    assert _code(declared) == (413, "PAYLOAD_TOO_LARGE")
    assert _code(streamed) == (413, "PAYLOAD_TOO_LARGE")
    assert "content-length" not in streamed.request.headers
    assert (under.status_code, under.json()) == (200, {"data": {"customers": {"edges": []}}})


@pytest.mark.parametrize(
    "body",
    [b'{"query": "{ customers { edges { node { id } } } }"', b"not json", b"\xff\xfe{}"],
)
def test_malformed_json_is_400_bad_request(gateway: Gateway, body: bytes) -> None:
    """A body that is not JSON is 400 BAD_REQUEST."""
    response = gateway.client.post(
        "/graphql", content=body, headers={**gateway.headers(), "Content-Type": "application/json"}
    )
    assert _code(response) == (400, "BAD_REQUEST")
    assert response.json()["errors"][0]["message"] == "the body is not JSON"


@pytest.mark.parametrize(
    "payload",
    [
        42,
        "{ customers { edges { node { id } } } }",
        {"query": 7},
        {"query": CUSTOMERS, "variables": ["x"]},
        {"query": CUSTOMERS, "operationName": 3},
    ],
)
def test_json_that_is_not_a_graphql_request_is_400(gateway: Gateway, payload: object) -> None:
    """JSON that is not {query, variables?, operationName?} of the right types is 400
    BAD_REQUEST."""
    response = gateway.client.post("/graphql", json=payload, headers=gateway.headers())
    assert _code(response) == (400, "BAD_REQUEST")


# -- documents (400) --------------------------------------------------------------------


def test_a_parse_error_is_400_graphql_parse_failed(gateway: Gateway) -> None:
    """A document that does not parse is 400 GRAPHQL_PARSE_FAILED."""
    response = gateway.post("{ customers(first: 5) { edges { node { id } }")
    assert _code(response) == (400, "GRAPHQL_PARSE_FAILED")


def test_an_unknown_field_is_400_validation_failed_without_suggestion(gateway: Gateway) -> None:
    """A field the schema does not have is 400 GRAPHQL_VALIDATION_FAILED; the message names
    the field but suggests no real one."""
    response = gateway.post("{ customers { edges { node { emial } } } }")
    assert _code(response) == (400, "GRAPHQL_VALIDATION_FAILED")
    assert response.json()["errors"][0]["message"] == (
        "Cannot query field 'emial' on type 'Customer'."
    )


def test_production_hides_suggestions_and_refuses_introspection(
    vault: Vault, tmp_path: Path
) -> None:
    """In production mode a validation error carries no 'Did you mean' hint, and
    introspection (__schema, __type) is refused with 400 even for a valid token (free
    text allowed here, as with CVAULT_TRUSTED_DOCUMENTS=allow, to reach validation)."""
    production = _gateway(
        _reopened(
            vault,
            environment=Environment.PRODUCTION,
            trusted_documents_setting=TrustedDocuments.ALLOW,
        ),
        tmp_path,
    )
    typo = production.post("{ customers { edges { node { emial firstNme } } } }")
    schema = production.post("{ __schema { types { name } } }")
    one_type = production.post('{ __type(name: "Customer") { fields { name } } }')
    assert _code(typo) == (400, "GRAPHQL_VALIDATION_FAILED")
    assert "Did you mean" not in typo.text
    assert "'email'" not in typo.text
    assert "'firstName'" not in typo.text
    assert _code(schema) == (400, "GRAPHQL_VALIDATION_FAILED")
    assert _code(one_type) == (400, "GRAPHQL_VALIDATION_FAILED")
    assert "introspection" in schema.json()["errors"][0]["message"].lower()


def _of_types(levels: int) -> str:
    return "".join("ofType { " for _ in range(levels)) + "name" + " }" * levels


def test_a_deep_query_is_refused_even_through_nested_fragments(gateway: Gateway) -> None:
    """Depth counts through fragments: introspection nested 29 levels deep, spread over
    three fragments none of which is deep itself, is 400 QUERY_TOO_COMPLEX under the
    default limits; the same shape 10 levels deep runs."""

    def query(levels: int) -> str:
        return (
            "query { __schema { ...S } } "
            "fragment S on __Schema { types { ...T } } "
            "fragment T on __Type { fields { type { ...R } } } "
            f"fragment R on __Type {{ {_of_types(levels)} }}"
        )

    too_deep = gateway.post(query(25))
    shallow = gateway.post(query(5))
    assert _code(too_deep) == (400, "QUERY_TOO_COMPLEX")
    assert "deeper" in too_deep.json()["errors"][0]["message"]
    assert shallow.status_code == 200
    assert "errors" not in shallow.json()


def test_the_standard_introspection_query_is_answered(gateway: Gateway) -> None:
    """Outside production an authenticated caller's standard introspection query (what
    GraphiQL and client code generators send) returns the schema."""
    response = gateway.post(get_introspection_query(descriptions=True))
    assert response.status_code == 200
    assert response.json()["data"]["__schema"]["queryType"]["name"] == "Query"


def test_depth_counts_through_fragments_on_the_data_schema(vault: Vault, tmp_path: Path) -> None:
    """With max_depth=6, customers > edges > node > interactions > edges > node > type
    (7 levels) split across fragments is refused; 6 levels run."""
    gateway = _gateway(vault, tmp_path, limits=Limits(max_depth=6))
    deep = (
        "query { customers { ...A } } "
        "fragment A on CustomerConnection { edges { ...B } } "
        "fragment B on CustomerEdge { node { ...C } } "
        "fragment C on Customer { interactions { edges { node { type } } } }"
    )
    shallow = (
        "query { customers { ...A } } "
        "fragment A on CustomerConnection { edges { ...B } } "
        "fragment B on CustomerEdge { node { ...C } } "
        "fragment C on Customer { interactions { edges { cursor } } }"
    )
    assert _code(gateway.post(deep)) == (400, "QUERY_TOO_COMPLEX")
    assert gateway.post(shallow).json() == {"data": {"customers": {"edges": []}}}


def _aliases(count: int) -> str:
    return " ".join(f"e{i}: email" for i in range(count))


def test_aliases_hidden_in_fragments_count_toward_the_limit(gateway: Gateway) -> None:
    """At most 15 aliases: 2 aliased roots each spreading a fragment of 7 aliases (16 in
    all, no single part over the limit) is 400 QUERY_TOO_COMPLEX; exactly 15 run."""
    over = (
        "query($id: ID!) { a: customer(id: $id) { ...F } b: customer(id: $id) { ...F } } "
        f"fragment F on Customer {{ {_aliases(7)} }}"
    )
    inline = f"query($id: ID!) {{ customer(id: $id) {{ ... on Customer {{ {_aliases(16)} }} }} }}"
    at_limit = (
        "query($id: ID!) { a: customer(id: $id) { ...F z: id } b: customer(id: $id) { ...F } } "
        f"fragment F on Customer {{ {_aliases(6)} }}"
    )
    variables = {"id": str(uuid.uuid4())}
    assert _code(gateway.post(over, variables)) == (400, "QUERY_TOO_COMPLEX")
    assert _code(gateway.post(inline, variables)) == (400, "QUERY_TOO_COMPLEX")
    allowed = gateway.post(at_limit, variables)
    assert allowed.status_code == 200
    assert allowed.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def test_the_cost_limit_refuses_wide_nested_pages(gateway: Gateway) -> None:
    """100 customers x 100 interactions each costs about 40,000; two such aliases exceed the
    limit of 50,000 and are 400 QUERY_TOO_COMPLEX, one alone runs."""
    page = (
        "customers(first: 100) { edges { node { "
        "interactions(first: 100) { edges { node { type } } } } } }"
    )
    two = gateway.post(f"{{ a: {page} b: {page} }}")
    one = gateway.post(f"{{ a: {page} }}")
    assert _code(two) == (400, "QUERY_TOO_COMPLEX")
    assert "cost" in two.json()["errors"][0]["message"]
    assert one.json() == {"data": {"a": {"edges": []}}}


def test_a_page_size_given_by_variable_is_costed_as_the_largest(gateway: Gateway) -> None:
    """A page size from a variable cannot hide cost: it counts as 100, so the two-alias
    query is refused whatever the variable says."""
    page = (
        "customers(first: $n) { edges { node { "
        "interactions(first: $n) { edges { node { type } } } } } }"
    )
    response = gateway.post(f"query($n: Int) {{ a: {page} b: {page} }}", {"n": 1})
    assert _code(response) == (400, "QUERY_TOO_COMPLEX")


def test_a_fragment_bomb_is_refused_without_expanding_it(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fragments that each spread the next one twice describe 2^20 fields in under a
    kilobyte; the cost check refuses such a document after visiting each fragment's
    selections a bounded number of times (linear in the 20 levels), not 2^20 times."""
    levels = 20
    fragments = " ".join(
        f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)
    )
    query = f"query {{ ...F0 }} {fragments} fragment F{levels} on Query {{ __typename }}"
    visits: list[int] = []
    original = limits_module._Walk.selections

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        visits.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(limits_module._Walk, "selections", counted)
    response = gateway.post(query)
    assert _code(response) == (400, "QUERY_TOO_COMPLEX")
    assert len(visits) <= 3 * (levels + 1)


# -- batches (400) ----------------------------------------------------------------------


def test_batches_hold_one_to_five_operations(gateway: Gateway) -> None:
    """A batch of 2 operations answers 200 with a list of 2 results; a batch of 6, or an
    empty one, is 400 BATCH_LIMIT."""
    operation = {"query": "{ customers(first: 1) { edges { node { id } } } }"}
    two = gateway.client.post("/graphql", json=[operation] * 2, headers=gateway.headers())
    six = gateway.client.post("/graphql", json=[operation] * 6, headers=gateway.headers())
    none = gateway.client.post("/graphql", json=[], headers=gateway.headers())
    assert (two.status_code, two.json()) == (200, [{"data": {"customers": {"edges": []}}}] * 2)
    assert _code(six) == (400, "BATCH_LIMIT")
    assert _code(none) == (400, "BATCH_LIMIT")


# -- rate limit (429) -------------------------------------------------------------------


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_rate_limit_is_per_token_subject_with_retry_after(vault: Vault, tmp_path: Path) -> None:
    """At 6 requests a minute (a burst of 1) a second request within the same second is
    429 RATE_LIMITED with Retry-After; another subject is not held up; after Retry-After
    seconds the first subject may go on."""
    clock = ManualClock()
    gateway = _gateway(vault, tmp_path, rate_limiter=RateLimiter(6, clock=clock))
    first = gateway.post(CUSTOMERS, sub="agent-1")
    clock.now += 0.5
    second = gateway.post(CUSTOMERS, sub="agent-1")
    other = gateway.post(CUSTOMERS, sub="agent-2")
    retry_after = int(second.headers["retry-after"])
    clock.now += retry_after
    later = gateway.post(CUSTOMERS, sub="agent-1")
    assert first.status_code == 200
    assert _code(second) == (429, "RATE_LIMITED")
    assert 1 <= retry_after <= 11
    assert other.status_code == 200
    assert later.status_code == 200


def test_the_rate_limit_with_the_real_clock(vault: Vault, tmp_path: Path) -> None:
    """With RateLimiter(per_minute=6) and the monotonic clock, two requests in a row: the
    second is 429 with a positive whole-second Retry-After."""
    gateway = _gateway(vault, tmp_path, rate_limiter=RateLimiter(per_minute=6))
    first = gateway.post(CUSTOMERS)
    limited = gateway.post(CUSTOMERS)
    assert first.status_code == 200
    assert _code(limited) == (429, "RATE_LIMITED")
    assert int(limited.headers["retry-after"]) >= 1


# -- CORS -------------------------------------------------------------------------------


def test_cors_allows_only_listed_origins(vault: Vault, tmp_path: Path) -> None:
    """With cors_origins=("https://app.example",) a preflight from that origin is allowed
    (with the X-Purpose and Authorization headers); from another origin it is not, and a
    POST from another origin gets no Access-Control-Allow-Origin header."""
    gateway = _gateway(_reopened(vault, cors_origins=("https://app.example",)), tmp_path)
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, x-purpose",
    }
    allowed = gateway.client.options(
        "/graphql", headers={"Origin": "https://app.example", **preflight}
    )
    refused = gateway.client.options(
        "/graphql", headers={"Origin": "https://evil.example", **preflight}
    )
    cross = gateway.client.post(
        "/graphql",
        json={"query": CUSTOMERS},
        headers={**gateway.headers(), "Origin": "https://evil.example"},
    )
    same = gateway.client.post(
        "/graphql",
        json={"query": CUSTOMERS},
        headers={**gateway.headers(), "Origin": "https://app.example"},
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "x-purpose" in allowed.headers["access-control-allow-headers"].lower()
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    assert "access-control-allow-origin" not in cross.headers
    assert same.headers["access-control-allow-origin"] == "https://app.example"


def test_without_cors_origins_no_cors_headers_are_sent(gateway: Gateway) -> None:
    """With no CORS allow-list (the default) no response carries CORS headers."""
    response = gateway.client.post(
        "/graphql",
        json={"query": CUSTOMERS},
        headers={**gateway.headers(), "Origin": "https://app.example"},
    )
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


# -- error masking ----------------------------------------------------------------------


def test_an_internal_error_is_masked(
    vault: Vault, gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected exception in the domain reaches the client as 'internal error' with
    code INTERNAL: no exception text, type or stack trace."""

    def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(vault.customers, "get", explode)
    response = gateway.post(
        "query($id: ID!) { customer(id: $id) { firstName } }", {"id": str(uuid.uuid4())}
    )
    body = response.json()
    assert response.status_code == 200
    assert body["data"] is None
    assert [(e["message"], e["extensions"], e["path"]) for e in body["errors"]] == [
        ("internal error", {"code": "INTERNAL"}, ["customer"])
    ]
    for leak in ("secret detail", "RuntimeError", "Traceback", "explode", ".py"):
        assert leak not in response.text


EMAIL = "jane.doe@example.com"
BAD_VARIABLES = {
    "int": ("query($v: Int) { customers(first: $v) { edges { node { id } } } }", EMAIL),
    "enum": (
        "query($v: Channel) { customers { edges { node { "
        "interactions(channel: $v) { edges { node { type } } } } } } }",
        EMAIL,
    ),
    "datetime": (
        "query($v: DateTime) { customers { edges { node { "
        "interactions(since: $v) { edges { node { type } } } } } } }",
        EMAIL,
    ),
    "input": (
        "mutation($v: CustomerInput!) { createCustomer(input: $v) { id } }",
        {"emial": EMAIL},
    ),
    "list": (
        "mutation($v: [InteractionInput!]!) { recordInteractions(interactions: $v) { inserted } }",
        [{"channel": "CHAT", "type": "CHAT_MESSAGE", "occurredAt": EMAIL}],
    ),
}


@pytest.mark.parametrize("case", list(BAD_VARIABLES))
def test_an_invalid_variable_value_is_not_echoed(gateway: Gateway, case: str) -> None:
    """A variable whose value is invalid for its type (here an e-mail address) is refused
    with an error, and the value appears nowhere in the response."""
    query, value = BAD_VARIABLES[case]
    response = gateway.post(query, {"v": value})
    body = response.json()
    assert body.get("data") is None
    assert len(body["errors"]) == 1
    assert EMAIL not in response.text
    assert "jane" not in response.text


@pytest.mark.parametrize("case", ["int", "enum", "input"])
def test_an_invalid_variable_value_is_a_user_error(gateway: Gateway, case: str) -> None:
    """An invalid variable value is the caller's mistake: code BAD_USER_INPUT and the
    message "Variable '$v' has an invalid value.", never INTERNAL."""
    query, value = BAD_VARIABLES[case]
    response = gateway.post(query, {"v": value})
    assert [(e["message"], e["extensions"]["code"]) for e in response.json()["errors"]] == [
        ("Variable '$v' has an invalid value.", "BAD_USER_INPUT")
    ]


def test_a_domain_error_keeps_its_code_and_names_no_value(gateway: Gateway) -> None:
    """A domain rule broken by the input (an invalid e-mail address) is BAD_USER_INPUT
    with a message naming the field, not the value."""
    response = gateway.post(
        "mutation($v: CustomerInput!) { createCustomer(input: $v) { id } }",
        {"v": {"email": "jane.doe-at-example"}},
        role=Role.INGEST_SERVICE,
        purpose="service_delivery",
    )
    assert _root(response.json(), "createCustomer") is None
    assert [(e["message"], e["extensions"]["code"]) for e in response.json()["errors"]] == [
        ("email: is not a valid email address", "BAD_USER_INPUT")
    ]
    assert "jane" not in response.text


def test_a_failed_create_writes_nothing(vault: Vault, gateway: Gateway) -> None:
    """A createCustomer refused for invalid input stores no customer: a failing mutation
    field leaves none of its writes behind."""
    response = gateway.post(
        "mutation($v: CustomerInput!) { createCustomer(input: $v) { id } }",
        {"v": {"firstName": "Jane", "email": "jane.doe-at-example"}},
        role=Role.INGEST_SERVICE,
        purpose="service_delivery",
    )
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert _customer_count(vault) == 0


def test_a_failed_update_changes_nothing(vault: Vault, gateway: Gateway) -> None:
    """An updateCustomer refused for an invalid phone number leaves the e-mail given in
    the same patch unchanged: the update is all or nothing."""
    with vault.unit(CTX) as s:
        made = vault.customers.create(s, CustomerInput(email="old@example.com"))
    response = gateway.post(
        "mutation($id: ID!, $v: CustomerPatchInput!) { updateCustomer(id: $id, input: $v) { id } }",
        {"id": str(made.id), "v": {"email": "new@example.com", "phone": "12"}},
        role=Role.INGEST_SERVICE,
        purpose="service_delivery",
    )
    with vault.unit(CTX) as s:
        stored = vault.customers.get(s, made.id)
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert stored.email == "old@example.com"
