"""Relay connections (issue 16, item 2): first/after and last/before on every connection,
``pageInfo { hasNextPage hasPreviousPage startCursor endCursor }``, ``totalCount``.

For each connection (customers, Customer.interactions, Segment.members,
Customer.accessHistory, auditLog, dsrRequests) a list of 13 items among others its
filter (or the caller's purpose) leaves out, with ties in the sort key (items three at a
time share a time; the id breaks the tie): walking forward with first/after and
backward with last/before, at several page sizes, gives exactly the list an independent
computation makes from the rows (sorted in Python); pages are full but the last, their
pageInfo is exact on both sides, a slice between two cursors is the items between them,
an empty list is empty, and totalCount is the list's length, audited as a count, not as
reads. Bad page arguments and cursors are BAD_USER_INPUT.

Through the real ASGI app, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable
from datetime import timedelta
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
from vault.storage.models import AuditEntryRow, CustomerRow, DsrRequestRow, InteractionRow

ISSUER: Final = "customer-vault"
MATCHING: Final = 13  # the items of each list; three at a time share a sort time
ACCESSES: Final = (  # what an access history lists (GDPR Art. 15), spelled out here
    "pii.access", "interactions.read", "customer.export", "customer.update", "customer.merge",
    "access.denied", "interactions.count",
)  # fmt: skip
PAGE_ARGS: Final = "$first: Int, $after: String, $last: Int, $before: String"
PAGE: Final = "first: $first, after: $after, last: $last, before: $before"
SHAPE: Final = (
    "totalCount edges {{ cursor node {{ {key} }} }} "
    "pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}"
)


@dataclasses.dataclass
class Gateway:
    client: TestClient
    issuer: LocalTokenIssuer

    def post(self, query: str, variables: dict[str, Any], as_: tuple[Role, str]) -> Any:
        role, purpose = as_
        token = self.issuer.issue(f"{role.value}-1", role)
        response = self.client.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}", "X-Purpose": purpose},
        )
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def gateway(vault: Vault, tmp_path: Path) -> Gateway:
    issuer = LocalTokenIssuer.load_or_create(tmp_path / "jwt.json", ISSUER, ISSUER)
    app = create_app(
        vault, verifier=issuer.verifier(), local_issuer=issuer, rate_limiter=RateLimiter(10**6)
    )
    return Gateway(TestClient(app), issuer)


def _last_entry(vault: Vault) -> int:
    with vault.db.transaction() as s:
        return int(s.scalar(select(func.max(AuditEntryRow.id))) or 0)


@dataclasses.dataclass(frozen=True)
class Spec:
    """One connection: the query reaching it (``path`` below data), the node field that
    names an item, the caller, the variables that select the 13, those that select none,
    the list computed from the rows for each (up to an audit entry id: an access history
    grows as it is read), the audit action of its count and those its root field writes."""

    query: str
    path: tuple[str, ...]
    key: str
    as_: tuple[Role, str]
    variables: dict[str, Any]
    empty: dict[str, Any]
    expected: Callable[[int], list[str]]
    count_action: str
    root_reads: frozenset[str] = frozenset()
    expected_empty: Callable[[int], list[str]] = lambda _upto: []


def _connection(body: Any, path: tuple[str, ...]) -> Any:
    assert body.get("errors") is None, body["errors"]
    found = body["data"]
    for name in path:
        found = found[name]
    return found


@dataclasses.dataclass(frozen=True)
class Page:
    keys: list[str]
    cursors: list[str]
    info: dict[str, Any]
    total: int
    before: int  # the last audit entry id before the request


def _ask(vault: Vault, gateway: Gateway, spec: Spec, **page: Any) -> Page:
    before = _last_entry(vault)
    given = {name: value for name, value in page.items() if value is not None}
    found = _connection(gateway.post(spec.query, {**spec.variables, **given}, spec.as_), spec.path)
    edges = found["edges"]
    return Page(
        [e["node"][spec.key] for e in edges],
        [e["cursor"] for e in edges],
        found["pageInfo"],
        found["totalCount"],
        before,
    )


def _forward(vault: Vault, gateway: Gateway, spec: Spec, size: int) -> list[Page]:
    pages = [_ask(vault, gateway, spec, first=size)]
    while pages[-1].info["hasNextPage"]:
        assert len(pages) < 20
        pages.append(_ask(vault, gateway, spec, first=size, after=pages[-1].info["endCursor"]))
    return pages


def _backward(vault: Vault, gateway: Gateway, spec: Spec, size: int) -> list[Page]:
    pages = [_ask(vault, gateway, spec, last=size)]
    while pages[-1].info["hasPreviousPage"]:
        assert len(pages) < 20
        pages.append(_ask(vault, gateway, spec, last=size, before=pages[-1].info["startCursor"]))
    return pages


def _info(page: Page, *, next_: bool, previous: bool) -> dict[str, Any]:
    return {
        "hasNextPage": next_,
        "hasPreviousPage": previous,
        "startCursor": page.cursors[0] if page.cursors else None,
        "endCursor": page.cursors[-1] if page.cursors else None,
    }


# -- the lists ----------------------------------------------------------------------------


def _customers(vault: Vault, clock: FrozenClock) -> Spec:
    """17 customers, 13 of them gold; three at a time created at the same instant."""
    with vault.unit(CTX) as s:
        for n in range(17):
            if n % 3 == 0:
                clock.advance(minutes=1)
            tier = "silver" if n % 4 == 1 else "gold"
            vault.customers.create(s, CustomerInput(first_name=f"C{n}", tier=tier))

    def expected(_upto: int) -> list[str]:
        with vault.db.transaction() as s:
            rows = s.execute(
                select(CustomerRow.id, CustomerRow.created_at).where(CustomerRow.tier == "gold")
            ).all()
        return [str(i) for i, _ in sorted(rows, key=lambda r: (r[1], r[0]))]

    query = f"query({PAGE_ARGS}, $f: CustomerFilter) {{ customers({PAGE}, filter: $f) {{ "
    query += SHAPE.format(key="customerId") + " } }"
    return Spec(
        query, ("customers",), "customerId", (Role.SUPPORT_AGENT, "support"),
        {"f": {"tier": "gold"}}, {"f": {"tier": "platinum"}}, expected, "customers.count",
    )  # fmt: skip


def _interactions(vault: Vault, clock: FrozenClock) -> Spec:
    """One customer's 17 interactions, 13 of them cart adds; three at a time share a time."""
    with vault.unit(CTX) as s:
        cid = vault.customers.create(s, CustomerInput(first_name="Timeline")).id
        vault.interactions.record_many(
            s,
            [
                InteractionInput(
                    customer_id=cid, channel="web",
                    type="page_view" if n % 4 == 1 else "cart_add",
                    occurred_at=clock.now - timedelta(hours=n // 3),
                )
                for n in range(17)
            ],
        )  # fmt: skip

    def expected(_upto: int) -> list[str]:
        with vault.db.transaction() as s:
            rows = s.execute(
                select(InteractionRow.id, InteractionRow.occurred_at).where(
                    InteractionRow.customer_id == cid, InteractionRow.type == "cart_add"
                )
            ).all()
        return [str(i) for i, _ in sorted(rows, key=lambda r: (r[1], r[0]), reverse=True)]

    query = f"query({PAGE_ARGS}, $id: ID!, $t: InteractionType) {{ customer(id: $id) {{ "
    query += f"interactions({PAGE}, type: $t) {{ " + SHAPE.format(key="interactionId")
    query += " } } }"
    return Spec(
        query, ("customer", "interactions"), "interactionId", (Role.SUPPORT_AGENT, "support"),
        {"id": str(cid), "t": "CART_ADD"}, {"id": str(cid), "t": "PURCHASE"}, expected,
        "interactions.count", frozenset({"pii.access"}),
    )  # fmt: skip


def _members(vault: Vault, clock: FrozenClock) -> Spec:
    """A segment of 17 gold customers, 13 of whom granted marketing_email."""
    granted: list[uuid.UUID] = []
    ledger = Privacy.of(vault).ledger
    with vault.unit(CTX) as s:
        for n in range(17):
            cid = vault.customers.create(s, CustomerInput(first_name=f"M{n}", tier="gold")).id
            if n % 4 != 1:
                ledger.grant(s, cid, "marketing_email")
                granted.append(cid)
        rule = {"attribute": {"field": "tier", "op": "eq", "value": "gold"}}
        segment = vault.segments.create(s, name="Gold", definition=rule)
        vault.segments.refresh(s, segment.id)
        empty = vault.segments.create(
            s, name="Nobody", definition={"attribute": {"field": "tier", "op": "eq",
                                                        "value": "platinum"}},
        )  # fmt: skip
        vault.segments.refresh(s, empty.id)

    def expected(_upto: int) -> list[str]:
        return [str(c) for c in sorted(granted)]

    query = f"query({PAGE_ARGS}, $id: ID!) {{ segment(id: $id) {{ members({PAGE}) {{ "
    query += SHAPE.format(key="customerId") + " } } }"
    return Spec(
        query, ("segment", "members"), "customerId", (Role.MARKETING, "marketing_email"),
        {"id": str(segment.id)}, {"id": str(empty.id)}, expected, "segment.read",
        frozenset({"segment.read"}),
    )  # fmt: skip


def _trail(vault: Vault) -> tuple[uuid.UUID, uuid.UUID]:
    """Customers x and y; 13 reads and 13 consent changes of x, and reads of y."""
    with vault.unit(CTX) as s:
        x = vault.customers.create(s, CustomerInput(first_name="X")).id
        y = vault.customers.create(s, CustomerInput(first_name="Y")).id
    with vault.unit(CTX) as s:
        audit = buffer_of(s)
        for n in range(MATCHING):
            audit.add(AuditAction.PII_ACCESS, customer_id=x, fields={"email": "masked"})
            audit.add(AuditAction.CONSENT_CHANGE, customer_id=x, fields={"consent": "written"})
            audit.add(AuditAction.PII_ACCESS, customer_id=y, fields={"email": f"n{n}"[:1]})
    return x, y


def _entries(vault: Vault, customer: uuid.UUID, actions: tuple[str, ...], upto: int) -> list[str]:
    with vault.db.transaction() as s:
        rows = s.execute(
            select(AuditEntryRow.id, AuditEntryRow.canonical).where(
                AuditEntryRow.customer_id == customer,
                AuditEntryRow.action.in_(actions),
                AuditEntryRow.id <= upto,
            )
        ).all()
    return [json.loads(c)["id"] for _, c in sorted(rows, reverse=True)]


def _access_history(vault: Vault, clock: FrozenClock) -> Spec:
    """x's access history: its reads (and every read of it this test makes)."""
    x, _y = _trail(vault)
    with vault.unit(CTX) as s:
        nobody = vault.customers.create(s, CustomerInput(first_name="Nobody")).id
    query = f"query({PAGE_ARGS}, $id: ID!) {{ customer(id: $id) {{ accessHistory({PAGE}) {{ "
    query += SHAPE.format(key="entryId") + " } } }"
    return Spec(
        query, ("customer", "accessHistory"), "entryId", (Role.COMPLIANCE_OFFICER, "compliance"),
        {"id": str(x)}, {"id": str(nobody)},
        lambda upto: _entries(vault, x, ACCESSES, upto), "audit.count",
        frozenset({"pii.access"}), lambda upto: _entries(vault, nobody, ACCESSES, upto),
    )  # fmt: skip


def _audit_log(vault: Vault, clock: FrozenClock) -> Spec:
    """The audit log filtered to x's consent changes."""
    x, y = _trail(vault)
    query = f"query({PAGE_ARGS}, $f: AuditFilterInput) {{ auditLog({PAGE}, filter: $f) {{ "
    query += SHAPE.format(key="entryId") + " } }"
    return Spec(
        query, ("auditLog",), "entryId", (Role.COMPLIANCE_OFFICER, "compliance"),
        {"f": {"customerId": str(x), "action": "consent.change"}},
        {"f": {"customerId": str(y), "action": "consent.change"}},
        lambda upto: _entries(vault, x, ("consent.change",), upto), "audit.count",
    )  # fmt: skip


def _requests(vault: Vault, clock: FrozenClock) -> Spec:
    """17 access requests, 4 rejected; three at a time filed at the same instant."""
    desk = Privacy.of(vault).desk
    with vault.unit(CTX) as s:
        for n in range(17):
            if n % 3 == 0:
                clock.advance(hours=1)
            cid = vault.customers.create(s, CustomerInput(first_name=f"R{n}")).id
            filed = desk.create(s, DsrInput("access", cid))
            if n % 4 == 1:
                desk.reject(s, filed.request.id, reason="duplicate")

    def expected(_upto: int) -> list[str]:
        with vault.db.transaction() as s:
            rows = s.execute(
                select(DsrRequestRow.id, DsrRequestRow.due_at).where(
                    DsrRequestRow.status == "received"
                )
            ).all()
        return [str(i) for i, _ in sorted(rows, key=lambda r: (r[1], r[0]))]

    query = f"query({PAGE_ARGS}, $s: DsrStatus) {{ dsrRequests({PAGE}, status: $s) {{ "
    query += SHAPE.format(key="requestId") + " } }"
    return Spec(
        query, ("dsrRequests",), "requestId", (Role.COMPLIANCE_OFFICER, "compliance"),
        {"s": "RECEIVED"}, {"s": "COMPLETED"}, expected, "dsr.count",
    )  # fmt: skip


BUILDERS: Final[dict[str, Callable[[Vault, FrozenClock], Spec]]] = {
    "customers": _customers,
    "interactions": _interactions,
    "members": _members,
    "accessHistory": _access_history,
    "auditLog": _audit_log,
    "dsrRequests": _requests,
}


@pytest.fixture(params=list(BUILDERS))
def spec(request: pytest.FixtureRequest, vault: Vault, clock: FrozenClock) -> Spec:
    return BUILDERS[request.param](vault, clock)


# -- walks ----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [4, 5, 13, 14])
def test_forward_and_backward_walks_give_the_list_the_rows_make(
    vault: Vault, gateway: Gateway, spec: Spec, size: int
) -> None:
    """Forward (first/after) the pages concatenate to the list computed from the rows;
    backward (last/before) they concatenate, last page first, to the same list, so each
    walk's items are the other's reversed; every page is full but the far one; pageInfo
    says more lie ahead exactly until the end and behind exactly after the first page,
    and its cursors are the first and last edges'. (An access history grows by each read
    of it, at its newest end: a walk is compared with the rows as they stood when its
    newest page was read.)"""
    forward = _forward(vault, gateway, spec, size)
    backward = _backward(vault, gateway, spec, size)
    ahead = [k for p in forward for k in p.keys]
    behind = [k for p in reversed(backward) for k in p.keys]
    assert ahead == spec.expected(forward[0].before)
    assert behind == spec.expected(backward[-1].before)
    assert [k for p in backward for k in reversed(p.keys)] == list(reversed(behind))
    for pages, total in ((forward, len(ahead)), (backward, len(behind))):
        full, rest = divmod(total, size)
        assert [len(p.keys) for p in pages] == [size] * full + ([rest] if rest else [])
    assert [p.info for p in forward] == [
        _info(p, next_=n < len(forward) - 1, previous=n > 0) for n, p in enumerate(forward)
    ]
    assert [p.info for p in backward] == [
        _info(p, next_=n > 0, previous=n < len(backward) - 1) for n, p in enumerate(backward)
    ]


def test_cursors_bound_a_slice_from_either_end(vault: Vault, gateway: Gateway, spec: Spec) -> None:
    """after the 3rd item and before the 11th, first: 100 gives the 4th to the 10th and
    last: 3 the 8th to the 10th, each with more on both sides; after the last item or
    before the first the page is empty (but for the reads of an access history made
    since) and says what lies behind it."""
    items = _ask(vault, gateway, spec, first=MATCHING)
    wanted = spec.expected(items.before)
    a, b = items.cursors[2], items.cursors[10]
    between = _ask(vault, gateway, spec, first=100, after=a, before=b)
    tail = _ask(vault, gateway, spec, last=3, after=a, before=b)
    assert (between.keys, between.info["hasPreviousPage"], between.info["hasNextPage"]) == (
        wanted[3:10], True, False,
    )  # fmt: skip
    assert (tail.keys, tail.info["hasPreviousPage"], tail.info["hasNextPage"]) == (
        wanted[7:10], True, True,
    )  # fmt: skip
    past = _ask(vault, gateway, spec, first=5, after=items.cursors[-1])
    ahead = _ask(vault, gateway, spec, last=5, before=items.cursors[0])
    newer = spec.expected(ahead.before)  # reads of an access history are newer than it
    newer = newer[: newer.index(wanted[0])]
    assert (past.keys, past.info) == ([], _info(past, next_=False, previous=True))
    assert (ahead.keys, ahead.info) == (
        newer[-5:], _info(ahead, next_=True, previous=len(newer) > 5),
    )  # fmt: skip


def test_an_empty_list_has_no_edges_and_no_cursors(
    vault: Vault, gateway: Gateway, spec: Spec
) -> None:
    """Under variables that select nothing, either direction gives no edges, no cursors,
    no page on either side, and a totalCount of 0 (an access history: the reads of it
    made since, by these requests)."""
    empty = dataclasses.replace(spec, variables=spec.empty)
    for page in (_ask(vault, gateway, empty, first=5), _ask(vault, gateway, empty, last=5)):
        there = spec.expected_empty(page.before)
        assert (page.keys, page.total, page.info) == (
            there, len(there), _info(page, next_=False, previous=False),
        )  # fmt: skip
    assert spec.expected_empty(0) == []


def test_total_count_is_the_lists_length_and_is_audited_as_a_count(
    vault: Vault, gateway: Gateway, spec: Spec
) -> None:
    """totalCount alone is the list's length, whatever page is asked for, and the request
    reads no record of it: its only entry about the list is the count's (with the
    number); besides, only what its root field reads itself (the customer or segment
    asked for) is audited."""
    query = spec.query.replace(SHAPE.format(key=spec.key), "totalCount")
    before = _last_entry(vault)
    body = gateway.post(query, {**spec.variables, "first": 2}, spec.as_)
    total = _connection(body, spec.path)["totalCount"]
    with vault.db.transaction() as s:
        rows = s.scalars(select(AuditEntryRow.canonical).where(AuditEntryRow.id > before)).all()
    entries = [json.loads(r) for r in rows]
    assert total == len(spec.expected(before))
    counted = [
        e["detail"].get("count", e["detail"].get("size"))
        for e in entries
        if e["action"] == spec.count_action and {"count", "size"} & set(e["detail"])
    ]
    assert counted == [total]
    assert {e["action"] for e in entries} - spec.root_reads - {spec.count_action} == set()
    page_reads = [e for e in entries if "access_history" in e["fields"] or "members" in e["detail"]]
    assert page_reads == []


# -- bad arguments --------------------------------------------------------------------------


def _refusal(body: Any) -> list[tuple[str, str]]:
    return [(e["extensions"]["code"], e["message"]) for e in body["errors"]]


def test_bad_page_arguments_and_cursors_are_bad_user_input(
    vault: Vault, gateway: Gateway, spec: Spec
) -> None:
    """first and last together, last outside 1..100, a cursor with a character changed,
    a cursor of another list and text that is no cursor, as after or as before: each is
    BAD_USER_INPUT naming the argument, and no value is echoed."""
    page = _ask(vault, gateway, spec, first=2)
    cursor = page.cursors[0]
    flipped = cursor[:-3] + ("A" if cursor[-3] != "A" else "B") + cursor[-2:]
    other = gateway.post(
        '{ auditLog(first: 1, filter: {action: "pii.access"}) { edges { cursor } } }', {},
        (Role.COMPLIANCE_OFFICER, "compliance"),
    )["data"]["auditLog"]["edges"][0]["cursor"]  # fmt: skip
    if spec.path == ("auditLog",):
        other = _ask(vault, gateway, _customers(vault, FrozenClock()), first=1).cursors[0]
    not_a_cursor = "is not a cursor this API returned for this list"
    cases: list[tuple[dict[str, Any], tuple[str, str]]] = [
        ({"first": 2, "last": 2}, ("BAD_USER_INPUT", "last: give first or last, not both")),
        ({"last": 0}, ("BAD_USER_INPUT", "last: must be between 1 and 100")),
        ({"last": 101}, ("BAD_USER_INPUT", "last: must be between 1 and 100")),
        ({"after": flipped}, ("BAD_USER_INPUT", f"after: {not_a_cursor}")),
        ({"before": flipped}, ("BAD_USER_INPUT", f"before: {not_a_cursor}")),
        ({"after": other}, ("BAD_USER_INPUT", f"after: {not_a_cursor}")),
        ({"last": 1, "before": "garbled"}, ("BAD_USER_INPUT", f"before: {not_a_cursor}")),
    ]
    for given, expected in cases:
        body = gateway.post(spec.query, {**spec.variables, **given}, spec.as_)
        assert (given, _refusal(body)) == (given, [expected])
        assert "garbled" not in json.dumps(body["errors"])
        assert flipped not in json.dumps(body)


def test_counting_a_lists_timelines_reads_none_of_them(
    vault: Vault, gateway: Gateway, clock: FrozenClock
) -> None:
    """customers { edges { node { interactions(type: CART_ADD) { totalCount } } } } counts
    each customer's timeline (one interactions.count entry each, with its number) and
    reads no interaction: no interactions.read entry is written."""
    spec = _customers(vault, clock)
    with vault.unit(CTX) as s:
        cids = [c.id for c in vault.customers.page(s, first=3).items]
        vault.interactions.record_many(
            s,
            [
                InteractionInput(customer_id=cid, channel="web", type="cart_add",
                                 occurred_at=clock.now - timedelta(hours=n))
                for n, cid in enumerate(cids)
                for _ in range(n + 1)
            ],
        )  # fmt: skip
    before = _last_entry(vault)
    body = gateway.post(
        "{ customers(first: 3) { edges { node { customerId "
        "interactions(type: CART_ADD) { totalCount } } } } }",
        {}, spec.as_,
    )  # fmt: skip
    counts = {
        e["node"]["customerId"]: e["node"]["interactions"]["totalCount"]
        for e in _connection(body, ("customers",))["edges"]
    }
    with vault.db.transaction() as s:
        rows = s.scalars(select(AuditEntryRow.canonical).where(AuditEntryRow.id > before)).all()
    entries = [json.loads(r) for r in rows]
    assert counts == {str(cid): n + 1 for n, cid in enumerate(cids)}
    assert sorted(
        (e["customer"], e["detail"]["count"])
        for e in entries
        if e["action"] == "interactions.count"
    ) == sorted((str(cid), n + 1) for n, cid in enumerate(cids))
    assert [e for e in entries if e["action"] == "interactions.read"] == []
