"""Issue 13 item 6 through the real ASGI app: the clear profile (locale, tier, tags) and the
custom attributes follow the policy on output, as policies/default_policy.csv says.

For every role and each purpose it may use, ``customer(id)`` asks for ``locale tier tags
attributes``: a profile field comes back in clear or null (its path in
``extensions.redacted``); ``attributes`` holds the declared non-PII attributes when the
policy grants ``attributes``, each PII attribute in clear, masked or absent as its
``attr:<name>`` resolves, an undeclared (legacy) attribute only where
``undeclared_attributes`` is granted, and is null (redacted) when nothing of it may be
seen. The compiled path and graphql-core answer the same; the pii.access audit entry
records every resolution. Writes refuse undeclared names and values of the wrong type.
"""

# ruff: noqa: SIM300 - assertions read `expected == actual`.

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any, Final

import pytest
from sqlalchemy import func, select

from policies import Purpose, Role
from tests.api.test_graphql_policy import Gateway, gateway
from tests.conftest import CTX, grant_all_consents
from vault.customers import CustomerInput
from vault.runtime import Vault
from vault.storage.models import AuditEntryRow, CustomerRow

ISSUER: Final = "customer-vault"
NICKNAME: Final = "สมชาย"  # Thai
CLEAR_ATTRIBUTES: Final = {"plan": "pro", "score": 42.5, "favourite_colour": "فیروزه‌ای"}
PII_ATTRIBUTES: Final = {
    "nickname": NICKNAME,
    "loyalty_number": "LN-0042-7781",
    "anniversary": "2015-06-20",
}
MASKED_PII: Final = {"nickname": "***", "loyalty_number": "***", "anniversary": "--06-20"}
LEGACY: Final = {"legacy_note": "stored before declarations"}
PERSON = CustomerInput(
    email="zahra@example.ir",
    first_name="زهرا",
    locale="fa-IR",
    tier="gold",
    tags=["vip", "新客"],
    attributes={**CLEAR_ATTRIBUTES, **PII_ATTRIBUTES},
)

C, M, H = "clear", "masked", "hidden"


@dataclasses.dataclass(frozen=True)
class Row:
    """locale, tier, tags, attributes (non-PII), undeclared_attributes, PII attributes."""

    locale: str
    tier: str
    tags: str
    attributes: str
    undeclared: str
    pii: str


# policies/default_policy.csv, written out again.
TABLE: Final[dict[tuple[Role, Purpose], Row]] = {
    (Role.SUPPORT_AGENT, Purpose.SUPPORT): Row(C, C, C, C, H, M),
    (Role.MARKETING, Purpose.MARKETING_EMAIL): Row(C, C, C, C, H, H),
    (Role.MARKETING, Purpose.MARKETING_SMS): Row(C, C, C, C, H, H),
    (Role.MARKETING, Purpose.PERSONALIZATION): Row(C, C, C, C, H, H),
    (Role.ANALYST, Purpose.ANALYTICS): Row(H, C, C, C, H, H),
    (Role.COMPLIANCE_OFFICER, Purpose.COMPLIANCE): Row(C, C, C, C, H, M),
    (Role.ADMIN, Purpose.ADMINISTRATION): Row(C, C, C, C, C, M),
    (Role.INGEST_SERVICE, Purpose.SERVICE_DELIVERY): Row(H, H, H, H, H, H),
    (Role.DATA_SUBJECT, Purpose.SELF): Row(C, C, C, C, C, C),
}
DECLARED_PII: Final = ("anniversary", "household_size", "loyalty_number", "nickname")

__all__ = ["gateway"]  # the fixture shared with the policy matrix

COMPILED: Final = "query($id: ID!) { customer(id: $id) { customerId locale tier tags attributes } }"
GENERAL: Final = (
    "query($id: ID!) { customer(id: $id) { ...P } } "
    "fragment P on Customer { customerId locale tier tags attributes }"
)


@pytest.fixture
def person(vault: Vault) -> uuid.UUID:
    """PERSON, plus an attribute stored before attributes had to be declared."""
    with vault.unit(CTX) as s:
        made = vault.customers.create(s, PERSON)
    with vault.db.transaction() as s:
        row = s.get(CustomerRow, made.id)
        assert row is not None
        row.attributes = {**row.attributes, **LEGACY}
    grant_all_consents(vault, made.id)
    return made.id


def _expected(person: uuid.UUID, row: Row) -> dict[str, Any]:
    customer: dict[str, Any] = {"customerId": str(person)}
    redacted: list[str] = []
    for field, value in (("locale", "fa-IR"), ("tier", "gold"), ("tags", ["vip", "新客"])):
        shown = getattr(row, field) == C
        customer[field] = value if shown else None
        if not shown:
            redacted.append(f"customer.{field}")
    attributes: dict[str, Any] = {}
    if row.attributes == C:
        attributes |= CLEAR_ATTRIBUTES
    if row.undeclared == C:
        attributes |= LEGACY
    if row.pii == C:
        attributes |= PII_ATTRIBUTES
    if row.pii == M:
        attributes |= MASKED_PII
    if {row.attributes, row.undeclared, row.pii} == {H}:
        customer["attributes"] = None
        redacted.append("customer.attributes")
    else:
        customer["attributes"] = attributes
    expected: dict[str, Any] = {"data": {"customer": customer}}
    if redacted:
        expected["extensions"] = {"redacted": sorted(redacted)}
    return expected


def _case_id(case: tuple[Role, Purpose]) -> str:
    return f"{case[0].value}-{case[1].value}"


@pytest.mark.parametrize("case", list(TABLE), ids=[_case_id(c) for c in TABLE])
def test_the_profile_and_attributes_follow_the_policy_table(
    vault: Vault, gateway: Gateway, person: uuid.UUID, case: tuple[Role, Purpose]
) -> None:
    """Each role x purpose sees locale, tier, tags and each kind of attribute as the table
    says, on the compiled path and through graphql-core alike, and the read is audited
    with every resolution (no value)."""
    role, purpose = case
    row = TABLE[case]
    subject = person if role is Role.DATA_SUBJECT else None
    answers = [
        gateway.post(
            query, {"id": str(person)}, role=role, purpose=purpose.value, customer_id=subject,
            request_id=f"attrs-{role.value}-{purpose.value}-{n}",
        ).json()
        for n, query in enumerate((COMPILED, GENERAL))
    ]  # fmt: skip
    assert [_expected(person, row)] * 2 == answers

    with vault.db.transaction() as s:
        everything = s.scalars(select(AuditEntryRow.canonical)).all()
    wanted = f"attrs-{role.value}-{purpose.value}-0"
    entries = [raw for raw in everything if _json(raw)["request"] == wanted]
    reads = [e for e in map(_json, entries) if e["action"] == "pii.access"]
    assert 1 == len(reads)
    fields = reads[0]["fields"]
    assert {
        "locale": row.locale,
        "tier": row.tier,
        "tags": row.tags,
        "attributes": row.attributes,
        "undeclared_attributes": row.undeclared,
        **{f"attr:{name}": row.pii for name in DECLARED_PII},
    } == {k: v for k, v in fields.items() if k not in _SIX}
    raw = b"\n".join(entries).decode("utf-8")
    assert [] == [v for v in (NICKNAME, "LN-0042-7781", "2015-06-20", "فیروزه‌ای") if v in raw]


_SIX: Final = {"email", "phone", "first_name", "last_name", "birth_date", "address"}


def _json(raw: bytes | str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(raw)
    return value


def test_a_listing_filter_reads_the_field_it_filters_on(
    gateway: Gateway, person: uuid.UUID
) -> None:
    """Filtering customers by locale reads the locale: refused (FORBIDDEN) for the analyst,
    whose policy hides it; the support agent, who sees it, gets the customer."""
    query = (
        'query { customers(first: 5, filter: {locale: "fa-IR"}) { edges { node { customerId } } } }'
    )
    refused = gateway.post(query, role=Role.ANALYST, purpose="analytics").json()
    assert ["FORBIDDEN"] == [e["extensions"]["code"] for e in refused["errors"]]
    found = gateway.post(query, role=Role.SUPPORT_AGENT, purpose="support").json()
    assert [{"node": {"customerId": str(person)}}] == found["data"]["customers"]["edges"]


# -- writes -------------------------------------------------------------------------------

CREATE: Final = "mutation($v: CustomerInput!) { createCustomer(input: $v) { customerId } }"
UPDATE: Final = (
    "mutation($id: ID!, $v: CustomerPatchInput!) { updateCustomer(id: $id, input: $v) { id } }"
)


def _count(vault: Vault) -> int:
    with vault.db.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(CustomerRow)) or 0)


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        pytest.param(
            {"plan": "pro", "colour": "teal"},
            "attributes.colour: is not a declared attribute (policies/attributes.toml, "
            "CVAULT_ATTRIBUTES_FILE)",
            id="undeclared",
        ),
        pytest.param(
            {"score": "high"}, "attributes.score: must be a decimal (as declared)", id="type"
        ),
        pytest.param(
            {"anniversary": "2023-02-30"},
            "attributes.anniversary: must be a calendar date (YYYY-MM-DD)",
            id="date",
        ),
        pytest.param(
            {"household_size": True},
            "attributes.household_size: must be an integer (as declared)",
            id="boolean-for-integer",
        ),
    ],
)
def test_create_refuses_an_undeclared_or_ill_typed_attribute(
    vault: Vault, gateway: Gateway, attributes: dict[str, Any], message: str
) -> None:
    """createCustomer with an attribute nobody declared, or of the wrong type, answers
    BAD_USER_INPUT naming the attribute (never its value) and writes nothing."""
    response = gateway.post(
        CREATE,
        {"v": {"email": "new@example.com", "attributes": attributes}},
        role=Role.INGEST_SERVICE,
        purpose="service_delivery",
    ).json()
    assert [(message, "BAD_USER_INPUT")] == [
        (e["message"], e["extensions"]["code"]) for e in response["errors"]
    ]
    assert 0 == _count(vault)


def test_update_refuses_an_undeclared_attribute_and_changes_nothing(
    vault: Vault, gateway: Gateway, person: uuid.UUID
) -> None:
    """updateCustomer with an undeclared name is BAD_USER_INPUT; the stored attributes
    stay as they were."""
    response = gateway.post(
        UPDATE,
        {"id": str(person), "v": {"attributes": {"plan": "team", "vip_level": 3}}},
        role=Role.INGEST_SERVICE,
        purpose="service_delivery",
    ).json()
    assert [("attributes.vip_level: is not a declared attribute (policies/attributes.toml, "
             "CVAULT_ATTRIBUTES_FILE)", "BAD_USER_INPUT")] == [
        (e["message"], e["extensions"]["code"]) for e in response["errors"]
    ]  # fmt: skip
    with vault.unit(CTX) as s:
        stored = vault.customers.get(s, person).attributes
    assert {**CLEAR_ATTRIBUTES, **PII_ATTRIBUTES, **LEGACY} == stored


def test_an_update_changes_the_attributes_it_names_and_null_removes_one(
    vault: Vault, gateway: Gateway, person: uuid.UUID
) -> None:
    """A patch's attributes are merged: named ones change (a PII one sealed again), null
    removes one (an undeclared legacy one too), the others stay."""
    response = gateway.post(
        UPDATE,
        {
            "id": str(person),
            "v": {"attributes": {"plan": "team", "nickname": "小明", "legacy_note": None,
                                 "score": None}},
        },
        role=Role.INGEST_SERVICE,
        purpose="service_delivery",
    ).json()  # fmt: skip
    assert "errors" not in response
    with vault.unit(CTX) as s:
        stored = vault.customers.get(s, person).attributes
    assert {
        "plan": "team",
        "favourite_colour": "فیروزه‌ای",
        "nickname": "小明",
        "loyalty_number": "LN-0042-7781",
        "anniversary": "2015-06-20",
    } == stored


def test_the_data_subject_reads_names_in_any_script_back_exactly(
    vault: Vault, gateway: Gateway
) -> None:
    """Persian, Thai and Chinese values of a PII and a clear attribute round-trip exactly
    (written by the ingest service, read by the data subject)."""
    for value in ("شیرین عبادی", "สมชาย ใจดี", "王小明"):
        made = gateway.post(
            CREATE,
            {"v": {"attributes": {"nickname": value, "favourite_colour": value}}},
            role=Role.INGEST_SERVICE,
            purpose="service_delivery",
        ).json()["data"]["createCustomer"]["customerId"]
        mine = gateway.post(
            "query { me { attributes } }",
            role=Role.DATA_SUBJECT,
            purpose="self",
            customer_id=uuid.UUID(made),
        ).json()
        assert {"me": {"attributes": {"nickname": value, "favourite_colour": value}}} == mine[
            "data"
        ]


def test_create_segment_refuses_a_rule_on_a_pii_attribute(gateway: Gateway) -> None:
    """A segment rule on a PII attribute is BAD_USER_INPUT naming the node and the
    attribute."""
    mutation = """mutation { createSegment(input: {name: "loyal", rule: {attribute:
      {field: CUSTOM, key: "loyalty_number", op: EXISTS}}}) { id } }"""
    response = gateway.post(mutation, role=Role.MARKETING, purpose="marketing_email").json()
    assert [
        (
            "rule.attribute.key: attribute 'loyalty_number' is personal data (declared pii = "
            "true) and stored encrypted: segment rules cannot use it",
            "BAD_USER_INPUT",
        )
    ] == [(e["message"], e["extensions"]["code"]) for e in response["errors"]]
