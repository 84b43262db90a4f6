"""Access anomaly alerts (vault.alerts): a simulated scrape by one support token raises
exactly one distinct-customers alert, normal use none; a refusal spike one; an export
outside the configured hours one, inside none; repeated scans raise nothing twice; each
alert is a security.alert audit entry, a metric and a signed webhook; no PII anywhere."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import structlog.testing
from sqlalchemy import select

from audit.entries import AuditAction, AuditEntry
from policies import AccessDenied
from tests.conftest import CTX, FrozenClock
from vault import telemetry
from vault.alerts import AlertKind, Thresholds
from vault.authorization.context import AccessContext, Actor
from vault.config import Settings
from vault.crypto import Keyring
from vault.crypto.signing import Ed25519Signer
from vault.crypto.webhooks import WebhookSecrets, verify_signature
from vault.customers import CustomerInput
from vault.runtime import Vault
from vault.storage.db import Database
from vault.storage.models import AuditEntryRow

AGENT = AccessContext(Actor("agent-7", "support_agent"), "support")
COLLEAGUE = AccessContext(Actor("agent-8", "support_agent"), "support")
NAME, EMAIL = "مهسا", "scrape.victim.{}@example.org"


class Receiver:
    """A loopback security endpoint that keeps every request it hears (answers 204)."""

    def __init__(self) -> None:
        self.requests: list[tuple[bytes, dict[str, str]]] = []
        heard = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                heard.append((body, dict(self.headers.items())))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/security"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    heard = Receiver()
    yield heard
    heard.close()


@pytest.fixture
def watched(
    *,
    settings: Settings,
    database: Database,
    session_keyring: Keyring,
    audit_signer: Ed25519Signer,
    clock: FrozenClock,
    receiver: Receiver,
) -> Iterator[Vault]:
    """A vault whose exports are expected 08-18 (UTC) and whose alerts go to ``receiver``."""
    configured = replace(
        settings,
        alert_export_hours=(8, 18),
        alert_refusals_per_hour=5,
        security_webhook_url=receiver.url,
    )
    v = Vault.open(
        configured, keyring=session_keyring, database=database, signer=audit_signer, clock=clock
    )
    yield v
    v.close()


def _customers(vault: Vault, n: int) -> list[uuid.UUID]:
    with vault.unit(CTX) as s:
        return [
            vault.customers.create(s, CustomerInput(first_name=NAME, email=EMAIL.format(i))).id
            for i in range(n)
        ]


def _read(vault: Vault, context: AccessContext, ids: list[uuid.UUID]) -> None:
    with vault.unit(context) as s:
        for customer_id in ids:
            vault.customers.get(s, customer_id)


def _alert_entries(vault: Vault) -> list[AuditEntry]:
    with vault.db.transaction() as session:
        rows = session.scalars(
            select(AuditEntryRow.canonical).where(
                AuditEntryRow.action == AuditAction.SECURITY_ALERT.value
            )
        ).all()
    return [AuditEntry.from_canonical(row) for row in rows]


def _count(kind: AlertKind) -> float:
    value = telemetry.REGISTRY.get_sample_value("cvault_access_alerts_total", {"kind": kind})
    return value or 0.0


def test_a_scrape_by_one_token_raises_one_signed_alert_and_normal_use_none(
    watched: Vault, clock: FrozenClock, receiver: Receiver
) -> None:
    """One support token reading 300 distinct customers within an hour raises exactly one
    distinct-customers alert; a colleague reading 40 raises none. A second scan (and a
    scan after more reads in the same hour) raises nothing again. The alert is an audit
    entry of ``system:alerts``, one count of the metric, and one webhook whose signature
    verifies with the security secret and whose Idempotency-Key is the alert's id."""
    people = _customers(watched, 300)
    before = _count(AlertKind.DISTINCT_CUSTOMERS)
    clock.advance(minutes=5)
    _read(watched, COLLEAGUE, people[:40])
    _read(watched, AGENT, people[:150])
    clock.advance(minutes=10)
    with structlog.testing.capture_logs() as logs:
        _read(watched, AGENT, people[150:])
        first = watched.alerts.run(watched.db)
        clock.advance(minutes=5)
        _read(watched, AGENT, people[:10])
        again = watched.alerts.run(watched.db)
    entries = _alert_entries(watched)
    expected_facts = {
        "kind": "distinct_customers",
        "principal": "agent-7",
        "hour": "2026-11-23T12:00:00+00:00",
        "count": 300,
        "threshold": 200,
        "baseline": 0,
    }
    assert [(a.kind, a.principal, a.count) for a in first.raised] == [
        (AlertKind.DISTINCT_CUSTOMERS, "agent-7", 300)
    ]
    assert (again.raised, first.delivery is not None and first.delivery.sent) == ([], 1)
    assert [
        ({k: e.detail[k] for k in expected_facts}, e.actor, e.customer_id) for e in entries
    ] == [(expected_facts, "system:alerts", None)]
    assert _count(AlertKind.DISTINCT_CUSTOMERS) - before == 1
    assert len(receiver.requests) == 1
    body, headers = receiver.requests[0]
    secret = WebhookSecrets.of(watched.keyring.provider).security_secret()
    verify_signature(secret, body, headers, now=clock().timestamp())  # raises if it is bad
    payload = json.loads(body)
    assert (payload["alert"], headers["Idempotency-Key"]) == (
        str(first.raised[0].id),
        str(first.raised[0].id),
    )
    assert {k: payload[k] for k in expected_facts} == expected_facts
    visible = [body.decode(), *(e.canonical().decode() for e in entries), repr(logs)]
    assert [t for t in visible if NAME in t or "scrape.victim" in t or str(people[0]) in t] == []


def test_the_baseline_raises_the_limit_of_a_principal_that_always_reads_much(
    watched: Vault, clock: FrozenClock
) -> None:
    """A principal whose active hours over the last week read 100 customers each may read
    up to 3 x 100 = 300 in an hour: 250 raises nothing, where the 200 floor alone would."""
    people = _customers(watched, 250)
    for _ in range(3):
        _read(watched, AGENT, people[:100])
        clock.advance(hours=1)
    _read(watched, AGENT, people)
    report = watched.alerts.scan(watched.db)
    assert (report.raised, Thresholds().distinct_limit(100)) == ([], 300)


def test_a_refusal_spike_raises_one_alert(watched: Vault) -> None:
    """Six refusals in an hour (threshold 5) by one data subject token raise one refusals
    alert; a scan after one more refusal raises none again."""
    me, *others = _customers(watched, 8)
    subject = AccessContext(Actor("subject-3", "data_subject", customer_id=me), "self")
    for other in others[:6]:
        with pytest.raises(AccessDenied), watched.unit(subject) as s:
            watched.customers.get(s, other)
    first = watched.alerts.scan(watched.db)
    with pytest.raises(AccessDenied), watched.unit(subject) as s:
        watched.customers.get(s, others[6])
    again = watched.alerts.scan(watched.db)
    assert [(a.kind, a.principal, a.count, a.threshold) for a in first.raised] == [
        (AlertKind.REFUSALS, "subject-3", 6, 5)
    ]
    assert again.raised == []


def test_an_export_outside_the_hours_raises_one_alert_inside_none(
    watched: Vault, clock: FrozenClock
) -> None:
    """With exports expected 08-18, an audit export at 03:00 raises one export alert (a
    second export in that hour does not raise another); one at 10:00 raises none."""
    officer = AccessContext(Actor("officer-2", "compliance_officer"), "compliance")
    clock.now = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    watched.audit.record_now(watched.db, officer, AuditAction.AUDIT_EXPORT)
    inside = watched.alerts.scan(watched.db)
    clock.now = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    watched.audit.record_now(watched.db, officer, AuditAction.AUDIT_EXPORT)
    outside = watched.alerts.scan(watched.db)
    clock.advance(minutes=20)
    watched.audit.record_now(watched.db, officer, AuditAction.AUDIT_EXPORT)
    again = watched.alerts.scan(watched.db)
    assert inside.raised == []
    assert [(a.kind, a.principal, a.hour) for a in outside.raised] == [
        (AlertKind.EXPORT_OFF_HOURS, "officer-2", datetime(2026, 11, 25, 3, 0, tzinfo=UTC))
    ]
    assert again.raised == []
    assert [a.kind for a in watched.alerts.recent(watched.db)] == [AlertKind.EXPORT_OFF_HOURS]


def test_a_console_search_outside_the_hours_is_no_export(
    watched: Vault, clock: FrozenClock
) -> None:
    """A page of the console's audit search (audit.search) at 03:00 reads 25 entries at
    most and downloads nothing: it raises no export alert; an audit.export in that hour
    still does."""
    officer = AccessContext(Actor("officer-2", "compliance_officer"), "compliance")
    clock.now = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    watched.audit.record_now(watched.db, officer, AuditAction.AUDIT_SEARCH)
    searched = watched.alerts.scan(watched.db)
    watched.audit.record_now(watched.db, officer, AuditAction.AUDIT_EXPORT)
    exported = watched.alerts.scan(watched.db)
    assert searched.raised == []
    assert [(a.kind, a.principal) for a in exported.raised] == [
        (AlertKind.EXPORT_OFF_HOURS, "officer-2")
    ]


def test_export_hours_read_in_the_configured_zone_and_wrap_past_midnight() -> None:
    """08-18 in Asia/Tehran (UTC+3:30): 05:00 UTC is 08:30 there (inside), 15:00 UTC is
    18:30 (outside); 22-06 wraps: 23:00 inside, 12:00 outside."""
    tehran = Thresholds(export_hours=(8, 18), time_zone="Asia/Tehran")
    night = Thresholds(export_hours=(22, 6))
    at = datetime(2026, 11, 25, tzinfo=UTC)
    assert [
        tehran.off_hours(at + timedelta(hours=5)),
        tehran.off_hours(at + timedelta(hours=15)),
        night.off_hours(at + timedelta(hours=23)),
        night.off_hours(at + timedelta(hours=12)),
    ] == [False, True, False, True]


def test_a_failed_delivery_is_retried_until_the_endpoint_answers(
    watched: Vault, clock: FrozenClock, receiver: Receiver
) -> None:
    """An endpoint that cannot be reached leaves the alert undelivered and due again after
    30 s; once it answers, the alert is delivered once."""
    officer = AccessContext(Actor("officer-2", "compliance_officer"), "compliance")
    clock.now = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    watched.audit.record_now(watched.db, officer, AuditAction.AUDIT_EXPORT)
    url = watched.alerts.delivery.url
    watched.alerts.delivery.url = "http://127.0.0.1:9/unreachable"
    failed = watched.alerts.run(watched.db)
    watched.alerts.delivery.url = url
    early = watched.alerts.delivery.deliver(watched.db)
    clock.advance(seconds=31)
    later = watched.alerts.delivery.deliver(watched.db)
    after = watched.alerts.delivery.deliver(watched.db)
    assert (failed.delivery, early.sent, later.sent, after.sent) == (
        type(early)(retrying=1),
        0,
        1,
        0,
    )
    assert len(receiver.requests) == 1
    assert [a.attempts for a in watched.alerts.recent(watched.db)] == [2]
