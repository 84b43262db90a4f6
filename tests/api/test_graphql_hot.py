"""The event-loop path of a profile read (PostgreSQL): one statement to read, the audit
append before the answer, the ordinary path whenever it cannot decide alone.

The answers themselves are checked against graphql-core by
``tests/api/test_graphql_compiled.py`` and ``tests/api/test_graphql_differential.py``,
whose harness runs the application's lifespan (which opens the event-loop pool).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from sqlalchemy import Connection, event
from structlog.testing import capture_logs

from policies import Role
from tests.api.test_graphql_compiled import (  # noqa: F401 - fixtures used by name
    ME,
    PROFILE,
    Harness,
    People,
    harness,
    people,
)
from tests.conftest import CTX, without_ids
from vault.customers import CustomerInput
from vault.runtime import Vault

AGENT = (Role.SUPPORT_AGENT, "support")


@pytest.fixture(autouse=True)
def _postgresql_only(vault: Vault) -> None:
    if vault.db.dialect != "postgresql":
        pytest.skip("the event-loop path reads PostgreSQL (SQLite keeps the thread path)")


@contextmanager
def round_trips(harness: Harness) -> Iterator[dict[str, int]]:  # noqa: F811 - not the fixture
    """Statements sent during the block: on the event-loop pool, and on the engine of
    the ordinary path (its BEGIN and COMMIT counted as the round trips they are)."""
    engine = harness.vault.db.engine
    reader = harness.endpoint.hot.reader
    assert reader is not None
    counts = {"pool": -reader.pool.statements, "engine": 0}

    def one(conn: Connection, *_args: Any) -> None:
        if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            counts["engine"] += 1  # under autocommit no BEGIN or COMMIT is sent

    def sent(*_args: Any) -> None:
        counts["engine"] += 1

    listeners = (("begin", one), ("before_cursor_execute", sent), ("commit", one))
    for name, listener in listeners:
        event.listen(engine, name, listener)
    try:
        yield counts
    finally:
        for name, listener in listeners:
            event.remove(engine, name, listener)
        counts["pool"] += reader.pool.statements


def test_a_profile_read_is_one_statement_and_its_audit_append(
    harness: Harness,  # noqa: F811 - fixture
    people: People,  # noqa: F811 - fixture
) -> None:
    """The support agent's profile with its timeline, and a data subject's ``me``: one
    statement on the event loop, then the audit append (one statement, autocommit, on
    the same pool) and nothing on the ordinary path's engine."""
    for query, variables, role, subject in (
        (PROFILE, {"id": str(people.full)}, AGENT, None),
        (ME, None, (Role.DATA_SUBJECT, "self"), people.full),
    ):
        token = harness.issuer.issue("caller-1", role[0], customer_id=subject)
        headers = {"Authorization": f"Bearer {token}", "X-Purpose": role[1]}
        with round_trips(harness) as counts:
            reply = harness.client.post(
                "/graphql", json={"query": query, "variables": variables}, headers=headers
            )
        assert reply.status_code == 200
        assert "errors" not in reply.json()
        expected = {"pool": 1 + APPEND_ROUND_TRIPS, "engine": 0}
        assert expected == counts, query


# The audit append on PostgreSQL: one statement (the entries and their queue rows) sent
# alone under autocommit, no BEGIN or COMMIT; the group commit on the event loop
# (vault/audit_trail/loop_writer.py) shares it among the requests of a flush (here one
# request: one round trip, on the event-loop pool).
APPEND_ROUND_TRIPS = 1
HARNESS_ROUND_TRIPS = 6  # Harness.post counts the audit entries before and after


def test_what_the_event_loop_cannot_decide_goes_the_ordinary_way(
    harness: Harness,  # noqa: F811 - fixture
    people: People,  # noqa: F811 - fixture
) -> None:
    """A restricted, erased or unconsented customer, an unknown id: the one statement,
    then the ordinary path reads, decides and audits (its answers match graphql-core's:
    the differential tests)."""
    for cid in (people.restricted, people.erased, people.unconsented):
        with round_trips(harness) as counts:
            harness.post(PROFILE, {"id": str(cid)}, *(Role.MARKETING, "marketing_email"),
                         compiled=True)  # fmt: skip
        assert counts["pool"] == 1
        assert counts["engine"] > HARNESS_ROUND_TRIPS + APPEND_ROUND_TRIPS


def test_no_answer_leaves_without_its_committed_audit_entries(
    harness: Harness,  # noqa: F811 - fixture
    people: People,  # noqa: F811 - fixture
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fail-closed: when the audit append fails (the driver's connection error on the
    event-loop pool), the request fails (503) and its body carries nothing that was read."""
    reader = harness.endpoint.hot.reader
    assert reader is not None

    async def fail(*_args: Any, **_kwargs: Any) -> None:
        raise psycopg.OperationalError("connection lost")

    monkeypatch.setattr(reader.pool, "execute", fail)
    status, body, _audit = harness.post(PROFILE, {"id": str(people.full)}, *AGENT, compiled=True)
    assert status == 503
    assert b"Zahra" not in body
    assert "6789" not in without_ids(body.decode())
    assert b'"data"' not in body


def test_the_event_loop_path_logs_no_value_it_read(
    harness: Harness,  # noqa: F811 - fixture
    people: People,  # noqa: F811 - fixture
) -> None:
    """A read on the event loop puts no PII value in a log line."""
    with capture_logs() as logs:
        status, body, _audit = harness.post(PROFILE, {"id": str(people.full)}, *AGENT,
                                            compiled=True)  # fmt: skip
    assert status == 200
    assert "زهرا" in body.decode()  # the agent sees the first name in clear
    for value in ("زهرا", "จิตรภักดี", "Zahra", "6789", "1990", "Paris"):
        assert value not in without_ids(repr(logs))


BY_EMAIL = """query ByEmail($email: String!) {
  customerByEmail(email: $email) { customerId email phone firstName lastName tags
    interactions(first: 3) { edges { node { id } } } }
}"""
BY_PHONE = """query ByPhone($phone: String!) {
  customerByPhone(phone: $phone) { customerId email phone firstName lastName tags }
}"""


def _send(harness: Harness, query: str, variables: dict[str, Any]) -> dict[str, Any]:  # noqa: F811
    token = harness.issuer.issue("caller-1", AGENT[0])
    headers = {"Authorization": f"Bearer {token}", "X-Purpose": AGENT[1]}
    harness.endpoint.compiled = True
    reply = harness.client.post("/graphql", json={"query": query, "variables": variables},
                                headers=headers)  # fmt: skip
    assert reply.status_code == 200
    body: dict[str, Any] = reply.json()
    return body


def test_a_lookup_by_email_or_phone_is_one_statement_and_its_audit_append(
    harness: Harness,  # noqa: F811 - fixture
    people: People,  # noqa: F811 - fixture
) -> None:
    """``customerByEmail`` (with the timeline) and ``customerByPhone`` finding one live
    customer: one statement on the event loop keyed by the blind index, then the audit
    append and nothing else; Persian, Thai and Chinese names come back exactly."""
    for query, variables, root in (
        (BY_EMAIL, {"email": "  ZAHRA.karimi@example.IR "}, "customerByEmail"),
        (BY_PHONE, {"phone": "+989123456789"}, "customerByPhone"),
    ):
        with round_trips(harness) as counts:
            body = _send(harness, query, variables)
        assert counts == {"pool": 1 + APPEND_ROUND_TRIPS, "engine": 0}, query
        assert "errors" not in body
        who = body["data"][root]
        expected = (str(people.full), "زهرا", "จิตรภักดี", ["vip", "新"], "***6789")
        assert expected == (
            who["customerId"], who["firstName"], who["lastName"], who["tags"], who["phone"]
        )  # fmt: skip


def test_a_hot_lookup_answers_and_audits_as_the_ordinary_path(
    harness: Harness,  # noqa: F811 - fixture
    people: People,  # noqa: F811 - fixture
) -> None:
    """The same body and the same audit entries (the lookup with its count, never the
    value, and the ``pii.access``) with plans off and on."""
    for query, variables, by in (
        (BY_EMAIL, {"email": "zahra.karimi@example.ir"}, "email"),
        (BY_PHONE, {"phone": "+98 912 345 6789"}, "phone"),
    ):
        calls = [harness.post(query, variables, *AGENT, compiled=on) for on in (False, True)]
        assert calls[0] == calls[1]
        status, _body, audit = calls[1]
        assert status == 200
        lookup = [e for e in audit if e["action"] == "customer.lookup"]
        assert [{"by": by, "matches": 1}] == [e["detail"] for e in lookup]
        assert [{by: "searched"}] == [e["fields"] for e in lookup]
        for value in ("zahra", "karimi", "912", "6789"):
            assert value not in without_ids(json.dumps(audit).lower())


def test_a_lookup_the_event_loop_cannot_decide_goes_the_ordinary_way(
    harness: Harness,  # noqa: F811 - fixture
    people: People,  # noqa: F811 - fixture
    vault: Vault,
) -> None:
    """An address two live records share (AMBIGUOUS), an unknown one: the one
    statement wrote nothing, then the ordinary path answers. An
    address that is not one is reported without a statement on the event loop."""
    with vault.unit(CTX) as s:
        for name in ("李", "王"):
            pair = CustomerInput(email="pair@example.cn", first_name=name)
            vault.customers.create(s, pair, check_duplicates=False)
    with round_trips(harness) as counts:
        body = _send(harness, BY_EMAIL, {"email": "pair@example.cn"})
    assert counts["pool"] == 1
    assert counts["engine"] > APPEND_ROUND_TRIPS
    assert [e["extensions"]["code"] for e in body["errors"]] == ["AMBIGUOUS"]
    assert body["data"] == {"customerByEmail": None}
    calls = [harness.post(BY_EMAIL, {"email": "pair@example.cn"}, *AGENT, compiled=on)
             for on in (False, True)]  # fmt: skip
    assert calls[0] == calls[1]  # the same answer, the same audit: the hot path wrote nothing
    with round_trips(harness) as counts:
        body = _send(harness, BY_EMAIL, {"email": "nobody@example.com"})
    assert counts["pool"] == 1
    assert counts["engine"] > APPEND_ROUND_TRIPS
    assert body["data"] == {"customerByEmail": None}
    with round_trips(harness) as counts:
        body = _send(harness, BY_EMAIL, {"email": "not an address"})
    assert counts["pool"] == 0
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
