"""SegmentService on SQLite and PostgreSQL: exact window edges, materialised membership
with history and an outbox, consent-aware members, incremental refresh, policy and audit."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from audit.entries import AuditAction
from consent import Privacy
from policies import AccessDenied
from tests.conftest import CTX, FrozenClock
from vault.authorization.context import AccessContext, Actor
from vault.customers import CustomerInput
from vault.errors import InvalidInput
from vault.interactions import InteractionInput
from vault.runtime import Vault
from vault.segments.parse import parse_rule
from vault.segments.rules import RuleError, SegmentCycle
from vault.segments.service import SegmentNotFound
from vault.storage.models import (
    AuditEntryRow,
    CustomerRow,
    SegmentMembershipRow,
    SegmentOutboxRow,
)

DAY = timedelta(days=1)
EMAIL = AccessContext(Actor("marketing-1", "marketing"), "marketing_email")
ANALYST = AccessContext(Actor("analyst-1", "analyst"), "analytics")
SUPPORT = AccessContext(Actor("agent-1", "support_agent"), "support")


def _customers(vault: Vault, n: int, **kwargs: Any) -> list[uuid.UUID]:
    with vault.unit(CTX) as s:
        return [vault.customers.create(s, CustomerInput(**kwargs)).id for _ in range(n)]


def _touch(vault: Vault, cid: uuid.UUID, kind: str, days_ago: float, **more: Any) -> None:
    with vault.unit(CTX) as s:
        vault.interactions.record_many(
            s,
            [InteractionInput(customer_id=cid, channel="web", type=kind,
                              occurred_at=vault.clock() - days_ago * DAY, **more)],
        )  # fmt: skip


def _count(kind: str, window: Any, op: str = "gte", value: int = 1) -> dict[str, Any]:
    return {"behaviour": {"aggregate": "count", "types": [kind], "window": window, "op": op,
                          "value": value}}  # fmt: skip


def _preview(vault: Vault, rule: dict[str, Any]) -> int:
    with vault.unit(CTX) as s:
        return vault.segments.preview(s, rule)


def test_within_n_days_includes_an_interaction_exactly_n_days_old(
    vault: Vault, clock: FrozenClock
) -> None:
    """within_days 30 = occurred_at >= now - 30 days: exactly 30 x 24 h is in; a
    microsecond later it is out."""
    (cid,) = _customers(vault, 1)
    _touch(vault, cid, "page_view", 30)
    assert _preview(vault, _count("page_view", {"within_days": 30})) == 1
    assert _preview(vault, _count("page_view", {"within_days": 29})) == 0
    clock.advance(microseconds=1)
    assert _preview(vault, _count("page_view", {"within_days": 30})) == 0
    assert _preview(vault, _count("page_view", {"within_days": 30}, "eq", 0)) == 1


def test_between_n_and_m_days_ago_includes_the_far_edge_only(vault: Vault) -> None:
    """between_days [30, 90] = now - 90 days <= occurred_at < now - 30 days."""
    near, far, inside = _customers(vault, 3)
    _touch(vault, near, "purchase", 30, amount=1, currency="EUR")
    _touch(vault, far, "purchase", 90, amount=1, currency="EUR")
    _touch(vault, inside, "purchase", 45, amount=1, currency="EUR")
    rule = _count("purchase", {"between_days": [30, 90]})
    with vault.unit(CTX) as s:
        found = set(s.scalars(vault.segments.statement(s, parse_rule(rule))))
    assert {far, inside} == found


def test_last_more_than_n_days_ago_compares_exact_elapsed_time(
    vault: Vault, clock: FrozenClock
) -> None:
    """last gt 60 = the latest matching interaction is older than now - 60 days."""
    (cid,) = _customers(vault, 1)
    _touch(vault, cid, "purchase", 60, amount=5, currency="EUR")
    rule = {"behaviour": {"aggregate": "last", "types": ["purchase"], "window": "ever",
                          "op": "gt", "value": 60}}  # fmt: skip
    assert _preview(vault, rule) == 0
    clock.advance(microseconds=1)
    assert _preview(vault, rule) == 1


def test_future_interactions_never_count(vault: Vault) -> None:
    """An interaction stamped after now is outside every window, 'ever' included."""
    (cid,) = _customers(vault, 1)
    _touch(vault, cid, "purchase", -1, amount=5, currency="EUR")
    assert _preview(vault, _count("purchase", "ever")) == 0


def _outbox(vault: Vault, segment_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
    with vault.unit(CTX) as s:
        rows = s.execute(
            select(SegmentOutboxRow.customer_id, SegmentOutboxRow.event)
            .where(SegmentOutboxRow.segment_id == segment_id)
            .order_by(SegmentOutboxRow.id)
        ).all()
    return [(r.customer_id, r.event) for r in rows]


def test_refresh_materialises_membership_with_history_and_outbox_events(
    vault: Vault, clock: FrozenClock
) -> None:
    """Entering writes a membership row and an 'entered' event; leaving sets left_at and
    writes 'left'; entering again opens a new row (history kept)."""
    a, b = _customers(vault, 2, tier="gold")
    with vault.unit(CTX) as s:
        seg = vault.segments.create(
            s, name="gold", definition={"attribute": {"field": "tier", "op": "eq", "value": "gold"}}
        )
        (first,) = vault.segments.refresh(s, seg.id)
    assert (first.members, first.entered, first.left) == (2, 2, 0)
    assert sorted([(a, "entered"), (b, "entered")]) == sorted(_outbox(vault, seg.id))
    clock.advance(hours=1)
    with vault.unit(CTX) as s:
        s.execute(update(CustomerRow).where(CustomerRow.id == a).values(tier="silver"))
        (result,) = vault.segments.refresh(s, seg.id)
    assert (result.members, result.entered, result.left) == (1, 0, 1)
    clock.advance(hours=1)
    with vault.unit(CTX) as s:
        s.execute(update(CustomerRow).where(CustomerRow.id == a).values(tier="gold"))
        vault.segments.refresh(s, seg.id)
        (again,) = vault.segments.refresh(s, seg.id)  # nothing changed: nothing written
    assert (again.members, again.entered, again.left) == (2, 0, 0)
    assert [(a, "left"), (a, "entered")] == [e for e in _outbox(vault, seg.id) if e[0] == a][1:]
    with vault.unit(CTX) as s:
        stays = s.execute(
            select(SegmentMembershipRow.entered_at, SegmentMembershipRow.left_at)
            .where(SegmentMembershipRow.customer_id == a)
            .order_by(SegmentMembershipRow.id)
        ).all()
    start = clock() - 2 * timedelta(hours=1)
    expected = [
        (start, start + timedelta(hours=1)),
        (start + 2 * timedelta(hours=1), None),
    ]
    assert expected == [tuple(r) for r in stays]


def test_a_withdrawn_consent_removes_the_member_at_the_next_refresh(vault: Vault) -> None:
    """A consent rule: withdraw, refresh, and the customer has left (with an event)."""
    a, b = _customers(vault, 2)
    ledger = Privacy.of(vault).ledger
    with vault.unit(CTX) as s:
        for cid in (a, b):
            ledger.grant(s, cid, "marketing_email")
        seg = vault.segments.create(
            s, name="email ok", definition={"consent": {"purpose": "marketing_email"}}
        )
        vault.segments.refresh(s)
    with vault.unit(CTX) as s:
        ledger.withdraw(s, a, "marketing_email")
    with vault.unit(EMAIL) as s:  # members read through the gate: already gone
        assert [b] == vault.segments.members(s, seg.id).items
    with vault.unit(CTX) as s:
        (result,) = vault.segments.refresh(s, seg.id)
        assert [b] == vault.segments.members(s, seg.id).items
    assert (result.members, result.entered, result.left) == (1, 0, 1)
    assert (a, "left") == _outbox(vault, seg.id)[-1]


def test_members_for_a_consent_purpose_are_only_consenting_customers(vault: Vault) -> None:
    """The segment holds everyone; a marketing_email caller pages through those who
    consented to it, an analyst through everyone (analytics needs no consent)."""
    ids = _customers(vault, 5, tier="gold")
    ledger = Privacy.of(vault).ledger
    with vault.unit(CTX) as s:
        for cid in ids[:3]:
            ledger.grant(s, cid, "marketing_email")
    with vault.unit(EMAIL) as s:
        seg = vault.segments.create(
            s, name="gold", definition={"attribute": {"field": "tier", "op": "eq", "value": "gold"}}
        )
    with vault.unit(CTX) as s:
        vault.segments.refresh(s)
    with vault.unit(EMAIL) as s:
        first = vault.segments.members(s, seg.id, first=2)
        assert first.has_next_page
        rest = vault.segments.members(s, seg.id, first=2, after=first.end_cursor)
        assert vault.segments.size(s, seg.id) == 3
        assert vault.segments.preview(s, seg.definition) == 3
    assert sorted(ids[:3]) == first.items + rest.items
    assert not rest.has_next_page
    with vault.unit(ANALYST) as s:
        assert sorted(ids) == vault.segments.members(s, seg.id, first=10).items


def test_restricted_and_erased_customers_are_never_members(vault: Vault) -> None:
    """Only active customers match; a restricted one leaves at the next refresh."""
    a, b, c = _customers(vault, 3, tier="gold")
    rule = {"attribute": {"field": "tier", "op": "exists"}}
    with vault.unit(CTX) as s:
        seg = vault.segments.create(s, name="tiered", definition=rule)
        vault.segments.refresh(s)
        s.execute(update(CustomerRow).where(CustomerRow.id == b).values(status="restricted"))
        s.execute(update(CustomerRow).where(CustomerRow.id == c).values(status="erased"))
        (result,) = vault.segments.refresh(s, seg.id)
        assert [a] == vault.segments.members(s, seg.id).items
    assert (result.members, result.left) == (1, 2)


def test_refresh_customers_updates_only_their_memberships(vault: Vault) -> None:
    """When a customer's interactions land, ingest itself moves that customer in or out of
    every segment (metrics included) without touching anyone else; refresh_customers
    afterwards finds nothing left to change."""
    a, b = _customers(vault, 2)
    buyers = {"metric": {"name": "purchase_count", "op": "gte", "value": 1}}
    with vault.unit(CTX) as s:
        seg = vault.segments.create(s, name="buyers", definition=buyers)
        vault.segments.refresh(s)
    _touch(vault, a, "purchase", 0.5, amount=10, currency="EUR")
    with vault.unit(CTX) as s:
        assert [a] == vault.segments.members(s, seg.id).items
        assert vault.segments.refresh_customers(s, [a, b]) == []
    assert [(a, "entered")] == _outbox(vault, seg.id)


def test_segment_references_nest_and_cycles_are_refused(vault: Vault) -> None:
    """A segment may refer to another; an update closing a loop raises SegmentCycle
    naming the path; deleting a referenced segment is refused."""
    gold = {"attribute": {"field": "tier", "op": "eq", "value": "gold"}}
    (a,) = _customers(vault, 1, tier="gold")
    with vault.unit(CTX) as s:
        base = vault.segments.create(s, name="gold", definition=gold)
        top = vault.segments.create(s, name="top", definition={"segment": {"id": str(base.id)}})
        vault.segments.refresh(s)
        assert [a] == vault.segments.members(s, top.id).items
    with pytest.raises(SegmentCycle) as caught, vault.unit(CTX) as s:
        vault.segments.update(s, base.id, definition={"not": {"segment": {"id": str(top.id)}}})
    assert caught.value.field == f"rule.not.segment.id({top.id}).segment.id"
    with pytest.raises(InvalidInput, match="refers to this segment"), vault.unit(CTX) as s:
        vault.segments.delete(s, base.id)
    with vault.unit(CTX) as s:
        assert vault.segments.delete(s, top.id) == 1
        with pytest.raises(SegmentNotFound):
            vault.segments.get(s, top.id)
        assert vault.segments.delete(s, base.id) == 1  # its one member left with it
    assert (a, "left") == _outbox(vault, top.id)[-1]


def test_a_bad_definition_is_refused_with_its_path(vault: Vault) -> None:
    """create validates the rule; nothing is saved."""
    bad = {"all": [{"consent": {"purpose": "marketing_email"}}, {"metric": {"name": "x"}}]}
    with pytest.raises(RuleError) as caught, vault.unit(CTX) as s:
        vault.segments.create(s, name="bad", definition=bad)
    assert caught.value.field == "rule.all[1].metric.op"
    with vault.unit(CTX) as s:
        assert vault.segments.list_segments(s) == []


def test_segments_are_refused_to_roles_without_the_grant_and_audited(vault: Vault) -> None:
    """A support agent may not read or define segments; the refusal is audited. Reads
    and changes write segment.* entries with ids and counts only."""
    with pytest.raises(AccessDenied), vault.unit(SUPPORT) as s:
        vault.segments.list_segments(s)
    compliance = AccessContext(Actor("officer-1", "compliance_officer"), "compliance")
    with pytest.raises(AccessDenied), vault.unit(compliance) as s:  # reads, never defines
        vault.segments.create(s, name="x", definition={"consent": {"purpose": "x"}})
    with vault.unit(EMAIL) as s:
        seg = vault.segments.create(
            s, name="gold", definition={"attribute": {"field": "tier", "op": "exists"}}
        )
        vault.segments.members(s, seg.id)
    with vault.unit(CTX) as s:
        actions = list(s.scalars(select(AuditEntryRow.action).order_by(AuditEntryRow.id)))
    assert "access.denied" in actions
    assert AuditAction.SEGMENT_CHANGE.value in actions
    assert AuditAction.SEGMENT_READ.value in actions


def test_channel_analytics_counts_conversions_and_revenue(vault: Vault) -> None:
    """Per channel: interactions, customers, purchases, converting customers, their rate,
    and purchases minus refunds per currency; for customers the purpose may process."""
    a, b = _customers(vault, 2)
    _touch(vault, a, "page_view", 1)
    _touch(vault, b, "page_view", 1)
    _touch(vault, a, "purchase", 1, amount=20, currency="EUR")
    _touch(vault, a, "refund", 1, amount=5, currency="EUR")
    _touch(vault, a, "purchase", 40, amount=99, currency="EUR")  # outside the range
    now = vault.clock()
    vault.segments.analytics.min_group = 1  # two customers: nothing to suppress at k=1
    with vault.unit(ANALYST) as s:
        (web,) = vault.segments.channel_analytics(s, now - 7 * DAY, now)
    assert (
        web.interactions, web.customers, web.conversions, web.converting_customers,
        web.conversion_rate,
    ) == (4, 2, 1, 1, 0.5)  # fmt: skip
    assert web.revenue_minor == {"EUR": 1500}


def test_the_ingest_hook_needs_no_segments_grant_and_is_audited(vault: Vault) -> None:
    """An ingest service (no grant on segments) records a purchase: ingest's hook moves
    the customer in within the same unit and writes a segment.refresh entry; calling
    refresh_customers itself is refused to that caller."""
    ingest = AccessContext(Actor("shop-1", "ingest_service"), "service_delivery")
    (cid,) = _customers(vault, 1)
    buyers = {"metric": {"name": "purchase_count", "op": "gte", "value": 1}}
    with vault.unit(CTX) as s:
        seg = vault.segments.create(s, name="buyers", definition=buyers)
    with vault.unit(ingest) as s:
        vault.interactions.record_many(
            s,
            [InteractionInput(customer_id=cid, channel="web", type="purchase",
                              occurred_at=vault.clock() - DAY, amount=5, currency="EUR")],  # type: ignore[arg-type]
        )  # fmt: skip
        assert vault.segments.on_customers_changed(s, [cid]) == []  # already done
    assert _outbox(vault, seg.id) == [(cid, "entered")]
    with pytest.raises(AccessDenied), vault.unit(ingest) as s:
        vault.segments.refresh_customers(s, [cid])
    with vault.unit(CTX) as s:
        actions = list(s.scalars(select(AuditEntryRow.action)))
    assert AuditAction.SEGMENT_REFRESH.value in actions


def test_a_data_subject_cannot_list_segment_members(vault: Vault) -> None:
    """Listing segment members is not for a data subject, even with a token for self."""
    (cid,) = _customers(vault, 1)
    with vault.unit(CTX) as s:
        seg = vault.segments.create(
            s, name="all", definition={"attribute": {"field": "tier", "op": "ne", "value": "x"}}
        )
    subject = AccessContext(Actor("me", "data_subject", cid), "self")
    with pytest.raises(AccessDenied), vault.unit(subject) as s:
        vault.segments.members(s, seg.id)
