"""What a GraphQL caller is told when an input is refused: the input as the schema spells
it (``firstName``, ``postalAddress.country``, ``externalIds[1].source``), the rule it broke
(a date the calendar lacks, a country ISO 3166-1 does not assign), the kind of id an
argument takes; an unknown purpose apart from a forbidden one; ``me`` without a data
subject's token is FORBIDDEN. On SQLite and PostgreSQL (the ``vault`` fixture)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from api.graphql.messages import schema_path
from policies import Role
from tests.api.test_graphql_hardening import Gateway, _audit, _gateway
from tests.conftest import CTX
from tests.relay import global_id
from vault.customers import CustomerInput
from vault.runtime import Vault

CREATE = "mutation($input: CustomerInput!) { createCustomer(input: $input) { id } }"
GOLD = {"attribute": {"field": "tier", "op": "eq", "value": "gold"}}
INGEST: dict[str, Any] = {"role": Role.INGEST_SERVICE, "purpose": "service_delivery"}


@pytest.fixture
def gateway(vault: Vault, tmp_path: Path) -> Gateway:
    return _gateway(vault, tmp_path)


def refusal(body: dict[str, Any]) -> tuple[str, str]:
    """(code, message) of the response's only error."""
    [error] = body["errors"]
    return error["extensions"]["code"], error["message"]


def create(gateway: Gateway, data: dict[str, Any]) -> tuple[str, str]:
    return refusal(gateway.post(CREATE, {"input": data}, **INGEST).json())


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("first_name", "firstName"),
        ("birth_date", "birthDate"),
        ("address.postal_code", "postalAddress.postalCode"),
        ("address", "address"),
        ("external_ids[0].source", "externalIds[0].source"),
        ("add_external_ids[2].external_id", "addExternalIds[2].externalId"),
        ("interactions[3].occurredAt", "interactions[3].occurredAt"),
        ("details.address.country", "details.address.country"),
        ("attributes.household_size", "attributes.household_size"),
        ("patch.attributes.vip_level", "patch.attributes.vip_level"),
    ],
)
def test_domain_paths_read_as_the_schema_spells_them(field: str, expected: str) -> None:
    """snake_case paths of the domain become the schema's camelCase; the parts of an
    address are the postalAddress input's; camelCase paths and the declared names of custom
    attributes pass unchanged."""
    assert schema_path(field) == expected


def test_input_errors_name_fields_as_the_schema_does(vault: Vault, gateway: Gateway) -> None:
    """A too-long firstName, a bad postalAddress.country and a blank externalIds[1].source
    are each BAD_USER_INPUT naming the input as sent, never first_name or address."""
    answers = [
        create(gateway, {"firstName": "x" * 201}),
        create(gateway, {"lastName": "Ok", "postalAddress": {"city": "Lyon", "country": "XX"}}),
        create(
            gateway,
            {
                "externalIds": [
                    {"source": "crm", "externalId": "1"},
                    {"source": " ", "externalId": "2"},
                ]
            },
        ),
    ]
    assert answers == [
        ("BAD_USER_INPUT", "firstName: must be at most 200 characters"),
        (
            "BAD_USER_INPUT",
            "postalAddress.country: is not an ISO 3166-1 alpha-2 country code (TH, DE, US, ...)",
        ),
        ("BAD_USER_INPUT", "externalIds[1].source: must not be blank"),
    ]


def test_an_impossible_date_is_not_a_calendar_date(vault: Vault, gateway: Gateway) -> None:
    """2023-02-30 has the right shape and is refused as not a calendar date; 30/02/2023
    is refused for its shape."""
    answers = [create(gateway, {"birthDate": d}) for d in ("2023-02-30", "30/02/2023")]
    assert answers == [
        ("BAD_USER_INPUT", "birthDate: is not a calendar date"),
        ("BAD_USER_INPUT", "birthDate: must be an ISO date (YYYY-MM-DD)"),
    ]


def test_country_codes_are_iso_3166_1_assigned_ones(vault: Vault, gateway: Gateway) -> None:
    """XX, UK and EU have the shape of a code but are not assigned; th is stored as TH."""
    refused = [
        create(gateway, {"postalAddress": {"city": "Somewhere", "country": c}})[1]
        for c in ("XX", "UK", "EU")
    ]
    rule = "postalAddress.country: is not an ISO 3166-1 alpha-2 country code (TH, DE, US, ...)"
    assert refused == [rule] * 3
    body = gateway.post(
        CREATE, {"input": {"postalAddress": {"city": "Chiang Mai", "country": "th"}}}, **INGEST
    ).json()
    assert "errors" not in body


def test_an_empty_customer_is_refused(vault: Vault, gateway: Gateway) -> None:
    """createCustomer(input: {}) (or only empty lists) is BAD_USER_INPUT and stores nothing;
    an empty postalAddress is refused naming postalAddress."""
    answers = [
        create(gateway, {}),
        create(gateway, {"tags": [], "externalIds": []}),
        create(gateway, {"postalAddress": {}}),
    ]
    assert answers == [
        ("BAD_USER_INPUT", "input: a customer needs at least one field"),
        ("BAD_USER_INPUT", "input: a customer needs at least one field"),
        ("BAD_USER_INPUT", "postalAddress: give at least one part of the address"),
    ]
    with vault.unit(CTX) as s:
        assert vault.customers.page(s, first=10).items == []


def test_unknown_purpose_is_400_apart_from_a_forbidden_one(vault: Vault, gateway: Gateway) -> None:
    """A purpose outside the registry is 400 UNKNOWN_PURPOSE listing the registered ones
    (never echoing the header); a registered purpose the role may not use stays 403
    FORBIDDEN. Both are audited as access.denied at the purpose stage."""
    query = "{ customers(first: 1) { edges { node { id } } } }"
    unknown = gateway.post(query, purpose="gossip_about_jane")
    forbidden = gateway.post(query, purpose="marketing_email")  # support_agent may not
    assert (unknown.status_code, refusal(unknown.json())[0]) == (400, "UNKNOWN_PURPOSE")
    assert "gossip" not in unknown.text
    assert "support" in refusal(unknown.json())[1]
    assert (forbidden.status_code, refusal(forbidden.json())[0]) == (403, "FORBIDDEN")
    denials = [(d["purpose"], d["detail"]) for d in _audit(vault, "access.denied")]
    assert denials == [("unknown", {"stage": "purpose"}), ("marketing_email", {"stage": "purpose"})]


def test_me_without_a_data_subject_token_is_forbidden(vault: Vault, gateway: Gateway) -> None:
    """`me` asked with a support agent's token is FORBIDDEN (not a bad input)."""
    body = gateway.post("{ me { id } }").json()
    assert refusal(body) == ("FORBIDDEN", "me: only a data subject's token names a customer")
    assert body["data"] is None


def test_an_id_of_the_wrong_kind_names_the_kind_expected(vault: Vault, gateway: Gateway) -> None:
    """A malformed id names the kind the argument takes; a segment's UUID given to
    customer(id:), and a customer's given to segment(id:), are NOT_FOUND naming the kind
    looked for; a global id of the wrong type is refused naming the kind it takes."""
    with vault.unit(CTX) as s:
        person = vault.customers.create(s, CustomerInput(first_name="Noor", tier="gold"))
        segment = vault.segments.create(s, name="gold", definition=GOLD)
    analyst = {"role": Role.ANALYST, "purpose": "analytics"}

    def read(field: str, value: str, **who: Any) -> tuple[str, str]:
        query = f"query($id: ID!) {{ {field}(id: $id) {{ id }} }}"
        return refusal(gateway.post(query, {"id": value}, **who).json())

    answers = [
        read("customer", "nope"),
        read("segment", "nope", **analyst),
        read("customer", str(segment.id)),
        read("segment", str(person.id), **analyst),
        read("customer", global_id(vault, "Segment", segment.id)),
        read("segment", global_id(vault, "Customer", person.id), **analyst),
    ]
    assert answers == [
        ("BAD_USER_INPUT", "id: is not a customer id (a UUID or a Customer's global id)"),
        ("BAD_USER_INPUT", "id: is not a segment id (a UUID or a Segment's global id)"),
        ("NOT_FOUND", f"customer {segment.id} not found"),
        ("NOT_FOUND", f"segment {person.id} not found"),
        ("BAD_USER_INPUT", "id: is not a customer id (a UUID or a Customer's global id)"),
        ("BAD_USER_INPUT", "id: is not a segment id (a UUID or a Segment's global id)"),
    ]
