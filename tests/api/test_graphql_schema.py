"""The schema contract of issue 3 (item 2): names, page limits, pagination, mutations,
scripts that round-trip, and the DataLoader bound on SQL statements.

Storage tests run through the real ASGI app on SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import httpx2
import pytest
from graphql import (
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLType,
)
from graphql import (
    build_schema as parse_sdl,
)
from sqlalchemy import event, func, select
from starlette.testclient import TestClient

from api.app import create_app
from api.auth import LocalTokenIssuer
from api.graphql.endpoint import RateLimiter
from api.graphql.schema import build_schema
from policies import Role
from tests.conftest import CTX, FrozenClock
from vault.customers import CustomerInput
from vault.interactions import InteractionInput
from vault.runtime import Vault
from vault.storage.models import CustomerRow, InteractionRow

ISSUER: Final = "customer-vault"
INGEST: Final = (Role.INGEST_SERVICE, "service_delivery")
SUPPORT: Final = (Role.SUPPORT_AGENT, "support")


@dataclasses.dataclass
class Gateway:
    client: TestClient
    issuer: LocalTokenIssuer

    def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        as_: tuple[Role, str] = SUPPORT,
        customer_id: uuid.UUID | None = None,
    ) -> httpx2.Response:
        role, purpose = as_
        token = self.issuer.issue(f"{role.value}-1", role, customer_id=customer_id)
        return self.client.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {token}", "X-Purpose": purpose},
        )

    def data(self, query: str, variables: dict[str, Any] | None = None, **kw: Any) -> Any:
        """The data of a request that must succeed without errors."""
        response = self.post(query, variables, **kw)
        body = response.json()
        assert (response.status_code, body.get("errors")) == (200, None)
        return body["data"]


@pytest.fixture
def gateway(vault: Vault, tmp_path: Path) -> Gateway:
    issuer = LocalTokenIssuer.load_or_create(tmp_path / "jwt.json", ISSUER, ISSUER)
    app = create_app(
        vault, verifier=issuer.verifier(), local_issuer=issuer, rate_limiter=RateLimiter(10_000)
    )
    return Gateway(TestClient(app), issuer)


def _codes(response: httpx2.Response) -> list[str]:
    return [e["extensions"]["code"] for e in response.json().get("errors", [])]


def _root(body: dict[str, Any], field: str) -> Any:
    """A root field of the response: null when the field or the whole data is null (a
    refused mutation is null either way, whichever nullability the schema gives it)."""
    return (body.get("data") or {}).get(field)


def _count(vault: Vault, table: type[CustomerRow] | type[InteractionRow]) -> int:
    with vault.db.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(table)) or 0)


def _customers(vault: Vault, count: int, *, interactions: int = 0) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = []
    with vault.unit(CTX) as s:
        for n in range(count):
            made = vault.customers.create(
                s,
                CustomerInput(first_name=f"Customer{n}", email=f"c{n}-{uuid.uuid4()}@example.com"),
            )
            ids.append(made.id)
        items = [
            InteractionInput(
                customer_id=cid,
                channel="chat" if k % 2 else "web",
                type="chat_message" if k % 2 else "page_view",
                occurred_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=k),
            )
            for cid in ids
            for k in range(interactions)
        ]
        if items:
            vault.interactions.record_many(s, items)
    return ids


# -- the SDL ----------------------------------------------------------------------------


def _named(kind: GraphQLType) -> str:
    """``[InteractionInput!]!`` and the like, as the SDL writes a type."""
    if isinstance(kind, GraphQLNonNull):
        return f"{_named(kind.of_type)}!"
    if isinstance(kind, GraphQLList):
        return f"[{_named(kind.of_type)}]"
    return str(getattr(kind, "name", kind))


def _signatures(type_: GraphQLObjectType) -> dict[str, tuple[dict[str, str], str]]:
    return {
        name: ({a: _named(arg.type) for a, arg in field.args.items()}, _named(field.type))
        for name, field in type_.fields.items()
    }


def test_the_sdl_names_the_contract() -> None:
    """The printed SDL (parsed back) has the queries, Customer fields, the interactions
    connection arguments and the four mutations of issue 3 under their contract names,
    with issue 16's Relay additions: last/before beside first/after, totalCount on every
    connection, customerId beside the global id."""
    sdl = build_schema().as_str()
    schema = parse_sdl(sdl)
    assert schema.query_type is not None
    assert schema.mutation_type is not None
    query = _signatures(schema.query_type)
    mutation = _signatures(schema.mutation_type)
    customer = schema.get_type("Customer")
    assert isinstance(customer, GraphQLObjectType)

    contract = {
        "customer": ({"id": "ID!"}, "Customer!"),
        "customerByEmail": ({"email": "String!"}, "Customer"),
        "customerByPhone": ({"phone": "String!"}, "Customer"),
        "customers": (
            {
                "first": "Int!",
                "after": "String",
                "filter": "CustomerFilter",
                "last": "Int",
                "before": "String",
            },
            "CustomerConnection!",
        ),
        "me": ({}, "Customer!"),
    }
    assert {name: query.get(name) for name in contract} == contract
    assert set(customer.fields) >= {
        "id", "customerId", "email", "phone", "firstName", "lastName", "birthDate", "address",
        "locale", "tier", "tags", "attributes", "status", "createdAt", "interactions",
    }  # fmt: skip
    assert _signatures(customer)["interactions"] == (
        {
            "first": "Int!",
            "after": "String",
            "channel": "Channel",
            "type": "InteractionType",
            "since": "DateTime",
            "until": "DateTime",
            "last": "Int",
            "before": "String",
        },
        "InteractionConnection",
    )
    writes = {
        "createCustomer": {"input": "CustomerInput!"},
        "updateCustomer": {"id": "ID!", "input": "CustomerPatchInput!", "expectedVersion": "Int"},
        "mergeCustomers": {"keepId": "ID!", "mergeId": "ID!"},
        "recordInteractions": {"interactions": "[InteractionInput!]!"},
    }
    assert {name: mutation[name][0] if name in mutation else None for name in writes} == writes
    for connection, edge, node in (
        ("CustomerConnection", "CustomerEdge", "Customer!"),
        ("InteractionConnection", "InteractionEdge", "Interaction!"),
    ):
        conn_type, edge_type = schema.get_type(connection), schema.get_type(edge)
        assert isinstance(conn_type, GraphQLObjectType)
        assert isinstance(edge_type, GraphQLObjectType)
        assert _signatures(conn_type) == {
            "edges": ({}, f"[{edge}!]!"),
            "pageInfo": ({}, "PageInfo!"),
            "totalCount": ({}, "Int!"),
        }
        assert _signatures(edge_type) == {"node": ({}, node), "cursor": ({}, "String!")}


def test_the_schema_exposes_no_storage_internals() -> None:
    """Types are API types, never ORM rows: no ciphertext, blind index, key or row field
    appears anywhere in the SDL."""
    sdl = build_schema().as_str()
    leaks = re.findall(r"\b\w*(?:Ct|_ct|Bidx|bidx|wrapped|Row|mergedIntoId|keyId)\b", sdl)
    assert leaks == []


# -- pages ------------------------------------------------------------------------------


@pytest.mark.parametrize("first", [0, -1, 101, 1000])
def test_a_page_size_outside_1_to_100_is_refused(gateway: Gateway, first: int) -> None:
    """customers(first: N) outside 1..100 is BAD_USER_INPUT, whatever the data."""
    response = gateway.post(f"{{ customers(first: {first}) {{ edges {{ node {{ id }} }} }} }}")
    assert (response.json()["data"], _codes(response)) == (None, ["BAD_USER_INPUT"])
    assert response.json()["errors"][0]["message"] == "first: must be between 1 and 100"


def test_an_interactions_page_over_100_is_refused(vault: Vault, gateway: Gateway) -> None:
    """interactions(first: 101) on a customer is BAD_USER_INPUT; the field is null."""
    (cid,) = _customers(vault, 1, interactions=1)
    response = gateway.post(
        "query($id: ID!) { customer(id: $id) { customerId "
        "interactions(first: 101) { edges { cursor } } } }",
        {"id": str(cid)},
    )
    assert response.json()["data"] == {"customer": {"customerId": str(cid), "interactions": None}}
    assert _codes(response) == ["BAD_USER_INPUT"]


def test_pagination_walks_every_customer_exactly_once(
    vault: Vault, gateway: Gateway, clock: FrozenClock
) -> None:
    """Following endCursor with first: 3 visits all 8 customers once each, oldest first,
    also when several were created at the same instant (ties broken by id)."""
    created: list[uuid.UUID] = []
    for _batch in range(3):
        created += _customers(vault, 3 if _batch < 2 else 2)
        clock.advance(seconds=1)
    seen: list[str] = []
    pages = 0
    after: str | None = None
    while True:
        page = gateway.data(
            "query($after: String) { customers(first: 3, after: $after) { "
            "edges { cursor node { customerId } } pageInfo { hasNextPage endCursor } } }",
            {"after": after},
        )["customers"]
        pages += 1
        seen += [edge["node"]["customerId"] for edge in page["edges"]]
        if page["edges"]:
            assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
        assert pages < 10
    assert pages == 3
    assert len(seen) == len(set(seen)) == 8
    assert set(seen) == {str(c) for c in created}
    assert seen[:3] == sorted(str(c) for c in created[:3])


def test_a_timeline_pages_newest_first_exactly_once(vault: Vault, gateway: Gateway) -> None:
    """interactions(first: 2, after:) walks a customer's 5 interactions newest first,
    each once."""
    (cid,) = _customers(vault, 1, interactions=5)
    seen: list[str] = []
    after: str | None = None
    for _page in range(5):
        conn = gateway.data(
            "query($id: ID!, $after: String) { customer(id: $id) { "
            "interactions(first: 2, after: $after) { edges { node { id occurredAt } } "
            "pageInfo { hasNextPage endCursor } } } }",
            {"id": str(cid), "after": after},
        )["customer"]["interactions"]
        seen += [e["node"]["occurredAt"] for e in conn["edges"]]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == 5
    assert seen == sorted(seen, reverse=True)


def test_interaction_filters_on_one_customer(vault: Vault, gateway: Gateway) -> None:
    """channel, type, since and until narrow one customer's timeline."""
    (cid,) = _customers(vault, 1, interactions=4)  # hours 0..3; odd hours are chats
    data = gateway.data(
        "query($id: ID!) { customer(id: $id) { "
        "chats: interactions(channel: CHAT) { edges { node { type } } } "
        "views: interactions(type: PAGE_VIEW) { edges { node { channel } } } "
        'window: interactions(since: "2026-01-01T01:00:00+00:00", '
        'until: "2026-01-01T03:00:00+00:00") { edges { node { occurredAt } } } } }',
        {"id": str(cid)},
    )["customer"]
    assert [e["node"]["type"] for e in data["chats"]["edges"]] == ["CHAT_MESSAGE"] * 2
    assert [e["node"]["channel"] for e in data["views"]["edges"]] == ["WEB"] * 2
    assert len(data["window"]["edges"]) == 2


def _filtered_list(gateway: Gateway, field: str, variable: tuple[str, str] | None) -> list[int]:
    """How many interactions each customer of the list shows under a filtered field."""
    declaration = f"($v: {variable[0]})" if variable else ""
    response = gateway.post(
        f"query{declaration} {{ customers {{ edges {{ node {{ "
        f"{field} {{ edges {{ node {{ type }} }} }} }} }} }} }}",
        {"v": variable[1]} if variable else None,
    )
    body = response.json()
    assert body.get("errors") is None
    return [len(e["node"]["interactions"]["edges"]) for e in body["data"]["customers"]["edges"]]


@pytest.mark.parametrize(
    "variable",
    [("channel", "Channel", "CHAT"), ("since", "DateTime", "2026-01-01T02:00:00+00:00")],
    ids=["channel", "since"],
)
def test_filter_variables_work_inside_the_customer_list(
    vault: Vault, gateway: Gateway, variable: tuple[str, str, str]
) -> None:
    """interactions(channel: $v) or interactions(since: $v) inside customers narrows each
    customer's timeline to 2 of its 4 interactions."""
    _customers(vault, 2, interactions=4)
    argument, kind, value = variable
    counts = _filtered_list(gateway, f"interactions({argument}: $v)", (kind, value))
    assert counts == [2, 2]


LIST_FILTERS: Final = {
    "channel": "interactions(channel: CHAT)",
    "since": 'interactions(since: "2026-01-01T02:00:00+00:00")',
}


@pytest.mark.parametrize("case", list(LIST_FILTERS))
def test_filter_literals_work_inside_the_customer_list(
    vault: Vault, gateway: Gateway, case: str
) -> None:
    """interactions(channel: CHAT) or interactions(since: "...") written into the query
    inside customers narrows each customer's timeline to 2 of its 4 interactions, as it
    does on one customer."""
    _customers(vault, 2, interactions=4)
    assert _filtered_list(gateway, LIST_FILTERS[case], None) == [2, 2]


# -- mutations --------------------------------------------------------------------------

RECORD: Final = (
    "mutation($items: [InteractionInput!]!) { "
    "recordInteractions(interactions: $items) { inserted duplicates } }"
)


def _items(cid: uuid.UUID, count: int, prefix: str = "evt") -> list[dict[str, Any]]:
    start = datetime(2026, 2, 1, tzinfo=UTC)
    return [
        {
            "customerId": str(cid),
            "channel": "WEB",
            "type": "PAGE_VIEW",
            "occurredAt": (start + timedelta(seconds=n)).isoformat(),
            "externalId": f"{prefix}-{n}",
        }
        for n in range(count)
    ]


def test_record_interactions_takes_at_most_1000(vault: Vault, gateway: Gateway) -> None:
    """1001 interactions in one call are refused (BAD_USER_INPUT) and none is stored;
    1000 are stored."""
    (cid,) = _customers(vault, 1)
    refused = gateway.post(RECORD, {"items": _items(cid, 1001)}, as_=INGEST)
    assert (_root(refused.json(), "recordInteractions"), _codes(refused)) == (
        None,
        ["BAD_USER_INPUT"],
    )
    assert _count(vault, InteractionRow) == 0
    accepted = gateway.data(RECORD, {"items": _items(cid, 1000)}, as_=INGEST)
    assert accepted == {"recordInteractions": {"inserted": 1000, "duplicates": 0}}
    assert _count(vault, InteractionRow) == 1000


def test_record_interactions_is_idempotent_on_external_id(vault: Vault, gateway: Gateway) -> None:
    """Sending the same batch twice stores it once (second call: inserted 0, all
    duplicates); an external id repeated inside one batch is stored once."""
    (cid,) = _customers(vault, 1)
    batch = _items(cid, 3)
    first = gateway.data(RECORD, {"items": batch}, as_=INGEST)
    second = gateway.data(RECORD, {"items": batch}, as_=INGEST)
    repeated = gateway.data(RECORD, {"items": _items(cid, 1, "dup") * 2}, as_=INGEST)
    assert first == {"recordInteractions": {"inserted": 3, "duplicates": 0}}
    assert second == {"recordInteractions": {"inserted": 0, "duplicates": 3}}
    assert repeated == {"recordInteractions": {"inserted": 1, "duplicates": 1}}
    assert _count(vault, InteractionRow) == 4


def test_merge_customers_folds_one_record_into_another(vault: Vault, gateway: Gateway) -> None:
    """mergeCustomers(keepId, mergeId) fills the kept record's empty fields from the other,
    moves its interactions, and the merged id then leads to the kept record."""
    with vault.unit(CTX) as s:
        keep = vault.customers.create(s, CustomerInput(email="k@example.com", first_name="Keep"))
        gone = vault.customers.create(s, CustomerInput(phone="+447700900123", last_name="Gone"))
        vault.interactions.record_many(
            s,
            [
                InteractionInput(
                    customer_id=gone.id, channel="store", type="store_visit",
                    occurred_at=datetime(2026, 1, 5, tzinfo=UTC),
                )
            ],
        )  # fmt: skip
    merged = gateway.data(
        "mutation($k: ID!, $m: ID!) { mergeCustomers(keepId: $k, mergeId: $m) { "
        "customer { customerId } mergedId movedInteractions filledFields } }",
        {"k": str(keep.id), "m": str(gone.id)},
        as_=INGEST,
    )["mergeCustomers"]
    assert merged == {
        "customer": {"customerId": str(keep.id)},
        "mergedId": str(gone.id),
        "movedInteractions": 1,
        "filledFields": ["phone", "last_name"],
    }
    followed = gateway.data(
        "query($id: ID!) { customer(id: $id) { customerId lastName "
        "interactions { edges { node { type } } } } }",
        {"id": str(gone.id)},
    )
    assert followed == {
        "customer": {
            "customerId": str(keep.id),
            "lastName": "Gone",
            "interactions": {"edges": [{"node": {"type": "STORE_VISIT"}}]},
        }
    }
    listed = gateway.data("{ customers { edges { node { customerId } } } }")
    assert listed == {"customers": {"edges": [{"node": {"customerId": str(keep.id)}}]}}


def test_merge_is_refused_to_a_support_agent(vault: Vault, gateway: Gateway) -> None:
    """mergeCustomers is a write: FORBIDDEN for a support agent, and both records stay."""
    keep, gone = _customers(vault, 2)
    response = gateway.post(
        "mutation($k: ID!, $m: ID!) { mergeCustomers(keepId: $k, mergeId: $m) { mergedId } }",
        {"k": str(keep), "m": str(gone)},
    )
    assert (_root(response.json(), "mergeCustomers"), _codes(response)) == (None, ["FORBIDDEN"])
    assert len(gateway.data("{ customers { edges { node { id } } } }")["customers"]["edges"]) == 2


SCRIPTS: Final = {
    "persian": ("زهرا", "محمدی", "تهران، خیابان ولیعصر، پلاک ۱۲"),
    "thai": ("สมชาย", "จิตรภักดี", "๙๙ ถนนสุขุมวิท กรุงเทพมหานคร"),
    "chinese": ("小明", "王", "北京市朝阳区建国路88号"),
}


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_names_in_any_script_round_trip(vault: Vault, gateway: Gateway, script: str) -> None:
    """Names and an address in Persian, Thai or Chinese, created by the ingest service, come
    back to the data subject exactly as written."""
    first, last, address = SCRIPTS[script]
    made = gateway.data(
        "mutation($i: CustomerInput!) { createCustomer(input: $i) { customerId } }",
        {"i": {"firstName": first, "lastName": last, "address": address, "locale": "fa-IR"}},
        as_=INGEST,
    )["createCustomer"]
    cid = uuid.UUID(made["customerId"])
    seen = gateway.data(
        "query($id: ID!) { customer(id: $id) { firstName lastName address } }",
        {"id": str(cid)},
        as_=(Role.DATA_SUBJECT, "self"),
        customer_id=cid,
    )
    assert seen == {"customer": {"firstName": first, "lastName": last, "address": address}}


def test_explain_access_names_the_deciding_rule(gateway: Gateway) -> None:
    """explainAccess says which policy line decides a field for a role and purpose; it is
    for administrators and compliance officers only."""
    query = (
        '{ explainAccess(role: "support_agent", field: "email", purpose: "support") '
        "{ resolution rule reason } }"
    )
    answer = gateway.data(query, as_=(Role.ADMIN, "administration"))
    refused = gateway.post(query)
    assert answer["explainAccess"]["resolution"] == "masked"
    assert answer["explainAccess"]["rule"] == [
        "p", "support_agent", "email", "read:masked", "support", "allow"
    ]  # fmt: skip
    assert (refused.json()["data"], _codes(refused)) == (None, ["FORBIDDEN"])


# -- the DataLoader bound ---------------------------------------------------------------


@contextmanager
def _statements(vault: Vault) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        seen.append(statement)

    event.listen(vault.db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(vault.db.engine, "before_cursor_execute", count)


LIST_WITH_TIMELINES: Final = (
    "{{ customers(first: {n}) {{ edges {{ node {{ firstName "
    "interactions(first: 10) {{ edges {{ node {{ type }} }} }} }} }} }} }}"
)
LIST_THROUGH_FRAGMENT: Final = (
    "{{ customers(first: {n}) {{ edges {{ node {{ ...Profile }} }} }} }} "
    "fragment Profile on Customer {{ firstName interactions(first: 10) "
    "{{ edges {{ node {{ type }} }} }} }}"
)


def _statements_for(vault: Vault, gateway: Gateway, template: str, n: int) -> int:
    with _statements(vault) as seen:
        data = gateway.data(template.format(n=n))
    edges = data["customers"]["edges"]
    assert len(edges) == n
    assert all(len(e["node"]["interactions"]["edges"]) == 3 for e in edges)
    return len(seen)


def test_fifty_customers_with_timelines_cost_a_bounded_number_of_statements(
    vault: Vault, gateway: Gateway
) -> None:
    """customers(first: N) with each customer's interactions runs the same number of SQL
    statements (at most 15) for 10 customers as for 50: timelines are fetched for the
    whole page at once, not customer by customer."""
    _customers(vault, 50, interactions=3)
    ten = _statements_for(vault, gateway, LIST_WITH_TIMELINES, 10)
    fifty = _statements_for(vault, gateway, LIST_WITH_TIMELINES, 50)
    assert (ten, fifty) == (ten, ten)
    assert fifty <= 15


def test_the_statement_bound_holds_through_fragments(vault: Vault, gateway: Gateway) -> None:
    """The same list with the customer's fields in a fragment (as clients like gql and
    Apollo write them) runs the same bounded number of statements for 10 and 50."""
    _customers(vault, 50, interactions=3)
    ten = _statements_for(vault, gateway, LIST_THROUGH_FRAGMENT, 10)
    fifty = _statements_for(vault, gateway, LIST_THROUGH_FRAGMENT, 50)
    assert (ten, fifty) == (ten, ten)
    assert fifty <= 15
