"""Identity resolution over GraphQL: DUPLICATE on createCustomer and updateCustomer,
AMBIGUOUS on customerByEmail / customerByPhone, duplicateCandidates, and a merge of a
candidate pair. Errors carry ids and field names, never the value sent."""

from __future__ import annotations

from typing import Any

from tests.api.test_graphql_schema import INGEST, SUPPORT, Gateway, gateway
from tests.conftest import CTX, FrozenClock
from vault.customers import CustomerInput
from vault.runtime import Vault

__all__ = ["gateway"]  # the fixture, used by name

EMAIL = "Somchai.J@Example.com"
CREATE = "mutation($i: CustomerInput!) { createCustomer(input: $i) { customerId } }"
UPDATE = "mutation($id: ID!, $i: CustomerPatchInput!) { updateCustomer(id: $id, input: $i) { customerId } }"  # noqa: E501
BY_EMAIL = "query($e: String!) { customerByEmail(email: $e) { customerId } }"
BY_PHONE = "query($p: String!) { customerByPhone(phone: $p) { customerId } }"
CANDIDATES = """{ duplicateCandidates(first: 10) {
  keep { id customerId } duplicate { id customerId } reasons } }"""


def _error(gateway: Gateway, query: str, variables: dict[str, Any], **kw: Any) -> dict[str, Any]:
    body = gateway.post(query, variables, **kw).json()
    assert len(body["errors"]) == 1, body
    error: dict[str, Any] = body["errors"][0]
    return error


def _two_with_one_email(vault: Vault, clock: FrozenClock) -> tuple[str, str]:
    """Two records sharing an email address, as written before detection existed."""
    with vault.unit(CTX) as s:
        a = vault.customers.create(s, CustomerInput(email=EMAIL, phone="+66 81 234 5678"))
    clock.advance(seconds=1)
    with vault.unit(CTX) as s:
        b = vault.customers.create(
            s, CustomerInput(email=EMAIL.lower(), phone="+66812345678"), check_duplicates=False
        )
    return str(a.id), str(b.id)


def test_create_and_update_answer_duplicate(vault: Vault, gateway: Gateway) -> None:
    """createCustomer with an email on file, and updateCustomer to another customer's
    phone: DUPLICATE with the field and the existing id; the message holds no value."""
    first = gateway.data(CREATE, {"i": {"email": EMAIL}}, as_=INGEST)["createCustomer"]
    other = gateway.data(CREATE, {"i": {"phone": "+66812345678"}}, as_=INGEST)["createCustomer"]
    error = _error(gateway, CREATE, {"i": {"email": EMAIL.upper()}}, as_=INGEST)
    expected = {"code": "DUPLICATE", "field": "email", "existingId": first["customerId"]}
    assert expected == error["extensions"]
    updated = _error(
        gateway, UPDATE, {"id": first["customerId"], "i": {"phone": "+66 81 234 5678"}}, as_=INGEST
    )
    expected = {"code": "DUPLICATE", "field": "phone", "existingId": other["customerId"]}
    assert expected == updated["extensions"]
    for message in (error["message"], updated["message"]):
        assert "somchai" not in message.lower()
        assert "2345678" not in message


def test_lookups_answer_ambiguous_with_the_ids(
    vault: Vault, gateway: Gateway, clock: FrozenClock
) -> None:
    """customerByEmail and customerByPhone name one customer or answer AMBIGUOUS with
    the ids of all that match, oldest first."""
    a, b = _two_with_one_email(vault, clock)
    for query, variables in ((BY_EMAIL, {"e": EMAIL}), (BY_PHONE, {"p": "+66812345678"})):
        error = _error(gateway, query, variables, as_=SUPPORT)
        assert ("AMBIGUOUS", [a, b]) == (error["extensions"]["code"], error["extensions"]["ids"])
        assert "somchai" not in error["message"].lower()
    assert gateway.data(BY_EMAIL, {"e": "x@example.com"}) == {"customerByEmail": None}


def test_duplicate_candidates_are_merged_away(
    vault: Vault, gateway: Gateway, clock: FrozenClock
) -> None:
    """duplicateCandidates lists the pair with what it shares; mergeCustomers with the
    pair's ids folds it, and the list is empty after."""
    a, b = _two_with_one_email(vault, clock)
    pairs = gateway.data(CANDIDATES)["duplicateCandidates"]
    assert [
        {"keep": a, "duplicate": b, "reasons": ["EMAIL", "PHONE"]}
    ] == [
        {"keep": p["keep"]["customerId"], "duplicate": p["duplicate"]["customerId"],
         "reasons": p["reasons"]}
        for p in pairs
    ]  # fmt: skip
    merged = gateway.data(
        "mutation($k: ID!, $m: ID!) { mergeCustomers(keepId: $k, mergeId: $m) { mergedId } }",
        {"k": pairs[0]["keep"]["id"], "m": pairs[0]["duplicate"]["id"]},
        as_=INGEST,
    )
    assert {"mergeCustomers": {"mergedId": b}} == merged
    assert gateway.data(CANDIDATES) == {"duplicateCandidates": []}
    assert {"customerByEmail": {"customerId": a}} == gateway.data(BY_EMAIL, {"e": EMAIL})
