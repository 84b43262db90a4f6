"""Consent over GraphQL: a data subject grants and withdraws its own consents in one
mutation each, the receipt comes back signed, and a marketing caller's results follow the
ledger from the very next request."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from consent.receipts import verify_receipt
from policies import Role
from tests.api.test_graphql_policy import Gateway, gateway
from tests.conftest import CTX
from vault.crypto.signing import ed25519_verify
from vault.customers import CustomerInput
from vault.runtime import Vault
from vault.storage.models import ConsentEventRow

__all__ = ["gateway"]  # the fixture, shared with the policy matrix

GRANT = """
mutation Grant($id: ID!, $purpose: String!) {
  grantConsent(customerId: $id, purpose: $purpose,
               how: {sourceChannel: WEB, noticeVersion: "2026-11", method: CHECKBOX}) {
    id purpose state sourceChannel noticeVersion method receipt
  }
}
"""
WITHDRAW = """
mutation Withdraw($id: ID!, $purpose: String!) {
  withdrawConsent(customerId: $id, purpose: $purpose) { id state }
}
"""
LIST = "{ customers(first: 50) { edges { node { customerId firstName email } } } }"
ME = "{ me { consents { purpose state effective } consentHistory { purpose state } } }"


def _customer(vault: Vault, name: str) -> uuid.UUID:
    with vault.unit(CTX) as s:
        return vault.customers.create(
            s, CustomerInput(first_name=name, email=f"{name.lower()}@example.com")
        ).id


def _subject(gw: Gateway, cid: uuid.UUID, query: str, **variables: Any) -> dict[str, Any]:
    response = gw.post(query, variables, role=Role.DATA_SUBJECT, purpose="self", customer_id=cid)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def _marketing_ids(gw: Gateway) -> list[str]:
    body = gw.post(LIST, role=Role.MARKETING, purpose="marketing_email").json()
    return [edge["node"]["customerId"] for edge in body["data"]["customers"]["edges"]]


def test_grant_and_withdraw_steer_the_next_marketing_request(
    vault: Vault, gateway: Gateway
) -> None:
    """Grant: the customer appears to marketing_email; withdraw: gone on the next request."""
    cid = _customer(vault, "Layla")
    assert _marketing_ids(gateway) == []
    granted = _subject(gateway, cid, GRANT, id=str(cid), purpose="marketing_email")
    event = granted["data"]["grantConsent"]
    assert (event["purpose"], event["state"], event["sourceChannel"], event["method"]) == (
        "marketing_email", "GRANTED", "WEB", "CHECKBOX",
    )  # fmt: skip
    assert verify_receipt(event["receipt"], ed25519_verify)["piiPrincipalId"] == str(cid)
    assert _marketing_ids(gateway) == [str(cid)]
    withdrawn = _subject(gateway, cid, WITHDRAW, id=str(cid), purpose="marketing_email")
    assert withdrawn["data"]["withdrawConsent"]["state"] == "WITHDRAWN"
    assert _marketing_ids(gateway) == []


def test_a_data_subject_sees_its_consents_and_history(vault: Vault, gateway: Gateway) -> None:
    """``me`` lists every consent-based purpose with its state, and the ledger's history."""
    cid = _customer(vault, "Arash")
    _subject(gateway, cid, GRANT, id=str(cid), purpose="personalization")
    body = _subject(gateway, cid, ME)
    consents = {c["purpose"]: c for c in body["data"]["me"]["consents"]}
    assert consents["personalization"] == {
        "purpose": "personalization", "state": "GRANTED", "effective": True,
    }  # fmt: skip
    assert consents["marketing_sms"]["state"] is None
    assert body["data"]["me"]["consentHistory"] == [
        {"purpose": "personalization", "state": "GRANTED"}
    ]


def test_a_customer_without_consent_is_refused_with_a_code(vault: Vault, gateway: Gateway) -> None:
    """Asking for one named customer without consent yields CONSENT_REQUIRED, no data."""
    cid = _customer(vault, "Mina")
    body = gateway.post(
        "query($id: ID!) { customer(id: $id) { id email } }",
        {"id": str(cid)},
        role=Role.MARKETING,
        purpose="marketing_email",
    ).json()
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["CONSENT_REQUIRED"]
    assert "mina" not in str(body).lower()


def test_marketing_may_neither_change_nor_read_consents(vault: Vault, gateway: Gateway) -> None:
    """The consent ledger is for the data subject, support and compliance: marketing
    reads null (redacted) and its change is refused with FORBIDDEN."""
    cid = _customer(vault, "Dara")
    _subject(gateway, cid, GRANT, id=str(cid), purpose="marketing_email")
    body = gateway.post(
        "query($id: ID!) { customer(id: $id) { id consents { purpose } } }",
        {"id": str(cid)},
        role=Role.MARKETING,
        purpose="marketing_email",
    ).json()
    assert body["data"]["customer"]["consents"] is None
    assert body["extensions"]["redacted"] == ["customer.consents"]
    refused = gateway.post(
        GRANT, {"id": str(cid), "purpose": "marketing_sms"},
        role=Role.MARKETING, purpose="marketing_email",
    ).json()  # fmt: skip
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["FORBIDDEN"]


def test_bad_consent_input_names_the_field(vault: Vault, gateway: Gateway) -> None:
    """A purpose that rests on a contract takes no consent: BAD_USER_INPUT, nothing stored."""
    cid = _customer(vault, "Omid")
    body = _subject(gateway, cid, GRANT, id=str(cid), purpose="support")
    assert body["data"]["grantConsent"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    assert body["errors"][0]["message"].startswith("purpose:")
    with vault.db.transaction() as s:
        assert s.scalars(select(ConsentEventRow)).all() == []


def test_the_request_evidence_is_stored_as_pseudonyms(vault: Vault, gateway: Gateway) -> None:
    """The User-Agent of the granting request is kept as a keyed pseudonym, never as sent."""
    cid = _customer(vault, "Sara")
    token = gateway.issuer.issue("subject-1", Role.DATA_SUBJECT, customer_id=cid)
    agent = "UniqueBrowser/9.9 (evidence-check)"
    gateway.client.post(
        "/graphql",
        json={"query": GRANT, "variables": {"id": str(cid), "purpose": "marketing_sms"}},
        headers={"Authorization": f"Bearer {token}", "X-Purpose": "self", "User-Agent": agent},
    )
    with vault.db.transaction() as s:
        row = s.scalars(select(ConsentEventRow)).one()
    assert row.evidence_user_agent is not None
    assert agent not in row.evidence_user_agent
    assert row.evidence_user_agent == vault.keyring.blind_indexer.pseudonym(
        "consent.user_agent", agent
    )


def test_the_purpose_registry_is_published(gateway: Gateway) -> None:
    """Any authenticated caller can read which purposes exist and on which legal basis."""
    body = gateway.post(
        "{ purposes { name legalBasis needsConsent directMarketing } }",
        role=Role.SUPPORT_AGENT,
        purpose="support",
    ).json()
    purposes = {p["name"]: p for p in body["data"]["purposes"]}
    assert purposes["marketing_email"] == {
        "name": "marketing_email", "legalBasis": "consent", "needsConsent": True,
        "directMarketing": True,
    }  # fmt: skip
    assert purposes["support"]["legalBasis"] == "contract"


def test_an_overlong_user_agent_never_blocks_a_withdrawal(vault: Vault, gateway: Gateway) -> None:
    """Evidence is cut to size, never a reason to refuse: withdrawing stays one call."""
    cid = _customer(vault, "Nika")
    token = gateway.issuer.issue("subject-1", Role.DATA_SUBJECT, customer_id=cid)
    response = gateway.client.post(
        "/graphql",
        json={"query": WITHDRAW, "variables": {"id": str(cid), "purpose": "marketing_email"}},
        headers={
            "Authorization": f"Bearer {token}",
            "X-Purpose": "self",
            "User-Agent": "A" * 5000,
        },
    ).json()
    assert response["data"]["withdrawConsent"]["state"] == "WITHDRAWN"


def test_an_unknown_receipt_is_not_found_after_the_grant_is_checked(
    vault: Vault, gateway: Gateway
) -> None:
    """Without a consent read grant the answer is FORBIDDEN whether or not the receipt
    exists; with one, an unknown id is NOT_FOUND."""
    query = "query($id: ID!) { consentReceipt(id: $id) }"
    unknown = {"id": str(uuid.uuid4())}
    marketing = gateway.post(query, unknown, role=Role.MARKETING, purpose="marketing_email")
    assert [e["extensions"]["code"] for e in marketing.json()["errors"]] == ["FORBIDDEN"]
    support = gateway.post(query, unknown, role=Role.SUPPORT_AGENT, purpose="support")
    assert [e["extensions"]["code"] for e in support.json()["errors"]] == ["NOT_FOUND"]
