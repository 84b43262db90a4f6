"""/metrics: the domain metrics (audit appends, decryptions, refusals by code, overdue
data subject requests, webhook failures, segment refresh duration, the scheduler), and
no label value that ever came from input."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from api.app import create_app
from api.auth import LocalTokenIssuer
from consent import Privacy
from consent.dsr.requests import DsrInput
from policies import Role
from tests.conftest import CTX, FrozenClock
from vault import telemetry
from vault.authorization.context import AccessContext, Actor
from vault.customers import CustomerInput
from vault.runtime import Vault
from vault.segments.delivery import WebhookDispatcher

NAME, EMAIL, MASKED = "مینا", "mina.rahimi@example.org", "m***@e***.org"
GOLD = {"attribute": {"field": "tier", "op": "eq", "value": "gold"}}


@pytest.fixture
def served(vault: Vault, tmp_path: Path) -> Iterator[tuple[TestClient, LocalTokenIssuer]]:
    issuer = LocalTokenIssuer.load_or_create(tmp_path / "jwt.json", "customer-vault",
                                             "customer-vault")  # fmt: skip
    app = create_app(vault, verifier=issuer.verifier(), local_issuer=issuer, webhook_every=None)
    with TestClient(app) as client:
        yield client, issuer


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of one scrape, by name and labels."""
    body = client.get("/metrics").text
    return {
        (s.name, tuple(sorted(s.labels.items()))): float(s.value)
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float:  # fmt: skip
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def graphql(client: TestClient, token: str, purpose: str, query: str) -> dict[str, Any]:
    headers = {b"authorization": f"Bearer {token}".encode(), b"x-purpose": purpose.encode()}
    answer: dict[str, Any] = client.post("/graphql", json={"query": query}, headers=headers).json()
    return answer


def test_reads_refusals_and_audit_appends_are_counted(
    vault: Vault, served: tuple[TestClient, LocalTokenIssuer]
) -> None:
    """A support agent reading one customer's first name (clear) and e-mail (masked, from
    the clear value) opens two field tokens and appends audit entries; a purpose the role
    may not use is one refusal FORBIDDEN, a missing token one UNAUTHENTICATED: the
    scrape's counters move by that."""
    client, issuer = served
    with vault.unit(CTX) as s:
        customer = vault.customers.create(s, CustomerInput(first_name=NAME, email=EMAIL))
    agent = issuer.issue("agent-1", Role.SUPPORT_AGENT)
    before = scrape(client)
    read = graphql(
        client, agent, "support", "{ customers(first: 5) { edges { node { firstName email } } } }"
    )
    refused = graphql(
        client, agent, "marketing_email", "{ customers(first: 1) { edges { node { id } } } }"
    )
    missing = client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"X-Purpose": "support"}
    )
    after = scrape(client)
    assert read == {
        "data": {"customers": {"edges": [{"node": {"firstName": NAME, "email": MASKED}}]}}
    }
    assert (refused["errors"][0]["extensions"]["code"], missing.status_code) == ("FORBIDDEN", 401)
    moved = {
        key: value(after, *key[:1], **dict(key[1])) - value(before, *key[:1], **dict(key[1]))
        for key in (
            ("cvault_decryptions_total", (("outcome", "opened"),)),
            ("cvault_refusals_total", (("code", "FORBIDDEN"),)),
            ("cvault_refusals_total", (("code", "UNAUTHENTICATED"),)),
        )
    }
    assert moved == {
        ("cvault_decryptions_total", (("outcome", "opened"),)): 2.0,
        ("cvault_refusals_total", (("code", "FORBIDDEN"),)): 1.0,
        ("cvault_refusals_total", (("code", "UNAUTHENTICATED"),)): 1.0,
    }
    appends = value(after, "cvault_audit_append_entries_count") - value(
        before, "cvault_audit_append_entries_count"
    )
    assert appends >= 1  # the read's entry (the refusal's too)
    assert value(after, "cvault_audit_append_seconds_count") >= appends
    assert str(customer.id) not in client.get("/metrics").text


def test_overdue_requests_segment_refreshes_and_webhook_failures_show(
    vault: Vault, clock: FrozenClock, served: tuple[TestClient, LocalTokenIssuer]
) -> None:
    """An access request past its due date shows in cvault_dsr_requests_overdue (read from
    the database at the scrape); a segment refresh observes its duration; a webhook
    answered 500 and one not answered at all count as http_status and transport failures."""
    client, _issuer = served
    desk = Privacy.of(vault).desk
    with vault.unit(CTX) as s:
        customer = vault.customers.create(s, CustomerInput(first_name=NAME, tier="gold"))
        desk.create(s, DsrInput(type="access", customer_id=customer.id))
    on_time = scrape(client)
    clock.advance(days=40)
    analyst = AccessContext(Actor("analyst-1", "analyst"), "analytics")
    with vault.unit(analyst) as s:
        segment = vault.segments.create(s, name="gold", definition=GOLD).id
        for path in ("/down", "/gone"):
            vault.webhooks.create(
                s, url=f"http://127.0.0.1:9{path}", segment_ids=[segment], purpose="analytics"
            )
    before = scrape(client)
    with vault.unit(CTX) as s:
        vault.segments.refresh(s)

    def send(url: str, _body: bytes, _headers: object) -> int:
        if url.endswith("/gone"):
            raise ConnectionRefusedError
        return 500

    WebhookDispatcher(vault.webhooks.secrets, vault.gate, vault.audit, clock=clock,
                      send=send).run_once(vault.db)  # fmt: skip
    after = scrape(client)
    assert (
        value(on_time, "cvault_dsr_requests_overdue"),
        value(after, "cvault_dsr_requests_overdue"),
    ) == (0.0, 1.0)
    assert value(after, "cvault_state_up") == 1.0
    moved = {
        (name, kind): value(after, name, **labels) - value(before, name, **labels)
        for name, kind, labels in (
            ("cvault_segment_refresh_seconds_count", "all", {"scope": "all"}),
            ("cvault_webhook_failures_total", "http_status", {"kind": "http_status"}),
            ("cvault_webhook_failures_total", "transport", {"kind": "transport"}),
            ("cvault_webhook_failures_total", "gave_up", {"kind": "gave_up"}),
        )
    }
    assert moved == {
        ("cvault_segment_refresh_seconds_count", "all"): 1.0,
        ("cvault_webhook_failures_total", "http_status"): 1.0,
        ("cvault_webhook_failures_total", "transport"): 1.0,
        ("cvault_webhook_failures_total", "gave_up"): 0.0,
    }


def test_no_label_value_comes_from_input(
    vault: Vault, served: tuple[TestClient, LocalTokenIssuer]
) -> None:
    """Paths, purposes, tokens, query texts and variables carrying an e-mail address, a
    phone number and a Persian name: every label value of the scrape afterwards is a
    route template of the app, a method, a status code, a bucket bound or a value of the
    metric's declared vocabulary, and none of those strings appears anywhere in it."""
    client, issuer = served
    pii = [EMAIL, "+31612345678", NAME, str(uuid.uuid4())]
    agent = issuer.issue("agent-1", Role.SUPPORT_AGENT)
    for text in pii:
        client.get(f"/privacy/{text}")
        client.get(f"/{text}")
        forged = {b"authorization": f"Bearer {text}".encode(), b"x-purpose": text.encode()}
        client.post("/graphql", json={"query": "{ __typename }"}, headers=forged)
        graphql(client, agent, text, "{ __typename }")
        graphql(client, agent, "support", f'{{ customerByEmail(email: "{text}") {{ id }} }}')
        graphql(client, agent, "support", f"{{ {text} }}")
    telemetry.refused(EMAIL)  # an unknown code from anywhere
    body = client.get("/metrics").text
    app = cast(Starlette, client.app)
    templates = {"other"} | {r.path for r in app.router.routes if isinstance(r, Route)}
    strays = []
    for family in text_string_to_metric_families(body):
        base = re.sub(r"_(created|total|bucket|count|sum)$", "", family.name)
        vocabulary = telemetry.VOCABULARY.get(base, {})
        for s in family.samples:
            for label, given in s.labels.items():
                if label in vocabulary:
                    allowed = given in vocabulary[label] | {telemetry.OTHER}
                elif label == "route":
                    allowed = given in templates
                elif label == "method":
                    allowed = given in {"GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"}
                elif label == "status":
                    allowed = given.isdigit() and len(given) == 3
                elif label == "le":
                    allowed = given == "+Inf" or float(given) >= 0
                else:
                    allowed = False
                if not allowed:
                    strays.append((s.name, label, given))
    assert strays == []
    assert [text for text in pii if text in body] == []
    assert 'cvault_refusals_total{code="other"}' in body
