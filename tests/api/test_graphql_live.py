"""The Python ``gql`` client against a live uvicorn server (issue 3, item 8).

The app runs in uvicorn on a free loopback port in a background thread, over the
``vault`` fixture (SQLite and PostgreSQL), with its lifespan (policy refresh and
audit sequencer) on. The client is ``gql`` with its requests transport: a real HTTP
stack end to end, nothing in process.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from gql import Client, GraphQLRequest, gql
from gql.transport.exceptions import TransportQueryError
from gql.transport.requests import RequestsHTTPTransport
from graphql import ExecutionResult, GraphQLError

from api.app import create_app
from api.auth import LocalTokenIssuer
from api.graphql.endpoint import RateLimiter
from api.graphql.schema import build_schema
from policies import Role
from tests.conftest import CTX, grant_all_consents
from vault.customers import CustomerInput
from vault.runtime import Vault

ISSUER = "customer-vault"


@dataclass
class LiveServer:
    url: str
    issuer: LocalTokenIssuer

    def client(
        self,
        role: Role | None,
        purpose: str | None,
        customer_id: uuid.UUID | None = None,
        *,
        fetch_schema: bool = False,
        schema: str | None = None,
    ) -> Client:
        headers: dict[str, str] = {}
        if role is not None:
            token = self.issuer.issue(f"{role.value}-1", role, customer_id=customer_id)
            headers["Authorization"] = f"Bearer {token}"
        if purpose is not None:
            headers["X-Purpose"] = purpose
        transport = RequestsHTTPTransport(url=self.url, headers=headers, timeout=10, retries=0)
        return Client(transport=transport, fetch_schema_from_transport=fetch_schema, schema=schema)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def live(vault: Vault, tmp_path: Path) -> Iterator[LiveServer]:
    """uvicorn serving create_app(vault) on 127.0.0.1 in a thread, stopped after the test."""
    issuer = LocalTokenIssuer.load_or_create(tmp_path / "jwt.json", ISSUER, ISSUER)
    app = create_app(
        vault,
        verifier=issuer.verifier(),
        local_issuer=issuer,
        rate_limiter=RateLimiter(10_000),
        sequence_every=0.05,
    )
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="none")
    )
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped before it started"
        assert time.monotonic() < deadline, "uvicorn did not start within 15 s"
        time.sleep(0.02)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}/graphql", issuer)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        assert not thread.is_alive()


def _execute(
    client: Client, query: str, variables: dict[str, Any] | None = None
) -> ExecutionResult:
    request = GraphQLRequest(query, variable_values=variables)
    with client as session:
        result = session.execute(request, get_execution_result=True)
    assert isinstance(result, ExecutionResult)
    return result


CREATE = """
mutation Create($input: CustomerInput!) {
  createCustomer(input: $input) { id customerId email tier }
}
"""
RECORD = """
mutation Record($items: [InteractionInput!]!) {
  recordInteractions(interactions: $items) { inserted duplicates }
}
"""
PROFILE = """
query Profile($id: ID!) {
  customer(id: $id) {
    id email phone firstName lastName birthDate address
    interactions(first: 5) { edges { node { channel type payload } } }
  }
}
"""
PERSON = {
    "email": "somchai.jaidee@example.co.th",
    "phone": "+66 81 234 5678",
    "firstName": "สมชาย",
    "lastName": "ใจดี",
    "birthDate": "1988-07-09",
    "postalAddress": {
        "street": "๙๙ ถนนสุขุมวิท",
        "city": "กรุงเทพมหานคร",
        "postalCode": "10110",
        "country": "th",
    },
    "tier": "gold",
}


def test_a_mutation_and_queries_through_the_gql_client(live: LiveServer) -> None:
    """Through gql over HTTP: the ingest service creates a customer and records an
    interaction (reading nothing back); a support agent then sees the profile masked per
    policy with the hidden paths in extensions; the data subject sees it all in clear."""
    ingest = live.client(Role.INGEST_SERVICE, "service_delivery")
    created = _execute(ingest, CREATE, {"input": PERSON})
    assert created.errors is None
    assert created.data is not None
    made = created.data["createCustomer"]
    assert (made["email"], made["tier"]) == (None, None)  # ingest reads not even the tier
    assert created.extensions == {"redacted": ["createCustomer.email", "createCustomer.tier"]}
    customer_id = made["id"]

    recorded = _execute(
        ingest,
        RECORD,
        {
            "items": [
                {
                    "customerId": customer_id,
                    "channel": "CHAT",
                    "type": "CHAT_MESSAGE",
                    "occurredAt": datetime(2026, 5, 1, 8, 0, tzinfo=UTC).isoformat(),
                    "externalId": "chat-1",
                    "payload": {"text": "สวัสดีครับ"},
                }
            ]
        },
    )
    assert recorded.data == {"recordInteractions": {"inserted": 1, "duplicates": 0}}

    support = _execute(live.client(Role.SUPPORT_AGENT, "support"), PROFILE, {"id": customer_id})
    assert support.errors is None
    assert support.data == {
        "customer": {
            "id": customer_id,
            "email": "s***@e***.th",
            "phone": "***5678",
            "firstName": "สมชาย",
            "lastName": "ใจดี",
            "birthDate": None,
            "address": "กรุงเทพมหานคร, TH",
            "interactions": {
                "edges": [{"node": {"channel": "CHAT", "type": "CHAT_MESSAGE", "payload": None}}]
            },
        }
    }
    assert support.extensions == {
        "redacted": ["customer.birthDate", "customer.interactions.edges.0.node.payload"]
    }

    # The global id goes back into arguments as it is; a token names the customer's UUID.
    subject = live.client(Role.DATA_SUBJECT, "self", uuid.UUID(made["customerId"]))
    own = _execute(subject, PROFILE, {"id": customer_id})
    assert own.errors is None
    assert own.extensions is None
    assert own.data == {
        "customer": {
            "id": customer_id,
            "email": PERSON["email"],
            "phone": "+66812345678",
            "firstName": PERSON["firstName"],
            "lastName": PERSON["lastName"],
            "birthDate": PERSON["birthDate"],
            "address": "๙๙ ถนนสุขุมวิท, กรุงเทพมหานคร, 10110, TH",
            "interactions": {
                "edges": [
                    {
                        "node": {
                            "channel": "CHAT",
                            "type": "CHAT_MESSAGE",
                            "payload": {"text": "สวัสดีครับ"},
                        }
                    }
                ]
            },
        }
    }


def test_gql_validates_against_the_published_sdl(vault: Vault, live: LiveServer) -> None:
    """A gql client given the server's SDL validates documents itself: a typo never
    reaches the server, a correct query runs."""
    with vault.unit(CTX) as s:
        ana = vault.customers.create(s, CustomerInput(first_name="Ana", tier="silver"))
    grant_all_consents(vault, ana.id)
    client = live.client(Role.MARKETING, "personalization", schema=build_schema().as_str())
    with client as session:
        listed = session.execute(
            gql("{ customers(first: 5) { edges { node { firstName tier } } } }")
        )
        with pytest.raises(GraphQLError, match="emial"):
            session.execute(gql("{ customers { edges { node { emial } } } }"))
    assert listed == {"customers": {"edges": [{"node": {"firstName": "Ana", "tier": "silver"}}]}}


def test_gql_fetches_the_schema_by_introspection(live: LiveServer) -> None:
    """An authenticated gql client may fetch the schema by introspection outside
    production (fetch_schema_from_transport=True)."""
    client = live.client(Role.MARKETING, "personalization", fetch_schema=True)
    with client as session:
        listed = session.execute(gql("{ customers(first: 5) { edges { node { tier } } } }"))
    assert client.schema is not None
    assert client.schema.get_type("Customer") is not None
    assert listed == {"customers": {"edges": []}}


def test_gql_sees_field_errors_with_their_codes(vault: Vault, live: LiveServer) -> None:
    """A refused field reaches gql as a TransportQueryError whose errors carry the code:
    a support agent may not create customers (FORBIDDEN)."""
    with pytest.raises(TransportQueryError) as refused:
        _execute(live.client(Role.SUPPORT_AGENT, "support"), CREATE, {"input": {"tier": "x"}})
    assert refused.value.errors is not None
    assert [e["extensions"]["code"] for e in refused.value.errors] == ["FORBIDDEN"]
    with vault.unit(CTX) as s:
        assert vault.customers.page(s).items == []


@pytest.mark.parametrize(
    ("role", "purpose", "code"),
    [
        (None, "support", "UNAUTHENTICATED"),
        (Role.SUPPORT_AGENT, None, "PURPOSE_REQUIRED"),
        (Role.SUPPORT_AGENT, "sales", "UNKNOWN_PURPOSE"),
        (Role.SUPPORT_AGENT, "marketing_email", "FORBIDDEN"),
    ],
    ids=["no-token", "no-purpose", "unknown-purpose", "forbidden-purpose"],
)
def test_gql_sees_the_code_of_a_refused_request(
    live: LiveServer, role: Role | None, purpose: str | None, code: str
) -> None:
    """Requests refused before execution (HTTP 401, 400, 403 with a GraphQL error body)
    reach gql as a TransportQueryError carrying the code: UNAUTHENTICATED without a token,
    PURPOSE_REQUIRED without a purpose, UNKNOWN_PURPOSE for a purpose outside the registry,
    FORBIDDEN for one the role may not use."""
    with pytest.raises(TransportQueryError) as refused:
        _execute(live.client(role, purpose), "{ customers { edges { node { id } } } }")
    assert refused.value.errors is not None
    assert [e["extensions"]["code"] for e in refused.value.errors] == [code]
    assert refused.value.data is None


def test_gql_batches_two_operations(vault: Vault, live: LiveServer) -> None:
    """gql's execute_batch sends a JSON list of operations; the server answers each."""
    with vault.unit(CTX) as s:
        made = vault.customers.create(s, CustomerInput(first_name="Batch", tier="bronze"))
    client = live.client(Role.SUPPORT_AGENT, "support")
    with client as session:
        results = session.execute_batch(
            [
                GraphQLRequest("{ customers(first: 1) { edges { node { tier } } } }"),
                GraphQLRequest(
                    "query($id: ID!) { customer(id: $id) { firstName } }",
                    variable_values={"id": str(made.id)},
                ),
            ]
        )
    assert results == [
        {"customers": {"edges": [{"node": {"tier": "bronze"}}]}},
        {"customer": {"firstName": "Batch"}},
    ]
