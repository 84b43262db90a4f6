"""Issue 3's default policy table as a matrix through the real ASGI app.

For every role and each purpose it may use, a ``customer(id)`` query asks for the
six PII fields and the customer's interactions with their payloads. Each field
must come back clear (the stored value), masked (exactly what policies/masking.py
makes of the stored value) or hidden (null, and its path in
``extensions.redacted``). The customer's first name is Persian and the last name
Thai with a combining vowel on its first letter, so a mask that counted bytes or
code points instead of characters would show. Every request must leave a
``pii.access`` audit entry with the fields' resolutions, every refusal an
``access.denied`` entry, and no entry may hold a PII value.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import httpx2
import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from api.app import create_app
from api.auth import LocalTokenIssuer
from api.graphql.endpoint import RateLimiter
from policies import Purpose, Role, default_policy_lines
from policies.masking import (
    mask_birth_date,
    mask_email,
    mask_name,
    mask_phone,
    mask_postal_address,
)
from tests.conftest import CTX, grant_all_consents
from tests.relay import global_id
from vault.customers import Customer, CustomerInput
from vault.customers.addresses import PostalAddress
from vault.interactions import InteractionInput
from vault.runtime import Vault
from vault.storage.models import AuditEntryRow, CustomerRow, InteractionRow

ISSUER: Final = "customer-vault"
FIRST_NAME: Final = "زهرا"  # Persian (Zahra)
LAST_NAME: Final = "จิตรภักดี"  # Thai (Chitpakdee): its first letter carries a vowel mark
PERSON = CustomerInput(
    email="zahra.chitpakdee@example.ir",
    phone="+98 912 345 6789",
    first_name=FIRST_NAME,
    last_name=LAST_NAME,
    birth_date="1990-04-17",
    address=PostalAddress(street="خیابان ولیعصر، پلاک ۱۲", city="تهران", country="IR"),
    locale="fa-IR",
)
PAYLOAD: Final = {"text": "سلام، سفارش من کجاست؟"}

C, M, H = "clear", "masked", "hidden"
# GraphQL field -> the policy's resource name, in the table's column order.
FIELDS: Final = {
    "email": "email",
    "phone": "phone",
    "firstName": "first_name",
    "lastName": "last_name",
    "birthDate": "birth_date",
    "address": "address",
}
MASKS: Final[dict[str, Callable[[str], str]]] = {
    "email": mask_email,
    "phone": mask_phone,
    "firstName": mask_name,
    "lastName": mask_name,
    "birthDate": mask_birth_date,
    # An address in parts shows its city and country only.
    "address": lambda _formatted: mask_postal_address("تهران", "IR"),
}


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of issue 3's table: the six fields, then interactions and payloads."""

    fields: tuple[str, str, str, str, str, str]
    interactions: bool
    payload: bool = False


TABLE: Final[dict[tuple[Role, Purpose], Row]] = {
    (Role.SUPPORT_AGENT, Purpose.SUPPORT): Row((M, M, C, C, H, M), True),
    (Role.MARKETING, Purpose.MARKETING_EMAIL): Row((C, H, C, H, M, H), True),
    (Role.MARKETING, Purpose.MARKETING_SMS): Row((H, C, C, H, M, H), True),
    (Role.MARKETING, Purpose.PERSONALIZATION): Row((H, H, C, H, H, H), True),
    (Role.ANALYST, Purpose.ANALYTICS): Row((H, H, H, H, H, H), True),
    (Role.COMPLIANCE_OFFICER, Purpose.COMPLIANCE): Row((M, M, M, M, H, H), True),
    (Role.ADMIN, Purpose.ADMINISTRATION): Row((M, M, M, M, H, H), False),
    (Role.INGEST_SERVICE, Purpose.SERVICE_DELIVERY): Row((H, H, H, H, H, H), False),
    (Role.DATA_SUBJECT, Purpose.SELF): Row((C, C, C, C, C, C), True, payload=True),
}
ALLOWED: Final[dict[Role, set[Purpose]]] = {role: set() for role in Role}
for _role, _purpose in TABLE:
    ALLOWED[_role].add(_purpose)

PROFILE_QUERY: Final = """
query Profile($id: ID!) {
  customer(id: $id) {
    id email phone firstName lastName birthDate address
    interactions(first: 5) { edges { node { type payload } } }
  }
}
"""
PII_SELECTION: Final = "id email phone firstName lastName birthDate address"


@dataclasses.dataclass
class Gateway:
    client: TestClient
    issuer: LocalTokenIssuer

    def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        role: Role,
        purpose: str,
        customer_id: uuid.UUID | None = None,
        request_id: str | None = None,
    ) -> httpx2.Response:
        token = self.issuer.issue(f"{role.value}-1", role, customer_id=customer_id)
        headers = {"Authorization": f"Bearer {token}", "X-Purpose": purpose}
        if request_id is not None:
            headers["X-Request-ID"] = request_id
        return self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )


@dataclasses.dataclass(frozen=True)
class Person:
    """The stored customer as the system sees it (clear values), and its id."""

    stored: Customer

    @property
    def id(self) -> uuid.UUID:
        return self.stored.id

    def clear(self, field: str) -> str:
        value = getattr(self.stored, FIELDS[field])
        assert isinstance(value, str)
        return value

    def expected(self, field: str, how: str) -> str | None:
        if how == C:
            return self.clear(field)
        if how == M:
            return MASKS[field](self.clear(field))
        return None

    def pii_values(self) -> list[str]:
        """Every PII value and every mask of one: none may reach the audit log."""
        values = [self.clear(f) for f in FIELDS]
        values += [MASKS[f](self.clear(f)) for f in FIELDS]
        values += [PAYLOAD["text"], "9123456789", "zahra", "example.ir"]
        return values


@pytest.fixture
def gateway(vault: Vault, tmp_path: Path) -> Gateway:
    issuer = LocalTokenIssuer.load_or_create(tmp_path / "jwt.json", ISSUER, ISSUER)
    app = create_app(
        vault, verifier=issuer.verifier(), local_issuer=issuer, rate_limiter=RateLimiter(10_000)
    )
    return Gateway(TestClient(app), issuer)


def _create(vault: Vault, data: CustomerInput = PERSON, *, payload: bool = True) -> Person:
    """A customer with every field set and one chat interaction (with a payload)."""
    with vault.unit(CTX) as s:
        made = vault.customers.create(s, data)
        vault.interactions.record_many(
            s,
            [
                InteractionInput(
                    customer_id=made.id, channel="chat", type="chat_message",
                    occurred_at=datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
                    payload=PAYLOAD if payload else None,
                )
            ],
        )  # fmt: skip
    grant_all_consents(vault, made.id)
    return Person(made)


@pytest.fixture
def person(vault: Vault) -> Person:
    return _create(vault)


def _audit(vault: Vault) -> list[dict[str, Any]]:
    with vault.db.transaction() as s:
        rows = s.scalars(select(AuditEntryRow.canonical).order_by(AuditEntryRow.id)).all()
    return [json.loads(r) for r in rows]


def _raw_audit(vault: Vault) -> list[bytes]:
    with vault.db.transaction() as s:
        return list(s.scalars(select(AuditEntryRow.canonical)).all())


def _of_request(entries: list[dict[str, Any]], request_id: str) -> list[dict[str, Any]]:
    return [e for e in entries if e["request"] == request_id]


def _assert_no_pii(vault: Vault, person: Person) -> None:
    raw = b"\n".join(_raw_audit(vault)).decode("utf-8")
    leaked = [value for value in person.pii_values() if value in raw]
    assert leaked == []


def _count(vault: Vault, table: type[CustomerRow] | type[InteractionRow]) -> int:
    with vault.db.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(table)) or 0)


def _root(body: dict[str, Any], field: str) -> Any:
    """A root field of the response: null when the field or the whole data is null (a
    refused mutation is null either way, whichever nullability the schema gives it)."""
    return (body.get("data") or {}).get(field)


def _codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


# -- reads: the matrix ------------------------------------------------------------------


def _case_id(case: tuple[Role, Purpose]) -> str:
    return f"{case[0].value}-{case[1].value}"


@pytest.mark.parametrize("case", list(TABLE), ids=[_case_id(c) for c in TABLE])
def test_the_profile_follows_the_policy_table(
    vault: Vault, gateway: Gateway, person: Person, case: tuple[Role, Purpose]
) -> None:
    """Each role reading for each purpose it may use sees each PII field exactly as the
    table says (clear = stored value, masked = the mask of it, hidden = null and listed in
    extensions.redacted); interactions are there or null and redacted; a payload only for
    the data subject. The request leaves one pii.access entry with the fields' (and the
    timeline's) resolutions, an access.denied entry for a refused timeline, and no PII
    value."""
    role, purpose = case
    row = TABLE[case]
    request_id = f"matrix-{role.value}-{purpose.value}"
    response = gateway.post(
        PROFILE_QUERY,
        {"id": str(person.id)},
        role=role,
        purpose=purpose.value,
        customer_id=person.id if role is Role.DATA_SUBJECT else None,
        request_id=request_id,
    )

    customer: dict[str, Any] = {"id": global_id(vault, "Customer", person.id)}
    redacted: list[str] = []
    for field, how in zip(FIELDS, row.fields, strict=True):
        customer[field] = person.expected(field, how)
        if how == H:
            redacted.append(f"customer.{field}")
    if row.interactions:
        customer["interactions"] = {
            "edges": [
                {"node": {"type": "CHAT_MESSAGE", "payload": PAYLOAD if row.payload else None}}
            ]
        }
        if not row.payload:
            redacted.append("customer.interactions.edges.0.node.payload")
    else:
        customer["interactions"] = None
        redacted.append("customer.interactions")
    expected: dict[str, Any] = {"data": {"customer": customer}}
    if redacted:
        expected["extensions"] = {"redacted": sorted(redacted)}
    assert response.status_code == 200
    assert response.json() == expected

    entries = _of_request(_audit(vault), request_id)
    reads = [e for e in entries if e["action"] == "pii.access"]
    # The six PII fields here; the clear profile and custom attributes the entry also
    # records are checked in test_graphql_attributes.py.
    six = set(FIELDS.values())
    assert [
        (e["customer"], {k: v for k, v in e["fields"].items() if k in six}, e["outcome"])
        for e in reads
    ] == [
        (
            str(person.id),
            {FIELDS[f]: how for f, how in zip(FIELDS, row.fields, strict=True)},
            "success",
        )
    ]
    assert {(e["role"], e["purpose"]) for e in entries} == {(role.value, purpose.value)}
    timeline_fields = ("interactions", "interaction_payload")
    timeline = [
        (e["action"], e["customer"], {k: v for k, v in e["fields"].items() if k in timeline_fields})
        for e in entries
        if e["action"] == "access.denied" or any(k in e["fields"] for k in timeline_fields)
    ]
    if row.interactions:
        payload = C if row.payload else H
        assert timeline == [
            ("pii.access", str(person.id), {"interactions": C, "interaction_payload": payload})
        ]
    else:
        assert timeline == [("access.denied", str(person.id), {})]
    _assert_no_pii(vault, person)


def test_masks_count_characters_not_bytes(gateway: Gateway, person: Person) -> None:
    """A compliance officer sees the Persian first name as its first letter and the Thai
    last name as its first letter with its vowel mark, each followed by ***; the e-mail as
    z***@e***.ir and the phone as *** and its last four digits."""
    response = gateway.post(
        f"query($id: ID!) {{ customer(id: $id) {{ {PII_SELECTION} }} }}",
        {"id": str(person.id)},
        role=Role.COMPLIANCE_OFFICER,
        purpose="compliance",
    )
    seen = response.json()["data"]["customer"]
    assert (seen["firstName"], seen["lastName"], seen["email"], seen["phone"]) == (
        "ز***",
        "จิ***",
        "z***@e***.ir",
        "***6789",
    )


def test_the_support_mask_of_a_persian_address_shows_city_and_country(
    gateway: Gateway, person: Person
) -> None:
    """A support agent sees the address as its city and country only, and the birthday
    not at all; marketing sees the birthday as --MM-DD; the data subject sees it all."""
    query = f"query($id: ID!) {{ customer(id: $id) {{ {PII_SELECTION} }} }}"
    support = gateway.post(
        query, {"id": str(person.id)}, role=Role.SUPPORT_AGENT, purpose="support"
    )
    marketing = gateway.post(
        query, {"id": str(person.id)}, role=Role.MARKETING, purpose="marketing_email"
    )
    mine = gateway.post(
        query, {"id": str(person.id)}, role=Role.DATA_SUBJECT, purpose="self",
        customer_id=person.id,
    )  # fmt: skip
    assert support.json()["data"]["customer"]["address"] == "تهران, IR"
    assert mine.json()["data"]["customer"]["address"] == "خیابان ولیعصر، پلاک ۱۲, تهران, IR"
    assert support.json()["data"]["customer"]["birthDate"] is None
    assert marketing.json()["data"]["customer"]["birthDate"] == "--04-17"


@pytest.mark.parametrize("case", list(TABLE)[:-1], ids=[_case_id(c) for c in list(TABLE)[:-1]])
def test_lookups_by_email_and_phone_follow_the_table(
    vault: Vault, gateway: Gateway, person: Person, case: tuple[Role, Purpose]
) -> None:
    """customerByEmail and customerByPhone find the customer (the comparison happens
    inside the vault) and return it under the same table as customer(id)."""
    role, purpose = case
    row = TABLE[case]
    query = (
        "query($e: String!, $p: String!) { "
        f"byEmail: customerByEmail(email: $e) {{ {PII_SELECTION} }} "
        f"byPhone: customerByPhone(phone: $p) {{ {PII_SELECTION} }} }}"
    )
    response = gateway.post(
        query,
        {"e": "Zahra.Chitpakdee@EXAMPLE.ir", "p": "+989123456789"},
        role=role,
        purpose=purpose.value,
    )
    expected = {"id": global_id(vault, "Customer", person.id)} | {
        field: person.expected(field, how) for field, how in zip(FIELDS, row.fields, strict=True)
    }
    body = response.json()
    assert body["data"] == {"byEmail": expected, "byPhone": expected}
    hidden = [f for f, how in zip(FIELDS, row.fields, strict=True) if how == H]
    assert body.get("extensions", {}).get("redacted", []) == sorted(
        [f"byEmail.{f}" for f in hidden] + [f"byPhone.{f}" for f in hidden]
    )
    _assert_no_pii(vault, person)


# -- the data subject -------------------------------------------------------------------


def test_a_data_subject_reaches_its_own_record_through_me(
    vault: Vault, gateway: Gateway, person: Person
) -> None:
    """`me` answers a data subject with its own record, every field clear and the
    interaction payload included; nothing is redacted."""
    response = gateway.post(
        "{ me { id email phone firstName lastName birthDate address "
        "interactions(first: 5) { edges { node { type payload } } } } }",
        role=Role.DATA_SUBJECT,
        purpose="self",
        customer_id=person.id,
    )
    me: dict[str, Any] = {"id": global_id(vault, "Customer", person.id)} | {
        f: person.clear(f) for f in FIELDS
    }
    me["interactions"] = {"edges": [{"node": {"type": "CHAT_MESSAGE", "payload": PAYLOAD}}]}
    assert response.json() == {"data": {"me": me}}
    _assert_no_pii(vault, person)


def test_a_data_subject_is_refused_another_customer(
    vault: Vault, gateway: Gateway, person: Person
) -> None:
    """With another customer's id a data subject gets a FORBIDDEN error and null data;
    the refusal is audited against the other customer and nothing of it is read."""
    other = _create(vault, dataclasses.replace(PERSON, email="other@example.ir", phone=None))
    response = gateway.post(
        PROFILE_QUERY,
        {"id": str(other.id)},
        role=Role.DATA_SUBJECT,
        purpose="self",
        customer_id=person.id,
        request_id="subject-other-1",
    )
    body = response.json()
    assert response.status_code == 200
    assert body["data"] is None
    assert [(e["message"], e["extensions"]["code"], e["path"]) for e in body["errors"]] == [
        ("access denied", "FORBIDDEN", ["customer"])
    ]
    assert "other@example.ir" not in response.text
    entries = _of_request(_audit(vault), "subject-other-1")
    assert [(e["action"], e["customer"], e["outcome"]) for e in entries] == [
        ("access.denied", str(other.id), "denied")
    ]


def test_a_data_subject_may_not_search_or_list(gateway: Gateway, person: Person) -> None:
    """Lookups by e-mail or phone and the customer list are not for a data subject, not
    even when they would find its own record: FORBIDDEN."""
    cases: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = [
        (
            "query($e: String!) { customerByEmail(email: $e) { id } }",
            {"e": PERSON.email},
            {"customerByEmail": None},
        ),
        (
            "query($p: String!) { customerByPhone(phone: $p) { id } }",
            {"p": "+989123456789"},
            {"customerByPhone": None},
        ),
        ("{ customers { edges { node { id } } } }", {}, None),
    ]
    for query, variables, data in cases:
        response = gateway.post(
            query, variables, role=Role.DATA_SUBJECT, purpose="self", customer_id=person.id
        )
        assert (response.json()["data"], _codes(response.json())) == (data, ["FORBIDDEN"])


@pytest.mark.parametrize("case", list(TABLE)[:-1], ids=[_case_id(c) for c in list(TABLE)[:-1]])
def test_me_is_forbidden_for_other_roles(gateway: Gateway, case: tuple[Role, Purpose]) -> None:
    """`me` needs a data subject's token: any other role gets FORBIDDEN and null."""
    role, purpose = case
    response = gateway.post("{ me { id firstName } }", role=role, purpose=purpose.value)
    body = response.json()
    assert (body["data"], _codes(body)) == (None, ["FORBIDDEN"])
    assert body["errors"][0]["message"] == "me: only a data subject's token names a customer"


def test_an_empty_payload_is_not_reported_as_hidden(vault: Vault, gateway: Gateway) -> None:
    """A data subject's interaction that has no payload resolves to null without being
    listed in extensions.redacted: it is empty, not hidden."""
    person = _create(vault, payload=False)
    response = gateway.post(
        "{ me { interactions { edges { node { type payload } } } } }",
        role=Role.DATA_SUBJECT,
        purpose="self",
        customer_id=person.id,
    )
    assert response.json() == {
        "data": {
            "me": {"interactions": {"edges": [{"node": {"type": "CHAT_MESSAGE", "payload": None}}]}}
        }
    }


# -- purposes a role may not use --------------------------------------------------------


@pytest.mark.parametrize("role", list(Role), ids=[r.value for r in Role])
def test_every_purpose_a_role_may_not_use_is_403(
    vault: Vault, gateway: Gateway, person: Person, role: Role
) -> None:
    """Each role asking for any purpose outside its row of the table is refused with HTTP
    403 FORBIDDEN before anything is read, and each refusal is an access.denied entry."""
    refused = [p for p in Purpose if p not in ALLOWED[role]]
    responses = {
        p: gateway.post(
            PROFILE_QUERY,
            {"id": str(person.id)},
            role=role,
            purpose=p.value,
            customer_id=person.id if role is Role.DATA_SUBJECT else None,
        )
        for p in refused
    }
    assert {p: (r.status_code, _codes(r.json())) for p, r in responses.items()} == {
        p: (403, ["FORBIDDEN"]) for p in refused
    }
    assert all("data" not in r.json() for r in responses.values())
    entries = _audit(vault)
    denials = [e for e in entries if e["action"] == "access.denied"]
    assert sorted((d["role"], d["purpose"], d["detail"]["stage"]) for d in denials) == sorted(
        (role.value, p.value, "purpose") for p in refused
    )
    assert [e for e in entries if e["action"] == "pii.access"] == []


# -- writes -----------------------------------------------------------------------------

CREATE: Final = """
mutation Create($input: CustomerInput!) {
  createCustomer(input: $input) { customerId email firstName tier }
}
"""
UPDATE: Final = """
mutation Update($id: ID!, $input: CustomerPatchInput!) {
  updateCustomer(id: $id, input: $input) { customerId tier }
}
"""
RECORD: Final = """
mutation Record($items: [InteractionInput!]!) {
  recordInteractions(interactions: $items) { inserted duplicates }
}
"""
NEW_CUSTOMER: Final = {
    "email": "li.wei@example.cn",
    "phone": "+86 138 0013 8000",
    "firstName": "伟",
    "lastName": "李",
    "birthDate": "1985-11-02",
    "address": "北京市朝阳区建国路 88 号",
    "tier": "silver",
}


def _interaction(customer_id: uuid.UUID, external_id: str) -> dict[str, Any]:
    return {
        "customerId": str(customer_id),
        "channel": "CHAT",
        "type": "CHAT_MESSAGE",
        "occurredAt": "2026-04-01T10:00:00+00:00",
        "externalId": external_id,
        "payload": {"text": "ni hao"},
    }


def test_the_ingest_service_writes_and_reads_nothing_back(
    vault: Vault, gateway: Gateway, person: Person
) -> None:
    """createCustomer, updateCustomer and recordInteractions succeed for ingest_service
    with purpose service_delivery; what it gets back has every PII field hidden (and the
    clear profile too: it reads nothing); the writes are stored and audited without
    values."""
    ingest, purpose = Role.INGEST_SERVICE, "service_delivery"
    created = gateway.post(CREATE, {"input": NEW_CUSTOMER}, role=ingest, purpose=purpose)
    made = created.json()["data"]["createCustomer"]
    updated = gateway.post(
        UPDATE,
        {"id": made["customerId"], "input": {"tier": "gold", "lastName": "王"}},
        role=ingest,
        purpose=purpose,
    )
    recorded = gateway.post(
        RECORD, {"items": [_interaction(person.id, "ext-1")]}, role=ingest, purpose=purpose
    )
    assert created.json() == {
        "data": {
            "createCustomer": {
                "customerId": made["customerId"],
                "email": None,
                "firstName": None,
                "tier": None,
            }
        },
        "extensions": {
            "redacted": ["createCustomer.email", "createCustomer.firstName", "createCustomer.tier"]
        },
    }
    assert updated.json() == {
        "data": {"updateCustomer": {"customerId": made["customerId"], "tier": None}},
        "extensions": {"redacted": ["updateCustomer.tier"]},
    }
    assert recorded.json() == {"data": {"recordInteractions": {"inserted": 1, "duplicates": 0}}}
    with vault.unit(CTX) as s:
        stored = vault.customers.get(s, uuid.UUID(made["customerId"]))
        timeline = vault.interactions.timeline(s, person.id)
    assert (stored.email, stored.phone, stored.first_name, stored.last_name, stored.tier) == (
        "li.wei@example.cn",
        "+8613800138000",
        "伟",
        "王",
        "gold",
    )
    assert [i.payload for i in timeline.items] == [{"text": "ni hao"}, PAYLOAD]
    written = [
        (e["action"], e["outcome"], e["customer"])
        for e in _audit(vault)
        if e["role"] == "ingest_service"
    ]
    assert written == [
        ("customer.create", "success", made["customerId"]),
        ("customer.update", "success", made["customerId"]),
        ("interactions.record", "success", None),
    ]
    raw = b"\n".join(_raw_audit(vault)).decode("utf-8")
    assert [v for v in ("li.wei", "伟", "王", "北京", "ni hao", "13800138000") if v in raw] == []


def test_a_support_agent_may_not_write(vault: Vault, gateway: Gateway, person: Person) -> None:
    """createCustomer, updateCustomer and recordInteractions are FORBIDDEN for a support
    agent: null data, nothing stored or changed, and one access.denied entry each."""
    support, purpose = Role.SUPPORT_AGENT, "support"
    customers, interactions = _count(vault, CustomerRow), _count(vault, InteractionRow)
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("createCustomer", CREATE, {"input": NEW_CUSTOMER}),
        ("updateCustomer", UPDATE, {"id": str(person.id), "input": {"tier": "platinum"}}),
        ("recordInteractions", RECORD, {"items": [_interaction(person.id, "ext-2")]}),
    ]
    results = [
        (
            field,
            gateway.post(
                query, variables, role=support, purpose=purpose, request_id=f"support-w-{n}"
            ).json(),
        )
        for n, (field, query, variables) in enumerate(requests, start=1)
    ]
    assert [(_root(body, field), _codes(body)) for field, body in results] == [
        (None, ["FORBIDDEN"])
    ] * 3
    assert (_count(vault, CustomerRow), _count(vault, InteractionRow)) == (customers, interactions)
    with vault.unit(CTX) as s:
        assert vault.customers.get(s, person.id).tier is None
    entries = _audit(vault)
    for request_id in ("support-w-1", "support-w-2", "support-w-3"):
        actions = [e["action"] for e in _of_request(entries, request_id)]
        assert actions == ["access.denied"]
    _assert_no_pii(vault, person)


def _ingest_fields(vault: Vault, action: str) -> list[dict[str, str]]:
    return [
        e["fields"]
        for e in _audit(vault)
        if e["role"] == "ingest_service" and e["action"] == action
    ]


def test_create_is_audited_with_the_fields_written(vault: Vault, gateway: Gateway) -> None:
    """The customer.create entry of a createCustomer names each PII field given as
    'written', and nothing else."""
    gateway.post(
        CREATE, {"input": NEW_CUSTOMER}, role=Role.INGEST_SERVICE, purpose="service_delivery"
    )
    assert _ingest_fields(vault, "customer.create") == [dict.fromkeys(FIELDS.values(), "written")]


def test_update_is_audited_with_exactly_the_fields_written(
    vault: Vault, gateway: Gateway, person: Person
) -> None:
    """The customer.update entry of an updateCustomer names the fields the patch set, and
    no field it did not touch."""
    gateway.post(
        UPDATE,
        {"id": str(person.id), "input": {"tier": "gold", "lastName": "王"}},
        role=Role.INGEST_SERVICE,
        purpose="service_delivery",
    )
    assert _ingest_fields(vault, "customer.update") == [{"last_name": "written", "tier": "written"}]


@pytest.mark.parametrize(
    "case",
    [c for c in TABLE if c[0] is not Role.INGEST_SERVICE],
    ids=[_case_id(c) for c in TABLE if c[0] is not Role.INGEST_SERVICE],
)
def test_only_the_ingest_service_creates_customers(
    vault: Vault, gateway: Gateway, case: tuple[Role, Purpose]
) -> None:
    """Every role but ingest_service, with each purpose it may use, is FORBIDDEN to
    create a customer, and nothing is stored."""
    role, purpose = case
    customer_id = uuid.uuid4() if role is Role.DATA_SUBJECT else None
    response = gateway.post(
        CREATE, {"input": NEW_CUSTOMER}, role=role, purpose=purpose.value, customer_id=customer_id
    )
    body = response.json()
    assert (_root(body, "createCustomer"), _codes(body)) == (None, ["FORBIDDEN"])
    assert _count(vault, CustomerRow) == 0


def test_an_address_comes_as_free_text_or_in_parts_not_both(
    vault: Vault, gateway: Gateway, person: Person
) -> None:
    """createCustomer with both address and postalAddress, or with a country that is not
    an ISO code, is BAD_USER_INPUT naming the field (not the value) and stores nothing;
    updateCustomer moves an address into parts, which a support agent sees as city and
    country."""
    ingest, purpose = Role.INGEST_SERVICE, "service_delivery"
    both = {**NEW_CUSTOMER, "postalAddress": {"city": "北京市", "country": "CN"}}
    bad_country = {
        **{k: v for k, v in NEW_CUSTOMER.items() if k != "address"},
        "postalAddress": {"city": "北京市", "country": "China"},
    }
    before = _customers(vault)
    answers = [
        gateway.post(CREATE, {"input": data}, role=ingest, purpose=purpose).json()
        for data in (both, bad_country)
    ]
    errors = [(a["errors"][0]["extensions"]["code"], a["errors"][0]["message"]) for a in answers]
    assert errors == [
        ("BAD_USER_INPUT", "postalAddress: give address or postalAddress, not both"),
        (
            "BAD_USER_INPUT",
            "postalAddress.country: is not an ISO 3166-1 alpha-2 country code (TH, DE, US, ...)",
        ),
    ]
    assert _customers(vault) == before
    moved = gateway.post(
        UPDATE,
        {"id": str(person.id), "input": {"postalAddress": {"street": "Rua Augusta 10",
                                                           "city": "São Paulo",
                                                           "country": "BR"}}},
        role=ingest, purpose=purpose,
    )  # fmt: skip
    assert "errors" not in moved.json()
    seen = gateway.post(
        "query($id: ID!) { customer(id: $id) { address } }", {"id": str(person.id)},
        role=Role.SUPPORT_AGENT, purpose="support",
    )  # fmt: skip
    assert seen.json()["data"] == {"customer": {"address": "São Paulo, BR"}}


def _customers(vault: Vault) -> int:
    with vault.unit(CTX) as s:
        return int(s.scalar(select(func.count()).select_from(CustomerRow)) or 0)


def test_postal_address_follows_the_address_rule(gateway: Gateway, person: Person) -> None:
    """postalAddress gives every part in clear, city and country when masked, and null
    with its path redacted when the address is hidden."""
    query = "query($id: ID!) { customer(id: $id) { postalAddress { street city region "
    query += "postalCode country } } }"
    variables = {"id": str(person.id)}
    mine = gateway.post(query, variables, role=Role.DATA_SUBJECT, purpose="self",
                        customer_id=person.id)  # fmt: skip
    support = gateway.post(query, variables, role=Role.SUPPORT_AGENT, purpose="support")
    analyst = gateway.post(query, variables, role=Role.ANALYST, purpose="analytics")
    assert mine.json()["data"]["customer"]["postalAddress"] == {
        "street": "خیابان ولیعصر، پلاک ۱۲", "city": "تهران", "region": None,
        "postalCode": None, "country": "IR",
    }  # fmt: skip
    assert support.json()["data"]["customer"]["postalAddress"] == {
        "street": None, "city": "تهران", "region": None, "postalCode": None, "country": "IR",
    }  # fmt: skip
    assert analyst.json() == {
        "data": {"customer": {"postalAddress": None}},
        "extensions": {"redacted": ["customer.postalAddress"]},
    }


REPLACE = "mutation($lines: [String!]!) { replacePolicy(lines: $lines) { version } }"
POLICY = "{ policy { version lines } }"


def test_replace_policy_refuses_a_lockout_and_admin_keeps_control(gateway: Gateway) -> None:
    """`replacePolicy(lines: [])` as admin is refused with BAD_USER_INPUT naming the
    administration purpose; the default policy stays in force, admin can still read it and
    change it, and a support agent is still served."""

    def admin(query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = gateway.post(
            query, variables, role=Role.ADMIN, purpose="administration"
        ).json()
        return body

    refused = admin(REPLACE, {"lines": []})
    still = admin(POLICY)
    changed = admin(REPLACE, {"lines": [*default_policy_lines(), "p, *, email, read:*, *, deny"]})
    support = gateway.post(
        "{ customers(first: 1) { edges { node { id } } } }", role=Role.SUPPORT_AGENT,
        purpose="support",
    )  # fmt: skip
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["BAD_USER_INPUT"]
    assert "administration" in refused["errors"][0]["message"]
    assert still["data"]["policy"]["version"] == 0
    assert changed["data"]["replacePolicy"]["version"] == 1
    assert support.status_code == 200
