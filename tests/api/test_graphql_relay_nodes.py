"""Relay Object Identification (issue 16, item 1): ``node(id:)`` answers exactly as the
typed field does, for every role and purpose of the default policy.

For each role x purpose (those a role may not use included: both paths are refused at
the gate alike) and each Node type, one request through the typed path and one through
``node`` must give the same status, the same value, the same errors (code, message and
path below the root field), the same redacted paths and the same audit entries (all but
ids, times and request ids). The typed path of a Customer, a Segment and a DsrRequest
is its own field; an Interaction has none, so its reference is its customer's
``interactions`` (a refused timeline is redacted there and FORBIDDEN through node; the
customer's own pii.access is that field's, not the interaction's); an AuditEntry's is the
list that shows it: ``auditLog`` (``me { accessHistory }`` for the data subject).

Through the real ASGI app, on SQLite and PostgreSQL. No PII value reaches the audit log
or a log line on these paths.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable
from typing import Any, Final

import pytest
from sqlalchemy import func, select
from structlog.testing import capture_logs

from audit.entries import AuditAction
from consent import Privacy
from consent.dsr.requests import DsrInput
from policies import Purpose, Role
from policies.purposes import registry
from tests.api.test_graphql_policy import (
    PERSON,
    Gateway,
    Person,
    _assert_no_pii,
    _create,
    gateway,
)
from tests.conftest import CTX
from tests.relay import global_id
from vault.runtime import Vault
from vault.storage.models import AuditEntryRow, InteractionRow

__all__ = ["gateway"]  # the policy matrix's fixture

CUSTOMER: Final = (
    "id customerId email phone firstName lastName birthDate address locale tier tags "
    "interactions(first: 5) { totalCount edges { cursor node { id type payload } } }"
)
SEGMENT: Final = (
    "id segmentId name size members(first: 5) { totalCount edges { node { customerId email } } }"
)
REQUEST: Final = "id requestId customerId type status"
INTERACTION: Final = "id interactionId channel type occurredAt payload"
ENTRY: Final = "id entryId action outcome customerId fields"
NODE: Final = "query($id: ID!) {{ node(id: $id) {{ ... on {type} {{ {selection} }} }} }}"
CASES: Final = [(role, purpose) for role in Role for purpose in Purpose]


@dataclasses.dataclass(frozen=True)
class World:
    """A consenting customer (Persian and Thai names, a chat with a payload), one without
    any consent, a segment holding both, the first one's access request, and an audit
    entry of a read of it."""

    person: Person
    other: Person
    segment: uuid.UUID
    request: uuid.UUID
    entry: uuid.UUID

    def interaction(self, vault: Vault, who: Person) -> uuid.UUID:
        with vault.db.transaction() as s:
            found = s.scalar(select(InteractionRow.id).where(InteractionRow.customer_id == who.id))
        assert found is not None
        return found


@pytest.fixture
def world(vault: Vault) -> World:
    person = _create(vault)
    other = _create(
        vault, dataclasses.replace(PERSON, email="other@example.ir", phone="+98 912 000 1111")
    )
    with vault.unit(CTX) as s:  # the other customer withdraws every consent it had
        ledger = Privacy.of(vault).ledger
        for purpose, info in registry().items():
            if info.needs_consent:
                ledger.withdraw(s, other.id, purpose)
    rule = {"attribute": {"field": "locale", "op": "eq", "value": "fa-IR"}}
    with vault.unit(CTX) as s:
        segment = vault.segments.create(s, name="Tehran", definition=rule)
        vault.segments.refresh(s, segment.id)
        filed = Privacy.of(vault).desk.create(s, DsrInput("access", person.id))
        vault.customers.get(s, person.id)  # a read: an entry of the person's access history
    with vault.db.transaction() as s:
        entry = s.scalars(
            select(AuditEntryRow.entry_id)
            .where(
                AuditEntryRow.customer_id == person.id,
                AuditEntryRow.action == AuditAction.PII_ACCESS.value,
            )
            .order_by(AuditEntryRow.id.desc())
        ).first()
    assert entry is not None
    return World(person, other, segment.id, filed.request.id, entry)


@dataclasses.dataclass(frozen=True)
class Answer:
    """One request's answer to one root field, in terms that do not depend on the root
    field's name, with the audit entries the request wrote."""

    status: int
    value: Any
    errors: list[tuple[str, str, list[Any]]]
    redacted: list[str]
    audited: list[dict[str, Any]]


def _last_entry(vault: Vault) -> int:
    with vault.db.transaction() as s:
        return int(s.scalar(select(func.max(AuditEntryRow.id))) or 0)


def _entries(vault: Vault, after: int, request_id: str) -> list[dict[str, Any]]:
    """The entries the request wrote (all but their ids, times and request ids)."""
    with vault.db.transaction() as s:
        rows = s.scalars(select(AuditEntryRow.canonical).where(AuditEntryRow.id > after)).all()
    out = []
    for row in rows:
        entry = json.loads(row)
        if entry.pop("request") == request_id:
            for volatile in ("id", "time"):
                entry.pop(volatile)
            out.append(entry)
    return sorted(out, key=lambda e: json.dumps(e, sort_keys=True))


class Asker:
    """Sends one request as one caller and reads its answer below one root field."""

    def __init__(
        self, vault: Vault, gateway: Gateway, case: tuple[Role, Purpose], owner: Person
    ) -> None:
        self.vault, self.gateway = vault, gateway
        self.role, self.purpose = case
        self.owner = owner.id if self.role is Role.DATA_SUBJECT else None
        self.sent = 0

    def __call__(self, query: str, variables: dict[str, Any], root: str) -> Answer:
        self.sent += 1
        request_id = f"relay-{self.role.value}-{self.purpose.value}-{self.sent}"
        before = _last_entry(self.vault)
        response = self.gateway.post(
            query, variables, role=self.role, purpose=self.purpose.value,
            customer_id=self.owner, request_id=request_id,
        )  # fmt: skip
        body = response.json()
        errors = [
            (e["extensions"]["code"], e["message"], e.get("path", [root])[1:])
            for e in body.get("errors", [])
        ]
        redacted = [
            p.removeprefix(f"{root}.") for p in body.get("extensions", {}).get("redacted", [])
        ]
        value = (body.get("data") or {}).get(root)
        audited = _entries(self.vault, before, request_id)
        return Answer(response.status_code, value, errors, redacted, audited)


def _node(ask: Asker, type_name: str, selection: str, gid: str) -> Answer:
    return ask(NODE.format(type=type_name, selection=selection), {"id": gid}, "node")


def _typed(ask: Asker, field: str, selection: str, local: uuid.UUID) -> Answer:
    query = f"query($id: ID!) {{ {field}(id: $id) {{ {selection} }} }}"
    return ask(query, {"id": str(local)}, field)


def _as_item(timeline: Answer, gid: str) -> Answer:
    """What node(id) of one interaction must answer, from its customer's timeline: the
    item itself, or the timeline's refusal as an error (FORBIDDEN when the field was
    redacted); the audit entries with only the timeline's part of the customer's one
    pii.access entry (its interactions and payload resolutions)."""
    timeline_fields = ("interactions", "interaction_payload")
    audited = []
    for e in timeline.audited:
        if e["action"] == AuditAction.PII_ACCESS.value:
            fields = {k: v for k, v in e["fields"].items() if k in timeline_fields}
            if not fields:
                continue
            e = {**e, "fields": fields}  # noqa: PLW2901
        audited.append(e)
    if timeline.status != 200 or timeline.value is None:
        return dataclasses.replace(timeline, audited=audited)
    interactions = timeline.value["interactions"]
    if interactions is None:  # redacted: the policy hides interactions from this caller
        refusal: list[tuple[str, str, list[Any]]] = [("FORBIDDEN", "access denied", [])]
        return Answer(200, None, refusal, [], audited)
    edges = interactions["edges"]
    (index,) = [n for n, e in enumerate(edges) if e["node"]["id"] == gid]
    prefix = f"interactions.edges.{index}.node."
    redacted = [p.removeprefix(prefix) for p in timeline.redacted if p.startswith(prefix)]
    return Answer(200, edges[index]["node"], timeline.errors, redacted, audited)


def _as_entry(listing: Answer, path: tuple[str, ...], gid: str) -> Answer:
    """What node(id) of one audit entry must answer, from the list that shows it: the
    entry, or the list's refusal; a page's audit.export counts one entry here, and of the
    data subject's read only its access history counts (``me`` read the rest, in the same
    merged pii.access entry)."""
    audited = []
    for e in listing.audited:
        if e["action"] == AuditAction.AUDIT_EXPORT.value:
            e = {**e, "detail": {**e["detail"], "entries": 1}}  # noqa: PLW2901
        if e["action"] == AuditAction.PII_ACCESS.value:
            e = {**e, "fields": {"access_history": e["fields"]["access_history"]}}  # noqa: PLW2901
        audited.append(e)
    if listing.status != 200 or listing.value is None:
        return dataclasses.replace(listing, audited=audited)
    found = listing.value
    for name in path:
        found = found[name]
    (item,) = [e["node"] for e in found["edges"] if e["node"]["id"] == gid]
    return Answer(200, item, listing.errors, [], audited)


def _check(expected: Answer, actual: Answer, what: str) -> None:
    assert (what, actual) == (what, expected)


@pytest.mark.parametrize("case", CASES, ids=[f"{r.value}-{p.value}" for r, p in CASES])
def test_node_answers_as_the_typed_field_for_every_role_and_purpose(
    vault: Vault, gateway: Gateway, world: World, case: tuple[Role, Purpose]
) -> None:
    """For every role x purpose: node(id) of a customer (consenting, and not), a segment,
    a data subject request, an interaction (of each customer) and an audit entry gives
    what the typed path gives: status, value, errors, redacted paths, audit entries."""
    ask = Asker(vault, gateway, case, world.person)
    gid: Callable[[str, uuid.UUID], str] = lambda t, local: global_id(vault, t, local)  # noqa: E731
    for who in (world.person, world.other):
        typed = _typed(ask, "customer", CUSTOMER, who.id)
        through = _node(ask, "Customer", CUSTOMER, gid("Customer", who.id))
        _check(typed, through, "customer")
    _check(
        _typed(ask, "segment", SEGMENT, world.segment),
        _node(ask, "Segment", SEGMENT, gid("Segment", world.segment)),
        "segment",
    )
    _check(
        _typed(ask, "dsrRequest", REQUEST, world.request),
        _node(ask, "DsrRequest", REQUEST, gid("DsrRequest", world.request)),
        "dsrRequest",
    )
    for who in (world.person, world.other):
        item = gid("Interaction", world.interaction(vault, who))
        timeline = f"interactions(first: 10) {{ edges {{ node {{ {INTERACTION} }} }} }}"
        expected = _as_item(_typed(ask, "customer", timeline, who.id), item)
        _check(expected, _node(ask, "Interaction", INTERACTION, item), "interaction")
    entry = gid("AuditEntry", world.entry)
    if case[0] is Role.DATA_SUBJECT:
        listing = ask(
            f"{{ me {{ accessHistory(first: 100) {{ edges {{ node {{ {ENTRY} }} }} }} }} }}",
            {}, "me",
        )  # fmt: skip
        expected = _as_entry(listing, ("accessHistory",), entry)
    else:
        listing = ask(
            f"query($c: ID!) {{ auditLog(first: 100, filter: {{customerId: $c}}) "
            f"{{ edges {{ node {{ {ENTRY} }} }} }} }}",
            {"c": str(world.person.id)}, "auditLog",
        )  # fmt: skip
        expected = _as_entry(listing, (), entry)
    _check(expected, _node(ask, "AuditEntry", ENTRY, entry), "auditEntry")
    _assert_no_pii(vault, world.person)


def _codes(body: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    return [(e["extensions"]["code"], e.get("path", [])) for e in body.get("errors", [])]


def test_node_outcomes_are_the_policys(vault: Vault, gateway: Gateway, world: World) -> None:
    """The matrix above compares the two paths; here, what they agree on: a support agent
    gets the consenting customer masked (its id the global id it asked with, its
    customerId the UUID); marketing_email gets CONSENT_REQUIRED for the customer who
    withdrew; a data subject gets FORBIDDEN for another customer; an admin, whose policy
    hides interactions, gets FORBIDDEN for an interaction."""
    query = NODE.format(type="Customer", selection="id customerId email firstName")
    person = global_id(vault, "Customer", world.person.id)
    other = global_id(vault, "Customer", world.other.id)
    support = gateway.post(query, {"id": person}, role=Role.SUPPORT_AGENT, purpose="support")
    assert support.json() == {
        "data": {"node": {"id": person, "customerId": str(world.person.id),
                          "email": "z***@e***.ir", "firstName": "زهرا"}}
    }  # fmt: skip
    marketing = gateway.post(query, {"id": other}, role=Role.MARKETING, purpose="marketing_email")
    subject = gateway.post(
        query, {"id": other}, role=Role.DATA_SUBJECT, purpose="self", customer_id=world.person.id
    )
    interaction = global_id(vault, "Interaction", world.interaction(vault, world.person))
    admin = gateway.post(
        NODE.format(type="Interaction", selection="id"), {"id": interaction},
        role=Role.ADMIN, purpose="administration",
    )  # fmt: skip
    assert [(r.json()["data"], _codes(r.json())) for r in (marketing, subject, admin)] == [
        ({"node": None}, [("CONSENT_REQUIRED", ["node"])]),
        ({"node": None}, [("FORBIDDEN", ["node"])]),
        ({"node": None}, [("FORBIDDEN", ["node"])]),
    ]


def test_a_forged_or_garbled_id_is_bad_user_input_and_reads_nothing(
    vault: Vault, gateway: Gateway, world: World
) -> None:
    """node(id:) with a UUID, garbage, a global id with one character changed, a cursor
    (sealed for another use) or a global id made under another key is BAD_USER_INPUT
    "id: is not an id this API returned" (the value is not echoed), and nothing is read
    or audited as read."""
    real = global_id(vault, "Customer", world.person.id)
    flipped = real[:10] + ("A" if real[10] != "A" else "B") + real[11:]
    cursor = gateway.post(
        "{ customers(first: 1) { edges { cursor } } }", role=Role.SUPPORT_AGENT,
        purpose="support",
    ).json()["data"]["customers"]["edges"][0]["cursor"]  # fmt: skip
    from vault.crypto.handles import Handles  # noqa: PLC0415 - only this test forges

    foreign = Handles(bytes(32)).seal("node", f"Customer:{world.person.id}")
    before = _last_entry(vault)
    for forged in (str(world.person.id), "not-an-id", flipped, cursor, foreign, "é" * 3):
        response = gateway.post(
            "query($id: ID!) { node(id: $id) { id } }", {"id": forged},
            role=Role.SUPPORT_AGENT, purpose="support",
        )  # fmt: skip
        body = response.json()
        assert (forged, body["data"], [(e["extensions"]["code"], e["message"])
                                       for e in body["errors"]]) == (
            forged, {"node": None}, [("BAD_USER_INPUT", "id: is not an id this API returned")],
        )  # fmt: skip
        assert forged not in response.text.replace('"node"', "")
    assert _entries(vault, before, "") == []
    with vault.db.transaction() as s:
        actions = s.scalars(select(AuditEntryRow.action).where(AuditEntryRow.id > before)).all()
    assert AuditAction.PII_ACCESS.value not in actions


def test_nodes_answers_each_id_in_order_with_its_own_error(
    vault: Vault, gateway: Gateway, world: World
) -> None:
    """nodes(ids:) returns one item per id, in the order given, of any Node type; an id
    that cannot be fetched is null with its own error at nodes.N (garbled: BAD_USER_INPUT;
    another customer's for a data subject: FORBIDDEN) while the others are answered; more
    than 100 ids are BAD_USER_INPUT."""
    ids = [
        global_id(vault, "Customer", world.person.id),
        "garbled",
        global_id(vault, "DsrRequest", world.request),
        global_id(vault, "Customer", world.other.id),
        global_id(vault, "Interaction", world.interaction(vault, world.person)),
    ]
    query = (
        "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id "
        "... on Customer { firstName } ... on DsrRequest { type } "
        "... on Interaction { kind: type } } }"
    )
    body = gateway.post(
        query, {"ids": ids}, role=Role.DATA_SUBJECT, purpose="self", customer_id=world.person.id
    ).json()
    assert body["data"] == {
        "nodes": [
            {"__typename": "Customer", "id": ids[0], "firstName": "زهرا"},
            None,
            {"__typename": "DsrRequest", "id": ids[2], "type": "ACCESS"},
            None,
            {"__typename": "Interaction", "id": ids[4], "kind": "CHAT_MESSAGE"},
        ]
    }
    assert [(e["extensions"]["code"], e["message"], e["path"]) for e in body["errors"]] == [
        ("BAD_USER_INPUT", "ids[1]: is not an id this API returned", ["nodes", 1]),
        ("FORBIDDEN", "access denied", ["nodes", 3]),
    ]
    many = gateway.post(
        query, {"ids": [ids[0]] * 101}, role=Role.SUPPORT_AGENT, purpose="support"
    ).json()
    assert (many["data"], [e["message"] for e in many["errors"]]) == (
        None,
        ["ids: at most 100 per call"],
    )


def test_no_pii_reaches_a_log_line_through_node(
    vault: Vault, gateway: Gateway, world: World
) -> None:
    """Fetching customers and interactions through node and nodes, refused ones and
    forged ids included, writes no PII value (clear or masked) to any log line."""
    person = global_id(vault, "Customer", world.person.id)
    other = global_id(vault, "Customer", world.other.id)
    interaction = global_id(vault, "Interaction", world.interaction(vault, world.person))
    with capture_logs() as logs:
        for role, purpose in ((Role.SUPPORT_AGENT, "support"), (Role.MARKETING, "marketing_sms")):
            gateway.post(
                "query($ids: [ID!]!) { nodes(ids: $ids) { id ... on Customer { "
                f"{CUSTOMER} }} ... on Interaction {{ {INTERACTION} }} }} }}",
                {"ids": [person, other, interaction, "forged"]}, role=role, purpose=purpose,
            )  # fmt: skip
    shown = json.dumps(logs, ensure_ascii=False, default=str)
    assert [v for v in world.person.pii_values() if v in shown] == []
