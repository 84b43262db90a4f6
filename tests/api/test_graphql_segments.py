"""Segments over GraphQL: a marketing tool with a marketing_email token defines "purchased
at least twice in 90 days, no visit in the last 30 days, consented to e-mail" as a rule
input, previews it, refreshes it and reads exactly the right members, each under its own
policy; metrics, memberships and channel analytics come back without PII."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from consent import Privacy
from policies import Role
from tests.api.test_graphql_policy import Gateway, gateway
from tests.conftest import CTX, FrozenClock
from tests.vault.test_webhooks import Receiver, receiver
from vault.crypto.webhooks import SignatureError, verify_signature
from vault.customers import CustomerInput
from vault.interactions import InteractionInput
from vault.runtime import Vault
from vault.storage.models import AuditEntryRow, SegmentOutboxRow

__all__ = ["gateway", "receiver"]  # fixtures shared with the policy matrix and webhooks

RULE = {
    "all": [
        {"behaviour": {"aggregate": "COUNT", "types": ["PURCHASE"], "op": "GTE", "value": 2,
                       "window": {"withinDays": 90}}},
        {"not": {"behaviour": {"aggregate": "COUNT", "types": ["PAGE_VIEW"], "op": "GTE",
                               "value": 1, "window": {"withinDays": 30}}}},
        {"consent": {"purpose": "marketing_email"}},
    ]
}  # fmt: skip
CREATE = """
mutation($input: SegmentInput!) {
  createSegment(input: $input) { id segmentId name version definition }
}
"""
REFRESH = "mutation($id: ID) { refreshSegments(id: $id) { segmentId members entered left } }"
MEMBERS = """
query($id: ID!) { segment(id: $id) { size members(first: 10) {
  edges { node { customerId email firstName lastName segments { name } } } } } }
"""


def _marketing(gw: Gateway, query: str, **variables: Any) -> dict[str, Any]:
    body: dict[str, Any] = gw.post(
        query, variables, role=Role.MARKETING, purpose="marketing_email"
    ).json()
    return body


def _people(vault: Vault, clock: FrozenClock) -> dict[str, uuid.UUID]:
    """win: 2 purchases in 90 days, no visit in 30, e-mail consent (the only match);
    visited: the same plus a visit 10 days ago; once: one purchase; silent: matches the
    behaviour but never consented."""
    now = clock.now
    people: dict[str, uuid.UUID] = {}
    with vault.unit(CTX) as s:
        for name in ("win", "visited", "once", "silent"):
            people[name] = vault.customers.create(
                s, CustomerInput(first_name=name.title(), last_name="Lastname",
                                 email=f"{name}@example.com"),
            ).id  # fmt: skip
        items = []
        for name, purchases in (("win", 2), ("visited", 3), ("once", 1), ("silent", 2)):
            items += [
                InteractionInput(
                    customer_id=people[name], channel="web", type="purchase",
                    occurred_at=now - timedelta(days=20 + 10 * k), amount=Decimal("30.00"),
                    currency="EUR",
                )
                for k in range(purchases)
            ]  # fmt: skip
        items.append(
            InteractionInput(
                customer_id=people["visited"], channel="web", type="page_view",
                occurred_at=now - timedelta(days=10),
            )
        )  # fmt: skip
        vault.interactions.record_many(s, items)
    ledger = Privacy.of(vault).ledger
    with vault.unit(CTX) as s:
        for name in ("win", "visited", "once"):
            ledger.grant(s, people[name], "marketing_email")
    return people


def test_the_marketing_audience_of_the_issue(
    vault: Vault, gateway: Gateway, clock: FrozenClock
) -> None:
    """Exactly the consenting customer who bought twice and did not visit is a member; the
    caller sees its e-mail and first name in clear and its last name hidden (redacted)."""
    people = _people(vault, clock)
    preview = _marketing(
        gateway, "query($r: SegmentRuleInput!) { previewSegment(rule: $r) }", r=RULE
    )
    assert preview["data"] == {"previewSegment": 1}
    made = _marketing(gateway, CREATE, input={"name": "Win back", "rule": RULE})
    segment = made["data"]["createSegment"]
    assert segment["definition"]["all"][2] == {"consent": {"purpose": "marketing_email"}}
    refreshed = _marketing(gateway, REFRESH, id=segment["id"])
    assert refreshed["data"]["refreshSegments"] == [
        {"segmentId": segment["segmentId"], "members": 1, "entered": 1, "left": 0}
    ]
    body = _marketing(gateway, MEMBERS, id=segment["id"])
    assert body["data"]["segment"]["size"] == 1
    nodes = [e["node"] for e in body["data"]["segment"]["members"]["edges"]]
    assert nodes == [
        {"customerId": str(people["win"]), "email": "win@example.com", "firstName": "Win",
         "lastName": None, "segments": [{"name": "Win back"}]}
    ]  # fmt: skip
    assert "segment.members.edges.0.node.lastName" in body["extensions"]["redacted"]


def test_a_withdrawn_consent_hides_the_member_at_once_and_leaves_at_refresh(
    vault: Vault, gateway: Gateway, clock: FrozenClock
) -> None:
    """After a withdrawal the member is no longer shown to marketing_email; the next
    refresh records that it left."""
    people = _people(vault, clock)
    segment = _marketing(gateway, CREATE, input={"name": "W", "rule": RULE})["data"][
        "createSegment"
    ]
    _marketing(gateway, REFRESH, id=segment["id"])
    with vault.unit(CTX) as s:
        Privacy.of(vault).ledger.withdraw(s, people["win"], "marketing_email")
    shown = _marketing(gateway, MEMBERS, id=segment["id"])["data"]["segment"]
    assert (shown["size"], shown["members"]["edges"]) == (0, [])
    again = _marketing(gateway, REFRESH, id=segment["id"])["data"]["refreshSegments"]
    assert again == [{"segmentId": segment["segmentId"], "members": 0, "entered": 0, "left": 1}]


def test_a_bad_rule_names_the_path_and_two_fields_in_one_node_are_refused(
    gateway: Gateway,
) -> None:
    """A zero-day window is refused naming its path as the schema spells it (withinDays);
    a node with two fields breaks @oneOf."""
    bad = {"behaviour": {"aggregate": "COUNT", "op": "GTE", "value": 1,
                         "window": {"withinDays": 0}}}  # fmt: skip
    body = _marketing(gateway, "query($r: SegmentRuleInput!) { previewSegment(rule: $r) }", r=bad)
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    assert body["errors"][0]["message"].startswith("rule.behaviour.window.withinDays:")
    two = {"consent": {"purpose": "marketing_email"}, "not": {"consent": {"purpose": "x"}}}
    body = _marketing(gateway, "query($r: SegmentRuleInput!) { previewSegment(rule: $r) }", r=two)
    assert body.get("data") is None
    assert body["errors"]


@pytest.mark.parametrize(
    "rule",
    [
        "{}",
        "{metric: null}",
        '{consent: {purpose: "marketing_email"}, not: {consent: {purpose: "x"}}}',
        "{all: [{}]}",
    ],
    ids=["no member", "a null member", "two members", "an empty nested node"],
)
@pytest.mark.parametrize("field", ["createSegment", "previewSegment", "updateSegment"])
def test_a_malformed_inline_one_of_rule_is_bad_user_input(
    gateway: Gateway, rule: str, field: str
) -> None:
    """A one-of rule written inline that sets no member, a null member or two members is
    refused when the document is validated, as any literal that does not fit its type is
    (GRAPHQL_VALIDATION_FAILED, naming the one-of rule); never INTERNAL."""
    query = {
        "createSegment": f'mutation {{ createSegment(input: {{name: "s", rule: {rule}}}) '
        "{ id } }",
        "previewSegment": f"query {{ previewSegment(rule: {rule}) }}",
        "updateSegment": f'mutation {{ updateSegment(id: "1", input: {{rule: {rule}}}) {{ id }} }}',
    }[field]
    body = _marketing(gateway, query)
    message = body["errors"][0]["message"]
    assert [e["extensions"]["code"] for e in body["errors"]] == ["GRAPHQL_VALIDATION_FAILED"]
    assert ("exactly one key" in message or "must be non-null" in message) is True


def test_a_role_that_may_not_write_segments_is_forbidden(gateway: Gateway) -> None:
    """A compliance officer reads segments but may not create one: FORBIDDEN, for an
    inline rule and for a variable."""
    inline = gateway.post(
        'mutation { createSegment(input: {name: "s", rule: {consent: {purpose: "analytics"}}}) '
        "{ id } }",
        role=Role.COMPLIANCE_OFFICER,
        purpose="compliance",
    ).json()
    variable = gateway.post(
        CREATE,
        {"input": {"name": "s", "rule": RULE}},
        role=Role.COMPLIANCE_OFFICER,
        purpose="compliance",
    ).json()
    assert [e["extensions"]["code"] for e in inline["errors"]] == ["FORBIDDEN"]
    assert [e["extensions"]["code"] for e in variable["errors"]] == ["FORBIDDEN"]


def test_metrics_and_channel_analytics(vault: Vault, gateway: Gateway, clock: FrozenClock) -> None:
    """After a refresh a consenting customer has metrics; channel analytics reports the
    web channel's purchases and revenue over the customers the purpose may process."""
    people = _people(vault, clock)
    segment = _marketing(gateway, CREATE, input={"name": "M", "rule": RULE})["data"][
        "createSegment"
    ]
    _marketing(gateway, "mutation { refreshSegments(metrics: true) { members } }")
    del segment
    body = _marketing(
        gateway,
        "query($id: ID!) { customer(id: $id) { metrics { purchaseCount monetary currency } } }",
        id=str(people["win"]),
    )
    assert body["data"]["customer"]["metrics"] == {
        "purchaseCount": 2, "monetary": "60.00", "currency": "EUR",
    }  # fmt: skip
    since = (clock.now - timedelta(days=365)).isoformat()
    until = (clock.now + timedelta(days=1)).isoformat()
    vault.segments.analytics.min_group = 1  # a handful of customers: k=1 hides nothing
    stats = _marketing(
        gateway,
        "query($s: DateTime!, $u: DateTime!) { channelAnalytics(since: $s, until: $u) {"
        " channel interactions conversions revenue { currency amount } } }",
        s=since,
        u=until,
    )["data"]["channelAnalytics"]
    web = next(row for row in stats if row["channel"] == "WEB")
    assert web["conversions"] == 2 + 3 + 1  # the three consenting customers' purchases
    assert web["revenue"] == [{"currency": "EUR", "amount": "180.00"}]


def test_the_marketing_tools_webhook_hears_who_enters_and_leaves(
    vault: Vault, gateway: Gateway, clock: FrozenClock, receiver: Receiver
) -> None:
    """A webhook registered over GraphQL for the segment receives a signed 'entered' event
    for the one consenting match, and a 'left' event once the customer stops matching."""
    people = _people(vault, clock)
    segment = _marketing(gateway, CREATE, input={"name": "Hook", "rule": RULE})["data"][
        "createSegment"
    ]
    made = _marketing(
        gateway,
        "mutation($u: String!, $s: [ID!]!) { createWebhook(url: $u, segmentIds: $s,"
        ' purpose: "marketing_email") { secret webhook { id purpose segmentIds } } }',
        u=receiver.url("/hook"),
        s=[segment["id"]],
    )["data"]["createWebhook"]
    assert made["webhook"]["segmentIds"] == [segment["segmentId"]]
    receiver.secrets["/hook"] = made["secret"]
    _marketing(gateway, REFRESH, id=segment["id"])
    dispatcher = vault.dispatcher
    dispatcher.run_once(vault.db)
    with vault.unit(CTX) as s:  # a visit: no longer "no visit in the last 30 days"
        vault.interactions.record_many(
            s,
            [InteractionInput(customer_id=people["win"], channel="web", type="page_view",
                              occurred_at=clock.now - timedelta(days=1))],
        )  # fmt: skip
    _marketing(gateway, REFRESH, id=segment["id"])
    dispatcher.run_once(vault.db)
    got = [(r.message["type"], r.message["customer_id"], r.verified) for r in receiver.at("/hook")]
    assert got == [
        ("segment.entered", str(people["win"]), True),
        ("segment.left", str(people["win"]), True),
    ]
    listed = _marketing(gateway, "{ webhooks { id url } }")["data"]["webhooks"]
    assert [w["id"] for w in listed] == [made["webhook"]["id"]]


def test_a_rotated_webhook_secret_signs_what_is_sent_next(
    vault: Vault, gateway: Gateway, clock: FrozenClock, receiver: Receiver
) -> None:
    """rotateWebhookSecret answers a new secret, once: the next delivery verifies with it and
    not with the old one; the rotation is audited with the webhook's id and version only."""
    people = _people(vault, clock)
    segment = _marketing(gateway, CREATE, input={"name": "Rotated", "rule": RULE})["data"][
        "createSegment"
    ]
    made = _marketing(
        gateway,
        "mutation($u: String!, $s: [ID!]!) { createWebhook(url: $u, segmentIds: $s,"
        ' purpose: "marketing_email") { secret webhook { id } } }',
        u=receiver.url("/rotated"),
        s=[segment["id"]],
    )["data"]["createWebhook"]
    rotated = _marketing(
        gateway,
        "mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret webhook { id } } }",
        id=made["webhook"]["id"],
    )["data"]["rotateWebhookSecret"]
    assert (rotated["webhook"]["id"], rotated["secret"] != made["secret"]) == (
        made["webhook"]["id"],
        True,
    )
    receiver.secrets["/rotated"] = rotated["secret"]
    _marketing(gateway, REFRESH, id=segment["id"])
    vault.dispatcher.run_once(vault.db)
    got = receiver.at("/rotated")
    assert [(r.message["customer_id"], r.verified) for r in got] == [(str(people["win"]), True)]
    with pytest.raises(SignatureError):  # the old secret signs nothing more
        verify_signature(made["secret"], got[0].body, got[0].headers, now=clock.now.timestamp())
    with vault.db.transaction() as s:
        details = [
            json.loads(raw)["detail"]
            for raw in s.scalars(select(AuditEntryRow.canonical).order_by(AuditEntryRow.id))
            if json.loads(raw)["action"] == "webhook.change"
        ]
    assert [d.get("op") for d in details][-1:] == ["rotate_secret"]
    assert rotated["secret"] not in json.dumps(details)


def test_membership_follows_ingest_without_a_refresh(
    vault: Vault, gateway: Gateway, clock: FrozenClock
) -> None:
    """Interactions recorded through the gateway update the memberships of their customers
    in the same unit of work: the buyer enters at once, with its outbox event."""
    people = _people(vault, clock)
    rule = {"behaviour": {"aggregate": "COUNT", "types": ["STORE_VISIT"], "op": "GTE",
                          "value": 1, "window": {"withinDays": 7}}}  # fmt: skip
    segment = _marketing(gateway, CREATE, input={"name": "Visitors", "rule": rule})["data"][
        "createSegment"
    ]
    _marketing(gateway, REFRESH, id=segment["id"])
    assert _marketing(gateway, MEMBERS, id=segment["id"])["data"]["segment"]["size"] == 0
    recorded = gateway.post(
        "mutation($i: [InteractionInput!]!) { recordInteractions(interactions: $i) { inserted } }",
        {"i": [{"customerId": str(people["win"]), "channel": "STORE", "type": "STORE_VISIT",
                "occurredAt": clock.now.isoformat()}]},
        role=Role.INGEST_SERVICE, purpose="service_delivery",
    ).json()  # fmt: skip
    assert recorded["data"] == {"recordInteractions": {"inserted": 1}}
    shown = _marketing(gateway, MEMBERS, id=segment["id"])["data"]["segment"]
    assert [e["node"]["customerId"] for e in shown["members"]["edges"]] == [str(people["win"])]
    with vault.db.transaction() as s:
        events = s.execute(
            select(SegmentOutboxRow.customer_id, SegmentOutboxRow.event).where(
                SegmentOutboxRow.segment_id == uuid.UUID(segment["segmentId"])
            )
        ).all()
    assert [(cid, event) for cid, event in events] == [(people["win"], "entered")]


ABANDONED = {
    "sequence": {
        "steps": [{"types": ["CART_ABANDON"], "channels": ["WEB"]},
                  {"types": ["PURCHASE"], "absent": True}],
        "within": {"days": 2},
        "window": {"withinDays": 30},
    }
}  # fmt: skip
PREVIEW = "query($r: SegmentRuleInput!) { previewSegment(rule: $r) }"


def test_a_sequence_rule_selects_the_abandoned_carts_without_a_purchase(
    vault: Vault, gateway: Gateway, clock: FrozenClock
) -> None:
    """ "Abandoned a cart on the web, no purchase within 2 days after it" as a rule input:
    the definition is stored as the JSON rule; of two consenting customers who abandoned a
    cart 3 days ago, the one who bought a day later is not a member; a since window
    selects the same."""
    people = _people(vault, clock)
    with vault.unit(CTX) as s:
        vault.interactions.record_many(s, [
            InteractionInput(customer_id=people[name], channel="web", type="cart_abandon",
                             occurred_at=clock.now - timedelta(days=3))
            for name in ("win", "visited")
        ] + [InteractionInput(customer_id=people["visited"], channel="web", type="purchase",
                              occurred_at=clock.now - timedelta(days=2), amount=Decimal(5),
                              currency="EUR")])  # fmt: skip
    made = _marketing(gateway, CREATE, input={"name": "Abandoned", "rule": ABANDONED})
    segment = made["data"]["createSegment"]
    assert segment["definition"] == {
        "sequence": {
            "steps": [{"types": ["cart_abandon"], "channels": ["web"]},
                      {"types": ["purchase"], "absent": True}],
            "within": {"days": 2},
            "window": {"within_days": 30},
        }
    }  # fmt: skip
    _marketing(gateway, REFRESH, id=segment["id"])
    members = _marketing(gateway, MEMBERS, id=segment["id"])["data"]["segment"]["members"]
    assert [e["node"]["customerId"] for e in members["edges"]] == [str(people["win"])]
    since = {
        "sequence": {
            **ABANDONED["sequence"],
            "window": {"since": (clock.now - timedelta(days=4)).isoformat()},
        }
    }
    assert _marketing(gateway, PREVIEW, r=since)["data"] == {"previewSegment": 1}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"within": {"days": -2}}, "rule.sequence.within.days: must be a positive integer"),
        ({"within": {"minutes": 0}}, "rule.sequence.within.minutes: must be a positive integer"),
        ({"steps": []}, "rule.sequence.steps: must be a list of 2-8 steps"),
        ({"steps": [{"types": ["PURCHASE"], "absent": True}, {}]},
         "rule.sequence.steps[0].absent: only the last step may be absent"),
        (
            {"window": {"since": "2026-11-01T00:00:00"}},
            "rule.sequence.window.since: must be an ISO 8601 time with a UTC offset",
        ),
    ],
    ids=["negative gap", "zero gap", "empty chain", "absent first", "since without offset"],
)  # fmt: skip
def test_a_bad_sequence_is_refused_naming_its_path(
    gateway: Gateway, change: dict[str, Any], message: str
) -> None:
    """A negative or zero gap, an empty chain, an absent step before the last or a since
    time without its UTC offset: one BAD_USER_INPUT error that names the path and the
    rule."""
    rule = {"sequence": {**ABANDONED["sequence"], **change}}
    body = _marketing(gateway, PREVIEW, r=rule)
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    assert body["errors"][0]["message"].startswith(message)


def test_an_unknown_channel_in_a_sequence_is_refused(gateway: Gateway) -> None:
    """A channel the Channel enum does not know is refused before any resolver runs:
    written inline, the error names the enum; sent in a variable, BAD_USER_INPUT (the
    endpoint never echoes a variable's value)."""
    steps = [{"types": ["CART_ABANDON"], "channels": ["FAX"]}, {"types": ["PURCHASE"]}]
    rule = {"sequence": {**ABANDONED["sequence"], "steps": steps}}
    variable = _marketing(gateway, PREVIEW, r=rule)
    inline = _marketing(
        gateway,
        "{ previewSegment(rule: {sequence: {steps: [{channels: [FAX]}, {}], "
        "within: {days: 2}, window: {ever: true}}}) }",
    )
    assert variable.get("data") is None
    assert [e["extensions"]["code"] for e in variable["errors"]] == ["BAD_USER_INPUT"]
    assert [e["extensions"]["code"] for e in inline["errors"]] == ["GRAPHQL_VALIDATION_FAILED"]
    assert "'Channel' enum" in inline["errors"][0]["message"]
