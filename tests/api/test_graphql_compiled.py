"""The compiled profile path answers exactly as graphql-core does.

Every case sends one request twice through the real ASGI app, once with compiled
plans switched off (graphql-core executes it) and once with them on, and expects
byte-identical response bodies, the same status and the same audit entries (all but
their ids, times and request ids). The cases cover the shapes a plan accepts, every
role's view of PII (clear, masked, hidden and redacted), refusals, errors at the
root and inside ``interactions``, unknown and malformed ids, restricted and erased
customers, variables and their defaults, and shapes a plan must leave to graphql-core.
Issue 16: global ids (``id``) beside the UUIDs (``customerId``, ``interactionId``) and
the whole pageInfo are compiled; ``after``, ``last``, ``before`` and ``totalCount``
are left to graphql-core, and answer the same either way.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from starlette.testclient import TestClient

from api.app import create_app
from api.auth import LocalTokenIssuer
from api.graphql.compiled import compile_plan
from api.graphql.endpoint import GraphQLEndpoint, RateLimiter
from policies import Role
from tests.conftest import CTX, grant_all_consents
from tests.relay import global_id
from vault.customers import CustomerInput, ExternalId
from vault.interactions import InteractionInput
from vault.runtime import Vault
from vault.storage.models import AuditEntryRow, CustomerRow

PROFILE = """query Profile($id: ID!) {
  customer(id: $id) { id email phone firstName lastName birthDate address
    interactions(first: 10) { edges { node { id channel type occurredAt amount } } } } }"""
EVERYTHING = """query Everything($id: ID!, $n: Int!) {
  __typename
  who: customer(id: $id) {
    __typename id customerId email phone firstName lastName birthDate address locale tier tags
    attributes status createdAt
    recent: interactions(first: $n) {
      __typename
      edges { __typename cursor node { __typename id interactionId channel type occurredAt
        amount currency externalId } }
      pageInfo { __typename hasNextPage hasPreviousPage startCursor endCursor } } } }"""
TWO = """query Two($a: ID!, $b: ID!) {
  a: customer(id: $a) { id firstName interactions { pageInfo { hasNextPage } } }
  b: customer(id: $b) { id lastName } }"""
DEFAULT_FIRST = "query($id: ID!) { customer(id: $id) { interactions { edges { cursor } } } }"
LITERAL = 'query { customer(id: "%s") { id email interactions(first: 2) { edges { cursor } } } }'
ME = "query { me { id email firstName interactions(first: 3) { edges { node { id } } } } }"
BAD_FIRST = (
    "query($id: ID!) { customer(id: $id) { id interactions(first: 0) { edges { cursor } } } }"
)


@dataclass
class Harness:
    client: TestClient
    endpoint: GraphQLEndpoint
    issuer: LocalTokenIssuer
    vault: Vault

    def post(
        self,
        query: str,
        variables: dict[str, Any] | None,
        role: Role,
        purpose: str,
        *,
        compiled: bool,
        customer_id: uuid.UUID | None = None,
    ) -> tuple[int, bytes, list[dict[str, Any]]]:
        """Status, body and the audit entries the request wrote (minus ids and times)."""
        self.endpoint.compiled = compiled
        before = self._audit_count()
        token = self.issuer.issue("caller-1", role, customer_id=customer_id)
        reply = self.client.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}", "X-Purpose": purpose},
        )
        return reply.status_code, reply.content, self._audit_since(before)

    def _audit_count(self) -> int:
        with self.vault.db.transaction() as s:
            return len(s.scalars(select(AuditEntryRow.id)).all())

    def _audit_since(self, count: int) -> list[dict[str, Any]]:
        with self.vault.db.transaction() as s:
            rows = s.scalars(select(AuditEntryRow.canonical).order_by(AuditEntryRow.id)).all()
        entries = [json.loads(r) for r in rows[count:]]
        for entry in entries:
            for volatile in ("id", "time", "request"):
                entry.pop(volatile)
        return sorted(entries, key=lambda e: json.dumps(e, sort_keys=True))


@dataclass(frozen=True)
class People:
    full: uuid.UUID
    bare: uuid.UUID
    restricted: uuid.UUID
    erased: uuid.UUID
    unconsented: uuid.UUID


@pytest.fixture
def harness(vault: Vault, tmp_path: Path) -> Iterator[Harness]:
    issuer = LocalTokenIssuer.load_or_create(
        tmp_path / "jwt.json", "customer-vault", "customer-vault"
    )
    app = create_app(
        vault, verifier=issuer.verifier(), local_issuer=issuer, rate_limiter=RateLimiter(10_000),
        webhook_every=None, sequence_every=None, listen=False,
        # No background poll: round trips are counted per request (tests/api/test_graphql_hot.py).
        policy_every=3600.0,
    )  # fmt: skip
    with TestClient(app) as client:  # the lifespan opens the event-loop pool (PostgreSQL)
        yield Harness(client, app.state.graphql, issuer, vault)


@pytest.fixture
def people(vault: Vault) -> People:
    start = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    with vault.unit(CTX) as s:
        full = vault.customers.create(
            s,
            CustomerInput(
                email="Zahra.Karimi@example.ir", phone="+98 912 345 6789", first_name="زهرا",
                last_name="จิตรภักดี", birth_date="1990-04-17", address="Rue Ⅻ 4, 75001 Paris",
                locale="fa-IR", tier="gold", tags=["vip", "新"], attributes={"score": 7},
                external_ids=[ExternalId("shop", "42")],
            ),
        )  # fmt: skip
        ids = [
            vault.customers.create(s, CustomerInput(first_name=name, last_name="Nguyễn")).id
            for name in ("Ana", "Renée", "伟", "Somchai")
        ]
        items = [
            InteractionInput(
                customer_id=cid,
                channel=("web", "store", "email")[n % 3],
                type=("purchase", "store_visit", "email_open")[n % 3],
                occurred_at=start + timedelta(hours=n // 2),  # pairs share a time: id breaks ties
                amount=Decimal("19.90") if n % 3 == 0 else None,
                currency="EUR" if n % 3 == 0 else None,
                external_id=f"x-{cid}-{n}",
                payload={"note": "صندوق"},
            )
            for cid in (full.id, ids[1], ids[2], ids[3])
            for n in range(13)
        ]
        vault.interactions.record_many(s, items)
    grant_all_consents(vault, full.id, ids[0], ids[1], ids[2])
    with vault.unit(CTX) as s:
        s.execute(update(CustomerRow).where(CustomerRow.id == ids[1]).values(status="restricted"))
        vault.erasure.erase(s, ids[2])
    return People(full.id, ids[0], ids[1], ids[2], ids[3])


CALLERS = [
    (Role.SUPPORT_AGENT, "support"),
    (Role.MARKETING, "marketing_email"),
    (Role.MARKETING, "personalization"),
    (Role.ANALYST, "analytics"),
    (Role.COMPLIANCE_OFFICER, "compliance"),
    (Role.ADMIN, "administration"),
]


def _same(
    harness: Harness,
    query: str,
    variables: dict[str, Any] | None,
    caller: tuple[Role, str],
    customer_id: uuid.UUID | None = None,
) -> bytes:
    """The request on graphql-core, then compiled: the same status, body and audit."""
    role, purpose = caller
    slow = harness.post(query, variables, role, purpose, compiled=False, customer_id=customer_id)
    fast = harness.post(query, variables, role, purpose, compiled=True, customer_id=customer_id)
    assert slow == fast
    return fast[1]


@pytest.mark.parametrize(("role", "purpose"), CALLERS)
def test_every_role_sees_the_same_profile_on_both_paths(
    harness: Harness, people: People, role: Role, purpose: str
) -> None:
    """Masked, clear and hidden fields, redacted paths and refusals are identical, for
    every customer state: full, without interactions, restricted, erased, without consent."""
    for cid in (people.full, people.bare, people.restricted, people.erased, people.unconsented):
        _same(harness, PROFILE, {"id": str(cid)}, (role, purpose))
        _same(harness, EVERYTHING, {"id": str(cid), "n": 4}, (role, purpose))


def test_the_profile_query_is_compiled_and_answers_in_full(
    harness: Harness, people: People
) -> None:
    """The benchmark's query takes the compiled path and carries every field it asks for."""
    body = json.loads(_same(harness, EVERYTHING, {"id": str(people.full), "n": 4},
                            (Role.SUPPORT_AGENT, "support")))  # fmt: skip
    who = body["data"]["who"]
    assert [body["data"]["__typename"], who["__typename"]] == ["Query", "Customer"]
    assert (who["email"], who["phone"], who["firstName"]) == ("Z***@e***.ir", "***6789", "زهرا")
    assert (who["tags"], who["attributes"], who["status"]) == (
        ["vip", "新"],
        {"score": 7},
        "ACTIVE",
    )
    edges = who["recent"]["edges"]
    assert len(edges) == 4
    assert {
        "hasNextPage": True, "hasPreviousPage": False, "startCursor": edges[0]["cursor"],
        "endCursor": edges[-1]["cursor"], "__typename": "PageInfo",
    } == who["recent"]["pageInfo"]  # fmt: skip
    assert (who["id"], who["customerId"]) == (
        global_id(harness.vault, "Customer", people.full), str(people.full),
    )  # fmt: skip
    assert [e["node"]["id"] for e in edges] == [
        global_id(harness.vault, "Interaction", e["node"]["interactionId"]) for e in edges
    ]
    assert body["extensions"] == {"redacted": ["who.birthDate"]}
    document = harness.endpoint._document(EVERYTHING)
    assert compile_plan(harness.endpoint.schema, document, document.definitions[0]) is not None  # type: ignore[arg-type]


def test_variables_defaults_literals_and_several_roots_match(
    harness: Harness, people: People
) -> None:
    """Two aliased roots, a defaulted ``first``, a literal id and ``me`` answer alike."""
    for role, purpose in CALLERS[:2]:
        _same(harness, TWO, {"a": str(people.full), "b": str(people.bare)}, (role, purpose))
        _same(harness, DEFAULT_FIRST, {"id": str(people.full)}, (role, purpose))
        _same(harness, LITERAL % people.full, None, (role, purpose))
    _same(harness, ME, None, (Role.DATA_SUBJECT, "self"), customer_id=people.full)
    _same(harness, PROFILE, {"id": str(people.full)}, (Role.DATA_SUBJECT, "self"),
          customer_id=people.full)  # fmt: skip
    _same(harness, ME, None, (Role.SUPPORT_AGENT, "support"))  # me without a customer: an error


def test_errors_are_located_and_formatted_alike(harness: Harness, people: People) -> None:
    """Unknown and malformed ids, another customer's record for a data subject, a second
    root after a failing one, an out-of-range ``first`` and variables that do not coerce
    give the same errors, paths and locations on both paths."""
    agent = (Role.SUPPORT_AGENT, "support")
    for variables in ({"id": str(uuid.uuid4())}, {"id": "not-a-uuid"}, {"id": 7}, {}, {"id": None}):
        _same(harness, PROFILE, variables, agent)
    _same(harness, TWO, {"a": str(uuid.uuid4()), "b": str(people.full)}, agent)
    _same(harness, TWO, {"a": str(people.full), "b": "x"}, agent)
    body = json.loads(_same(harness, BAD_FIRST, {"id": str(people.full)}, agent))
    assert body["errors"][0]["path"] == ["customer", "interactions"]
    _same(harness, EVERYTHING, {"id": str(people.full), "n": "ten"}, agent)
    _same(harness, EVERYTHING, {"id": str(people.full), "n": 101}, agent)
    _same(harness, PROFILE, {"id": str(people.bare)}, (Role.DATA_SUBJECT, "self"),
          customer_id=people.full)  # fmt: skip


@pytest.mark.parametrize(
    "query",
    [
        "query($id: ID!) { customer(id: $id) { ...F } } fragment F on Customer { id email }",
        "query($id: ID!) { customer(id: $id) { id email @include(if: true) } }",
        "query($id: ID!) { customer(id: $id) { id id email } }",
        "query($id: ID!) { customer(id: $id) { interactions(channel: WEB) { edges { cursor } } } }",
        "query($id: ID!) { customer(id: $id) { id interactions { edges { node { payload } } } } }",
        "query($id: ID!) { customer(id: $id) { id consents { purpose } } }",
        "query($id: ID!) { customer(id: $id) { id } purposes { name } }",
        "query($id: ID!) { customer(id: $id) { interactions(last: 3) { edges { cursor } } } }",
        "query($id: ID!) { customer(id: $id) { interactions(first: 2) { totalCount } } }",
        "query($id: ID!) { node(id: $id) { id } }",
    ],
)
def test_other_shapes_are_left_to_graphql_core(
    harness: Harness, people: People, query: str
) -> None:
    """Fragments, directives, repeated keys, other arguments or fields: no plan, and the
    answer is graphql-core's."""
    document = harness.endpoint._document(query)
    operation = next(d for d in document.definitions if hasattr(d, "operation"))
    assert compile_plan(harness.endpoint.schema, document, operation) is None  # type: ignore[arg-type]
    _same(harness, query, {"id": str(people.full)}, (Role.SUPPORT_AGENT, "support"))


BIG = {"score": 2**70, "favourite_colour": "✓"}  # a declared decimal beyond 64 bits


def test_a_json_value_beyond_64_bits_still_renders(harness: Harness, vault: Vault) -> None:
    """Custom attributes may hold integers orjson cannot render: the response falls back
    to the json module instead of failing, on both paths."""
    with vault.unit(CTX) as s:
        big = vault.customers.create(s, CustomerInput(attributes=BIG))
    query = "query($id: ID!) { customer(id: $id) { attributes } }"
    body = _same(harness, query, {"id": str(big.id)}, (Role.SUPPORT_AGENT, "support"))
    assert json.loads(body)["data"]["customer"]["attributes"] == BIG


RELAY = """query Relay($id: ID!, $after: String, $last: Int, $before: String) {
  customer(id: $id) { id customerId
    page: interactions(first: 3, after: $after) { totalCount
      edges { cursor node { id interactionId occurredAt } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor } }
    tail: interactions(last: $last, before: $before) {
      edges { cursor node { interactionId } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } }"""


@pytest.mark.parametrize(("role", "purpose"), CALLERS)
def test_relay_arguments_answer_alike_on_both_paths(
    harness: Harness, people: People, role: Role, purpose: str
) -> None:
    """Pages taken with after, last and before, totalCount, a global id given back as the
    customer's id, and a forged cursor or id: the same answer and audit with plans on and
    off (these shapes go to graphql-core; the first page of the compiled shape stays
    compiled and its cursors lead on to the same pages)."""
    gid = global_id(harness.vault, "Customer", people.full)
    first = json.loads(_same(harness, EVERYTHING, {"id": gid, "n": 4}, (role, purpose)))
    recent = (first["data"] or {}).get("who") or {}
    cursors = [e["cursor"] for e in (recent.get("recent") or {}).get("edges", [])]
    after = cursors[-1] if cursors else None
    for variables in (
        {"id": str(people.full), "after": after, "last": 2, "before": after},
        {"id": gid, "after": None, "last": 5},
        {"id": str(people.bare), "last": 1},
        {"id": str(people.full), "after": "forged", "last": 1},
        {"id": str(people.full), "last": 2, "before": (after or "x")[:-2] + "AA"},
        {"id": gid[:-3] + "AAA", "last": 1},
    ):
        _same(harness, RELAY, variables, (role, purpose))
