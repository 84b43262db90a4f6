"""Filters run before the page is cut (issue 13, item 4), for every paged list field.

``customers(first: 5, filter: {tag: "vip"})`` once answered no edges and
``hasNextPage: true`` while 40 customers carried the tag, and recorded the five
discarded customers as read. For each paged field (customers, Customer.interactions,
Segment.members, Customer.accessHistory, auditLog, dsrRequests) a dataset where the
filter matters (40 matching among 100, interleaved): every page but the last is full,
``hasNextPage``/``endCursor`` lead to the end, the pages' union is the filtered set
without duplicates, and each request audits exactly the records it returned.

Through the real ASGI app, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from api.app import create_app
from api.auth import LocalTokenIssuer
from api.graphql.endpoint import RateLimiter
from audit.entries import AuditAction
from consent import Privacy
from consent.dsr.requests import DsrInput
from policies import Role
from tests.conftest import CTX, FrozenClock
from vault.authorization.context import buffer_of
from vault.customers import CustomerInput
from vault.interactions import InteractionInput
from vault.runtime import Vault
from vault.storage.models import AuditEntryRow

ISSUER: Final = "customer-vault"
SUPPORT: Final = (Role.SUPPORT_AGENT, "support")
MARKETING: Final = (Role.MARKETING, "marketing_email")
COMPLIANCE: Final = (Role.COMPLIANCE_OFFICER, "compliance")
PAGE: Final = 7  # 40 matches: five full pages and one of five
MATCHING: Final = 40


@dataclasses.dataclass
class Gateway:
    client: TestClient
    issuer: LocalTokenIssuer

    def data(self, query: str, variables: dict[str, Any], as_: tuple[Role, str]) -> Any:
        """The data of a request that must succeed without errors."""
        role, purpose = as_
        token = self.issuer.issue(f"{role.value}-1", role)
        response = self.client.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}", "X-Purpose": purpose},
        )
        body = response.json()
        assert (response.status_code, body.get("errors")) == (200, None)
        return body["data"]


@pytest.fixture
def gateway(vault: Vault, tmp_path: Path) -> Gateway:
    issuer = LocalTokenIssuer.load_or_create(tmp_path / "jwt.json", ISSUER, ISSUER)
    app = create_app(
        vault, verifier=issuer.verifier(), local_issuer=issuer, rate_limiter=RateLimiter(10_000)
    )
    return Gateway(TestClient(app), issuer)


@dataclasses.dataclass(frozen=True)
class Page:
    """One request's answer: its edges, page info, and the audit entries it wrote."""

    edges: list[dict[str, Any]]
    has_next_page: bool
    end_cursor: str | None
    audited: list[dict[str, Any]]

    def audited_customers(self, action: AuditAction) -> list[str]:
        return sorted(e["customer"] for e in self.audited if e["action"] == action.value)

    def audited_timelines(self) -> list[str]:
        """The customers whose one pii.access entry of the request names their timeline."""
        return sorted(
            e["customer"]
            for e in self.audited
            if e["action"] == AuditAction.PII_ACCESS.value and "interactions" in e["fields"]
        )


def _last_entry(vault: Vault) -> int:
    with vault.db.transaction() as s:
        return int(s.scalar(select(func.max(AuditEntryRow.id))) or 0)


def _entries_after(vault: Vault, last: int) -> list[dict[str, Any]]:
    with vault.db.transaction() as s:
        rows = s.scalars(
            select(AuditEntryRow.canonical)
            .where(AuditEntryRow.id > last)
            .order_by(AuditEntryRow.id)
        ).all()
    return [json.loads(r) for r in rows]


def _pages(
    vault: Vault,
    gateway: Gateway,
    query: str,
    *,
    path: tuple[str, ...],
    variables: dict[str, Any],
    as_: tuple[Role, str],
) -> list[Page]:
    """Every page of the connection at ``path``, following ``endCursor`` while
    ``hasNextPage``; each with the audit entries its request wrote."""
    pages: list[Page] = []
    after: str | None = None
    for _ in range(50):
        before = _last_entry(vault)
        found = gateway.data(query, {**variables, "after": after}, as_)
        for name in path:
            found = found[name]
        info = found["pageInfo"]
        pages.append(
            Page(
                found["edges"],
                info["hasNextPage"],
                info["endCursor"],
                _entries_after(vault, before),
            )
        )
        if not info["hasNextPage"]:
            return pages
        after = info["endCursor"]
    raise AssertionError("the pages never ended")


def _check_paging(pages: list[Page], expected: set[str], key: str = "customerId") -> None:
    """Full pages up to the last, endCursor the last edge's cursor, and the union of the
    pages exactly the filtered set, each once."""
    sizes = [len(p.edges) for p in pages]
    full, rest = divmod(len(expected), PAGE)
    assert sizes == [PAGE] * full + ([rest] if rest else [])
    assert [p.has_next_page for p in pages] == [True] * (len(pages) - 1) + [False]
    for page in pages:
        if "cursor" in page.edges[-1]:
            assert page.end_cursor == page.edges[-1]["cursor"]
    seen = [e["node"][key] for p in pages for e in p.edges]
    assert len(seen) == len(set(seen))
    assert set(seen) == expected


def _ids(page: Page) -> list[str]:
    return sorted(e["node"]["customerId"] for e in page.edges)


# -- customers --------------------------------------------------------------------------


def _hundred_customers(vault: Vault, clock: FrozenClock) -> dict[str, set[str]]:
    """100 customers created a minute apart; 40 of them (interleaved) match each filter:
    tagged vip (i % 5 in 0, 1), tier gold (1, 2), locale de-DE (2, 3), created after the
    60th. Each has one cart_add and one page view."""
    sets: dict[str, set[str]] = {"tag": set(), "tier": set(), "locale": set(), "created": set()}
    with vault.unit(CTX) as s:
        for i in range(100):
            clock.advance(minutes=1)
            r = i % 5
            made = vault.customers.create(
                s,
                CustomerInput(
                    first_name=f"Customer{i}", email=f"c{i}@example.com",
                    tags=["vip", "newsletter"] if r in (0, 1) else ["newsletter"],
                    tier="gold" if r in (1, 2) else "silver",
                    locale="de-DE" if r in (2, 3) else "fr-FR",
                ),
            )  # fmt: skip
            cid = str(made.id)
            for name, matches in (
                ("tag", r in (0, 1)), ("tier", r in (1, 2)), ("locale", r in (2, 3)),
                ("created", i >= 60),
            ):  # fmt: skip
                if matches:
                    sets[name].add(cid)
            vault.interactions.record_many(
                s,
                [
                    InteractionInput(
                        customer_id=made.id, channel="web", type=kind,
                        occurred_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=i),
                    )
                    for kind in ("cart_add", "page_view")
                ],
            )  # fmt: skip
        sets["created_after"] = {(clock.now - timedelta(minutes=39)).isoformat()}  # the 60th
    return sets


CUSTOMERS = """
query($after: String, $filter: CustomerFilter) {
  customers(first: 7, after: $after, filter: $filter) {
    edges { cursor node { customerId tags interactions(first: 5, type: CART_ADD) {
      edges { node { type } } } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


def test_the_tag_filter_of_the_issue_fills_the_first_page(
    vault: Vault, gateway: Gateway, clock: FrozenClock
) -> None:
    """``customers(first: 5, filter: {tag: "vip"})`` with 40 tagged among 100 returns five
    tagged customers and hasNextPage true, and records exactly those five as read. Then,
    paging 7 at a time under each filter (tag, tier, locale, createdAfter; 40 of 100 match
    each) gives five full pages and one of five whose union is the 40, and each request
    audits one pii.access of exactly the customers it returned, each naming the timeline
    (asked for on the list)."""
    sets = _hundred_customers(vault, clock)
    before = _last_entry(vault)
    found = gateway.data(
        '{ customers(first: 5, filter: {tag: "vip"}) { edges { node { customerId tags } } '
        "pageInfo { hasNextPage } } }",
        {},
        SUPPORT,
    )["customers"]
    ids = [e["node"]["customerId"] for e in found["edges"]]
    read = [e["customer"] for e in _entries_after(vault, before) if e["action"] == "pii.access"]
    assert (len(ids), found["pageInfo"]["hasNextPage"]) == (5, True)
    assert set(ids) <= sets["tag"]
    assert sorted(read) == sorted(ids)

    for name, filter_ in (
        ("tag", {"tag": "vip"}), ("tier", {"tier": "gold"}), ("locale", {"locale": "de-DE"}),
        ("created", {"createdAfter": next(iter(sets["created_after"]))}),
    ):  # fmt: skip
        pages = _pages(
            vault, gateway, CUSTOMERS, path=("customers",), variables={"filter": filter_},
            as_=SUPPORT,
        )  # fmt: skip
        _check_paging(pages, sets[name])
        for page in pages:
            assert page.audited_customers(AuditAction.PII_ACCESS) == _ids(page)
            assert page.audited_timelines() == _ids(page)
            assert all(
                [i["node"]["type"] for i in e["node"]["interactions"]["edges"]] == ["CART_ADD"]
                for e in page.edges
            )


# -- Customer.interactions ----------------------------------------------------------------


def _long_timeline(vault: Vault) -> tuple[uuid.UUID, dict[str, set[str]]]:
    """One customer with 100 interactions an hour apart: 40 cart adds (i % 5 in 0, 1),
    40 in store (1, 2), 40 between hours 30 and 70."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with vault.unit(CTX) as s:
        cid = vault.customers.create(s, CustomerInput(first_name="Timeline")).id
        vault.interactions.record_many(
            s,
            [
                InteractionInput(
                    customer_id=cid, channel="store" if i % 5 in (1, 2) else "web",
                    type="cart_add" if i % 5 in (0, 1) else "page_view",
                    occurred_at=start + timedelta(hours=i), external_id=f"ix-{i}",
                )
                for i in range(100)
            ],
        )  # fmt: skip
    sets: dict[str, set[str]] = {"type": set(), "channel": set(), "window": set()}
    for i in range(100):
        for name, matches in (
            ("type", i % 5 in (0, 1)), ("channel", i % 5 in (1, 2)), ("window", 30 <= i < 70),
        ):  # fmt: skip
            if matches:
                sets[name].add(f"ix-{i}")
    return cid, sets


TIMELINE = """
query($id: ID!, $after: String, $type: InteractionType, $channel: Channel,
      $since: DateTime, $until: DateTime) {
  customer(id: $id) {
    interactions(first: 7, after: $after, type: $type, channel: $channel, since: $since,
                 until: $until) {
      edges { cursor node { externalId } } pageInfo { hasNextPage endCursor }
    }
  }
}
"""


def test_a_timeline_filter_runs_before_the_page_is_cut(vault: Vault, gateway: Gateway) -> None:
    """Paging one customer's interactions 7 at a time under each filter (type, channel,
    since/until; 40 of 100 match each) gives full pages and exactly the 40; each request
    audits one read of that customer and one read of its interactions, nothing else."""
    cid, sets = _long_timeline(vault)
    for name, filter_ in (
        ("type", {"type": "CART_ADD"}), ("channel", {"channel": "STORE"}),
        ("window", {"since": "2026-01-02T06:00:00+00:00", "until": "2026-01-03T22:00:00+00:00"}),
    ):  # fmt: skip
        pages = _pages(
            vault, gateway, TIMELINE, path=("customer", "interactions"),
            variables={"id": str(cid), **filter_}, as_=SUPPORT,
        )  # fmt: skip
        _check_paging(pages, sets[name], key="externalId")
        for page in pages:
            assert page.audited_customers(AuditAction.PII_ACCESS) == [str(cid)]
            assert page.audited_timelines() == [str(cid)]


# -- Segment.members ----------------------------------------------------------------------

MEMBERS = """
query($id: ID!, $after: String) {
  segment(id: $id) {
    size
    members(first: 7, after: $after) {
      edges { cursor node { customerId email } } pageInfo { hasNextPage endCursor }
    }
  }
}
"""


def test_segment_members_are_filtered_by_the_purpose_before_the_page_is_cut(
    vault: Vault, gateway: Gateway
) -> None:
    """A segment of 100 gold customers of whom 40 (interleaved) granted marketing_email:
    marketing pages through exactly those 40, full pages, and each request audits a
    pii.access of exactly the members it returned."""
    granted: set[str] = set()
    ledger = Privacy.of(vault).ledger
    with vault.unit(CTX) as s:
        for i in range(100):
            cid = vault.customers.create(
                s, CustomerInput(first_name=f"M{i}", email=f"m{i}@example.com", tier="gold")
            ).id
            if i % 5 in (0, 1):
                ledger.grant(s, cid, "marketing_email")
                granted.add(str(cid))
        rule = {"attribute": {"field": "tier", "op": "eq", "value": "gold"}}
        segment = vault.segments.create(s, name="Gold", definition=rule)
        vault.segments.refresh(s, segment.id)
    pages = _pages(
        vault, gateway, MEMBERS, path=("segment", "members"),
        variables={"id": str(segment.id)}, as_=MARKETING,
    )  # fmt: skip
    _check_paging(pages, granted)
    for page in pages:
        assert page.audited_customers(AuditAction.PII_ACCESS) == _ids(page)
    size = gateway.data(MEMBERS, {"id": str(segment.id), "after": None}, MARKETING)
    assert size["segment"]["size"] == MATCHING


# -- accessHistory and auditLog --------------------------------------------------------------


def _mixed_trail(vault: Vault) -> tuple[uuid.UUID, uuid.UUID]:
    """Customers x and y, and 100 audit entries, interleaved: 40 reads of x (i % 5 in 0,
    1), 20 consent changes of x (2), 40 reads of y (3, 4)."""
    with vault.unit(CTX) as s:
        x = vault.customers.create(s, CustomerInput(first_name="X")).id
        y = vault.customers.create(s, CustomerInput(first_name="Y")).id
    with vault.unit(CTX) as s:
        audit = buffer_of(s)
        for i in range(100):
            r = i % 5
            if r == 2:
                audit.add(AuditAction.CONSENT_CHANGE, customer_id=x, fields={"consent": "written"})
            else:
                audit.add(AuditAction.PII_ACCESS, customer_id=x if r < 2 else y,
                          fields={"email": "masked"})  # fmt: skip
    return x, y


def _entries(vault: Vault, action: AuditAction, customer: uuid.UUID) -> set[str]:
    with vault.db.transaction() as s:
        rows = s.scalars(
            select(AuditEntryRow.canonical).where(
                AuditEntryRow.action == action.value, AuditEntryRow.customer_id == customer
            )
        ).all()
    return {json.loads(r)["id"] for r in rows}


ACCESS_HISTORY = """
query($id: ID!, $after: String) {
  customer(id: $id) {
    accessHistory(first: 7, after: $after) {
      edges { cursor node { entryId action customerId } } pageInfo { hasNextPage endCursor }
    }
  }
}
"""


def test_access_history_lists_only_accesses_of_the_customer_in_full_pages(
    vault: Vault, gateway: Gateway
) -> None:
    """Of x's 60 entries, the 40 reads are its access history (consent changes are not
    accesses, y's reads are y's): a compliance officer pages through exactly those 40,
    and each request audits one read, of x."""
    x, _ = _mixed_trail(vault)
    reads = _entries(vault, AuditAction.PII_ACCESS, x)
    pages = _pages(
        vault, gateway, ACCESS_HISTORY, path=("customer", "accessHistory"),
        variables={"id": str(x)}, as_=COMPLIANCE,
    )  # fmt: skip
    _check_paging(pages, reads, key="entryId")
    assert {e["node"]["customerId"] for p in pages for e in p.edges} == {str(x)}
    for page in pages:
        assert page.audited_customers(AuditAction.PII_ACCESS) == [str(x)]


AUDIT_LOG = """
query($after: String, $filter: AuditFilterInput) {
  auditLog(first: 7, after: $after, filter: $filter) {
    edges { cursor node { entryId action customerId } } pageInfo { hasNextPage endCursor }
  }
}
"""


def test_the_audit_log_filter_runs_before_the_page_is_cut(vault: Vault, gateway: Gateway) -> None:
    """auditLog(filter: {action: "pii.access", customerId: x}) pages through exactly x's 40
    reads in full pages; each request writes one audit.export counting the entries it
    returned."""
    x, _ = _mixed_trail(vault)
    reads = _entries(vault, AuditAction.PII_ACCESS, x)
    wanted = {"action": "pii.access", "customerId": str(x)}
    pages = _pages(
        vault, gateway, AUDIT_LOG, path=("auditLog",), variables={"filter": wanted},
        as_=COMPLIANCE,
    )  # fmt: skip
    _check_paging(pages, reads, key="entryId")
    for page in pages:
        exports = [e for e in page.audited if e["action"] == AuditAction.AUDIT_EXPORT.value]
        assert [e["detail"]["entries"] for e in exports] == [len(page.edges)]
        assert page.audited_customers(AuditAction.PII_ACCESS) == []


# -- dsrRequests --------------------------------------------------------------------------

DSR_REQUESTS = """
query($after: String, $overdue: Boolean) {
  dsrRequests(first: 7, after: $after, overdue: $overdue) {
    edges { cursor node { requestId customerId overdue } } pageInfo { hasNextPage endCursor }
  }
}
"""


def test_overdue_requests_are_filtered_before_the_page_is_cut(
    vault: Vault, gateway: Gateway, clock: FrozenClock
) -> None:
    """100 requests, 40 of them (interleaved) filed three months ago and now overdue:
    dsrRequests(overdue: true) pages through exactly those 40, and each request audits a
    read of exactly the customers whose requests it returned."""
    now = clock.now
    overdue: set[str] = set()
    with vault.unit(CTX) as s:
        desk = Privacy.of(vault).desk
        for i in range(100):
            clock.now = now - timedelta(days=90) if i % 5 in (0, 1) else now
            cid = vault.customers.create(s, CustomerInput(first_name=f"R{i}")).id
            filed = desk.create(s, DsrInput("access", cid))
            if i % 5 in (0, 1):
                overdue.add(str(filed.request.id))
    clock.now = now
    pages = _pages(
        vault, gateway, DSR_REQUESTS, path=("dsrRequests",), variables={"overdue": True},
        as_=COMPLIANCE,
    )  # fmt: skip
    _check_paging(pages, overdue, key="requestId")
    for page in pages:
        assert all(e["node"]["overdue"] for e in page.edges)
        customers = sorted(e["node"]["customerId"] for e in page.edges)
        assert page.audited_customers(AuditAction.PII_ACCESS) == customers
