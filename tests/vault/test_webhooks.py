"""Webhooks on SQLite and PostgreSQL: segment enter/leave events reach a real HTTP
receiver on 127.0.0.1, signed (checked with vault.crypto.webhooks.verify_signature) and
with an Idempotency-Key; retries with backoff under a frozen clock, giving up, consent
at fan-out and at send time, registration rules, no PII anywhere, no stored secret."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import structlog
from sqlalchemy import select

from audit.entries import AuditAction
from consent import Privacy
from policies import AccessDenied
from tests.conftest import CTX, FrozenClock, grant_all_consents
from vault.authorization.context import AccessContext, Actor
from vault.crypto.webhooks import SignatureError, verify_signature
from vault.customers import CustomerInput, CustomerPatch
from vault.errors import InvalidInput
from vault.runtime import Vault
from vault.segments.service import SegmentNotFound
from vault.segments.webhooks import (
    DeliveryReport,
    DeliveryState,
    NewWebhook,
    WebhookDispatcher,
    WebhookNotFound,
    WebhookService,
)
from vault.storage.models import AuditEntryRow, Base, WebhookDeliveryRow

ANALYST = AccessContext(Actor("analyst-1", "analyst"), "analytics")
EMAIL = AccessContext(Actor("marketing-1", "marketing"), "marketing_email")
SMS = AccessContext(Actor("marketing-2", "marketing"), "marketing_sms")
SUPPORT = AccessContext(Actor("agent-1", "support_agent"), "support")
GOLD = {"attribute": {"field": "tier", "op": "eq", "value": "gold"}}
PEOPLE = [
    ("Ada", "Lovelace", "ada.lovelace@example.org", "+441632960001"),
    ("فاطمه", "محمدی", "fatemeh@example.ir", "+989121234567"),
    ("สมชาย", "ใจดี", "somchai@example.co.th", "+66812345678"),
    ("李", "华", "li.hua@example.cn", "+8613812345678"),
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool

    @property
    def message(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that timed out leaves a broken pipe behind: expected here."""


class Receiver:
    """A real HTTP endpoint on 127.0.0.1. Each path has its own secret and a queue of
    status codes to answer with (then 200); a request whose signature does not verify
    is answered 401 and recorded as unverified."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self.secrets: dict[str, str] = {}
        self.replies: dict[str, list[int]] = {}
        self.delays: dict[str, float] = {}
        self.received: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.handle(self, body)

            def log_message(self, *_args: Any) -> None:
                return

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def handle(self, request: BaseHTTPRequestHandler, body: bytes) -> None:
        headers = {k.lower(): v for k, v in request.headers.items()}  # urllib recases names
        verified = False
        secret = self.secrets.get(request.path)
        if secret is not None:
            try:
                verify_signature(secret, body, headers, now=self.clock().timestamp())
                verified = True
            except SignatureError:
                verified = False
        with self._lock:
            self.received.append(Received(request.path, headers, body, verified))
            queue = self.replies.get(request.path) or []
            status = queue.pop(0) if queue else 200
        time.sleep(self.delays.get(request.path, 0.0))
        if not verified:
            status = 401
        request.send_response(status)
        if 300 <= status < 400:
            request.send_header("Location", self.url("/elsewhere"))
        request.send_header("Content-Length", "0")
        request.end_headers()

    def at(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(clock: FrozenClock) -> Iterator[Receiver]:
    r = Receiver(clock)
    yield r
    r.close()


def _customers(vault: Vault, n: int, **kwargs: Any) -> list[uuid.UUID]:
    with vault.unit(CTX) as s:
        return [vault.customers.create(s, CustomerInput(**kwargs)).id for _ in range(n)]


def _segment(vault: Vault, definition: dict[str, Any] = GOLD) -> uuid.UUID:
    with vault.unit(CTX) as s:
        return vault.segments.create(s, name="gold", definition=definition).id


def _refresh(vault: Vault) -> None:
    with vault.unit(CTX) as s:
        vault.segments.refresh(s)


def _register(
    vault: Vault,
    receiver: Receiver,
    path: str,
    segments: list[uuid.UUID],
    context: AccessContext = ANALYST,
) -> NewWebhook:
    with vault.unit(context) as s:
        new = vault.webhooks.create(
            s, url=receiver.url(path), segment_ids=segments, purpose=context.purpose
        )
    receiver.secrets[path] = new.secret
    return new


def _dispatcher(vault: Vault, clock: FrozenClock, **kwargs: Any) -> WebhookDispatcher:
    return WebhookDispatcher(vault.webhooks.secrets, vault.gate, vault.audit, clock=clock, **kwargs)


def _deliveries(vault: Vault) -> list[WebhookDeliveryRow]:
    with vault.db.transaction() as s:
        return list(s.scalars(select(WebhookDeliveryRow).order_by(WebhookDeliveryRow.occurred_at)))


# -- delivery ---------------------------------------------------------------------------


def test_enter_and_leave_events_arrive_signed_with_an_idempotency_key(
    vault: Vault, receiver: Receiver, clock: FrozenClock
) -> None:
    """Two customers enter a segment, then one leaves: three POSTs, each with a valid
    signature, JSON of the documented shape, and Idempotency-Key equal to the body's id."""
    first, second = _customers(vault, 2, tier="gold")
    segment = _segment(vault)
    _register(vault, receiver, "/hook", [segment])
    _refresh(vault)
    report = vault.dispatcher.run_once(vault.db)
    assert DeliveryReport(events=2, fanned_out=2, attempted=2, delivered=2) == report
    clock.advance(minutes=5)
    with vault.unit(CTX) as s:
        vault.customers.update(s, second, CustomerPatch(tier="silver"))
    _refresh(vault)
    assert vault.dispatcher.run_once(vault.db).delivered == 1

    got = receiver.at("/hook")
    assert [r.verified for r in got] == [True, True, True]
    assert {(first, "segment.entered"), (second, "segment.entered"), (second, "segment.left")} == {
        (uuid.UUID(r.message["customer_id"]), r.message["type"]) for r in got
    }
    for r in got:
        assert {"id", "type", "segment_id", "customer_id", "occurred_at"} == set(r.message)
        assert r.message["id"] == r.headers["idempotency-key"]
        assert str(segment) == r.message["segment_id"]
        assert r.headers["content-type"] == "application/json"
        assert r.headers["x-cvault-signature"].startswith("v1=")
    left = next(r for r in got if r.message["type"] == "segment.left")
    assert clock().isoformat(timespec="microseconds") == left.message["occurred_at"]
    assert {DeliveryState.DELIVERED.value} == {d.state for d in _deliveries(vault)}
    assert DeliveryReport() == vault.dispatcher.run_once(vault.db)  # nothing sent twice


def test_a_receiver_that_fails_twice_gets_the_same_delivery_three_times(
    vault: Vault, receiver: Receiver, clock: FrozenClock
) -> None:
    """500, 503, then 200: the same Idempotency-Key three times, each retry only once the
    backoff (2 s, then 4 s, jittered into [half, whole]) has passed; it ends delivered."""
    _customers(vault, 1, tier="gold")
    _register(vault, receiver, "/flaky", [_segment(vault)])
    receiver.replies["/flaky"] = [500, 503]
    dispatcher = _dispatcher(vault, clock, base_delay=2.0)
    _refresh(vault)

    assert dispatcher.run_once(vault.db).retrying == 1
    (row,) = _deliveries(vault)
    assert clock() + timedelta(seconds=1) <= row.next_attempt_at <= clock() + timedelta(seconds=2)
    assert (1, 500, DeliveryState.PENDING.value) == (row.attempts, row.last_status, row.state)
    assert dispatcher.run_once(vault.db).attempted == 0  # not due yet
    clock.advance(seconds=2)
    assert dispatcher.run_once(vault.db).retrying == 1
    (row,) = _deliveries(vault)
    assert row.next_attempt_at <= clock() + timedelta(seconds=4)
    clock.advance(seconds=4)
    assert dispatcher.run_once(vault.db).delivered == 1

    keys = [r.headers["idempotency-key"] for r in receiver.at("/flaky")]
    assert [str(row.id)] * 3 == keys
    (row,) = _deliveries(vault)
    assert (3, 200, DeliveryState.DELIVERED.value, clock()) == (
        row.attempts, row.last_status, row.state, row.delivered_at,
    )  # fmt: skip


def test_a_delivery_is_given_up_after_max_attempts(
    vault: Vault, receiver: Receiver, clock: FrozenClock
) -> None:
    """A receiver that always answers 500 is tried max_attempts times, then the delivery
    is failed and never sent again; the backoff is capped at max_delay."""
    _customers(vault, 1, tier="gold")
    _register(vault, receiver, "/down", [_segment(vault)])
    receiver.replies["/down"] = [500] * 10
    dispatcher = _dispatcher(vault, clock, max_attempts=4, base_delay=2.0, max_delay=5.0)
    _refresh(vault)
    reports = []
    for _ in range(6):
        reports.append(dispatcher.run_once(vault.db))
        clock.advance(seconds=5)
    assert [r.retrying for r in reports] == [1, 1, 1, 0, 0, 0]
    assert [r.failed for r in reports] == [0, 0, 0, 1, 0, 0]
    assert len(receiver.at("/down")) == 4
    (row,) = _deliveries(vault)
    assert (DeliveryState.FAILED.value, 4, 500) == (row.state, row.attempts, row.last_status)
    assert row.failed_at is not None


def test_refused_connections_timeouts_and_redirects_are_retried(
    vault: Vault, receiver: Receiver, clock: FrozenClock
) -> None:
    """A closed port and a receiver slower than the timeout are retried with the error's
    class recorded (never a message); a 302 is not followed."""
    _customers(vault, 1, tier="gold")
    segment = _segment(vault)
    closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = closed.server_address[1]
    closed.server_close()
    with vault.unit(ANALYST) as s:
        vault.webhooks.create(
            s, url=f"http://127.0.0.1:{port}/gone", segment_ids=[segment], purpose="analytics"
        )
    _register(vault, receiver, "/slow", [segment])
    _register(vault, receiver, "/moved", [segment])
    receiver.delays["/slow"] = 1.5
    receiver.replies["/moved"] = [302]
    dispatcher = _dispatcher(vault, clock, timeout=0.5)
    _refresh(vault)
    assert DeliveryReport(events=1, fanned_out=3, attempted=3, retrying=3) == dispatcher.run_once(
        vault.db
    )
    errors = {(d.last_status, d.last_error) for d in _deliveries(vault) if d.attempts}
    assert (302, None) in errors
    assert (None, "URLError:ConnectionRefusedError") in errors
    assert any(s is None and e is not None and "timeout" in e.lower() for s, e in errors)
    assert receiver.at("/elsewhere") == []


# -- consent ----------------------------------------------------------------------------


def test_a_marketing_email_webhook_never_hears_of_a_customer_without_email_consent(
    vault: Vault, receiver: Receiver, clock: FrozenClock
) -> None:
    """At fan-out, a customer without consent gets no delivery at all; a consent withdrawn
    between fan-out and send skips the delivery (state skipped, not_permitted)."""
    consenting, silent, withdrawing = _customers(vault, 3, tier="gold")
    grant_all_consents(vault, consenting, withdrawing)
    with vault.unit(CTX) as s:
        Privacy.of(vault).ledger.withdraw(s, withdrawing, "marketing_email")
    segment = _segment(vault)
    hook = _register(vault, receiver, "/email", [segment], EMAIL).webhook
    _register(vault, receiver, "/stats", [segment], ANALYST)
    _refresh(vault)
    assert vault.dispatcher.fan_out(vault.db) == 4  # 1 for /email, 3 for /stats
    assert [consenting] == [d.customer_id for d in _deliveries(vault) if d.webhook_id == hook.id]
    assert silent in {d.customer_id for d in _deliveries(vault)}  # /stats may see everyone

    # A second customer consents and enters; the consent is withdrawn before the send.
    with vault.unit(CTX) as s:
        Privacy.of(vault).ledger.grant(s, withdrawing, "marketing_email")
        vault.customers.update(s, withdrawing, CustomerPatch(tier="silver"))
    _refresh(vault)  # withdrawing leaves: a left event the email webhook may receive
    assert vault.dispatcher.fan_out(vault.db) == 2
    with vault.unit(CTX) as s:
        Privacy.of(vault).ledger.withdraw(s, withdrawing, "marketing_email")
    report = vault.dispatcher.deliver_due(vault.db)
    assert (report.delivered, report.skipped) == (5, 1)

    email = [r.message["customer_id"] for r in receiver.at("/email")]
    assert [str(consenting)] == email
    (skipped,) = [d for d in _deliveries(vault) if d.state == DeliveryState.SKIPPED.value]
    assert (withdrawing, "left", "not_permitted") == (
        skipped.customer_id, skipped.event, skipped.last_error,
    )  # fmt: skip
    assert len({r.message["customer_id"] for r in receiver.at("/stats")}) == 3


def test_only_subscribed_enabled_webhooks_registered_before_the_event_hear_it(
    vault: Vault, receiver: Receiver, clock: FrozenClock
) -> None:
    """A webhook of another segment, a disabled one and one registered after the event
    get nothing; disabling skips what was still pending."""
    _customers(vault, 1, tier="gold")
    gold = _segment(vault)
    other = _segment(vault, {"attribute": {"field": "tier", "op": "eq", "value": "iron"}})
    _register(vault, receiver, "/gold", [gold])
    _register(vault, receiver, "/other", [other])
    off = _register(vault, receiver, "/off", [gold])
    pending = _register(vault, receiver, "/pending", [gold])
    with vault.unit(ANALYST) as s:
        assert off.webhook.id == vault.webhooks.disable(s, off.webhook.id).id
    clock.advance(seconds=1)
    _refresh(vault)
    clock.advance(seconds=1)
    _register(vault, receiver, "/late", [gold])
    assert vault.dispatcher.fan_out(vault.db) == 2
    with vault.unit(ANALYST) as s:
        disabled = vault.webhooks.disable(s, pending.webhook.id)
        again = vault.webhooks.disable(s, pending.webhook.id)
    assert disabled.disabled_at == again.disabled_at == clock()
    report = vault.dispatcher.deliver_due(vault.db)
    assert (report.delivered, report.skipped) == (1, 0)
    assert {"/gold"} == {r.path for r in receiver.received}
    states = {d.last_error for d in _deliveries(vault) if d.state == DeliveryState.SKIPPED.value}
    assert {"webhook_disabled"} == states


# -- registration -----------------------------------------------------------------------


BAD_URLS = [
    "ftp://example.org/hook",
    "http://",
    "https:///path",
    "example.org/hook",
    "https://user:pw@example.org/hook",
    "https://example.org:99999/hook",
    "https://example.org/a b",
    "",
]


def test_a_bad_url_is_refused_without_echoing_it(vault: Vault) -> None:
    """Only http(s) URLs with a host and no credentials; the error names the field and
    the rule, never the URL."""
    segment = _segment(vault)
    for url in BAD_URLS:
        with pytest.raises(InvalidInput) as caught, vault.unit(ANALYST) as s:
            vault.webhooks.create(s, url=url, segment_ids=[segment], purpose="analytics")
        assert caught.value.field == "url"
        assert not url or url not in str(caught.value)


def test_production_requires_https(vault: Vault) -> None:
    """With Settings.production, an http URL is refused and an https one accepted."""
    segment = _segment(vault)
    service = WebhookService(vault.authz, vault.webhooks.secrets, vault.clock, production=True)
    with pytest.raises(InvalidInput, match="https"), vault.unit(ANALYST) as s:
        service.create(s, url="http://hooks.example.org/", segment_ids=[segment],
                       purpose="analytics")  # fmt: skip
    with vault.unit(ANALYST) as s:
        made = service.create(
            s, url="https://hooks.example.org/", segment_ids=[segment], purpose="analytics"
        )
    assert made.webhook.url == "https://hooks.example.org/"


def test_unknown_or_deleted_segments_and_empty_lists_are_clear_errors(vault: Vault) -> None:
    """An unknown segment id and a deleted segment are SegmentNotFound naming the id; no
    segment at all is an input error; nothing is stored."""
    unknown = uuid.uuid4()
    deleted = _segment(vault)
    with vault.unit(CTX) as s:
        vault.segments.delete(s, deleted)
    for ids in ([unknown], [deleted]):
        with pytest.raises(SegmentNotFound) as caught, vault.unit(ANALYST) as s:
            vault.webhooks.create(s, url="http://h.example/", segment_ids=ids,
                                  purpose="analytics")  # fmt: skip
        assert str(ids[0]) in str(caught.value)
    with pytest.raises(InvalidInput, match="segmentIds"), vault.unit(ANALYST) as s:
        vault.webhooks.create(s, url="http://h.example/", segment_ids=[], purpose="analytics")
    with vault.unit(CTX) as s:
        assert vault.webhooks.list(s) == []


def test_a_webhook_has_its_callers_purpose_and_needs_the_segments_grant(
    vault: Vault, receiver: Receiver
) -> None:
    """A marketing_email caller may not register an analytics webhook, a support agent
    none at all (both audited refusals); each caller lists and disables only webhooks of
    its own purpose; the operator sees them all; an unknown purpose is an input error."""
    segment = _segment(vault)
    email = _register(vault, receiver, "/email", [segment], EMAIL)
    sms = _register(vault, receiver, "/sms", [segment], SMS)
    for context, purpose in ((EMAIL, "analytics"), (SUPPORT, "support")):
        with pytest.raises(AccessDenied), vault.unit(context) as s:
            vault.webhooks.create(s, url="http://h.example/", segment_ids=[segment],
                                  purpose=purpose)  # fmt: skip
    with pytest.raises(InvalidInput, match="purpose"), vault.unit(CTX) as s:
        vault.webhooks.create(s, url="http://h.example/", segment_ids=[segment],
                              purpose="spam")  # fmt: skip
    with vault.unit(EMAIL) as s:
        assert [email.webhook.id] == [w.id for w in vault.webhooks.list(s)]
    with pytest.raises(AccessDenied), vault.unit(EMAIL) as s:
        vault.webhooks.disable(s, sms.webhook.id)
    with pytest.raises(WebhookNotFound), vault.unit(EMAIL) as s:
        vault.webhooks.disable(s, uuid.uuid4())
    with vault.unit(CTX) as s:
        listed = vault.webhooks.list(s)
    assert {email.webhook.id, sms.webhook.id} == {w.id for w in listed}
    assert {None} == {w.disabled_at for w in listed}
    with vault.db.transaction() as s:
        denied = s.scalar(
            select(AuditEntryRow.id).where(AuditEntryRow.action == AuditAction.ACCESS_DENIED.value)
        )
    assert denied is not None


def test_registration_returns_the_secret_once_and_audits_ids_only(
    vault: Vault, receiver: Receiver
) -> None:
    """create returns the webhook and a whsec_ secret (hidden from repr); the secret is
    re-derived identically; the audit entry names the webhook and its segments."""
    segment = _segment(vault)
    new = _register(vault, receiver, "/x", [segment])
    assert new.secret.startswith("whsec_")
    assert new.secret not in repr(new)
    assert new.secret == vault.webhooks.secrets.secret(new.webhook.id, 1)
    assert new.secret != vault.webhooks.secrets.secret(new.webhook.id, 2)
    assert (segment,) == new.webhook.segment_ids
    assert f"Webhook(id={new.webhook.id})" == repr(new.webhook)
    with vault.db.transaction() as s:
        (canonical,) = s.scalars(
            select(AuditEntryRow.canonical).where(
                AuditEntryRow.action == AuditAction.WEBHOOK_CHANGE.value
            )
        )
    detail = json.loads(canonical)["detail"]
    assert {"webhook": str(new.webhook.id), "op": "create", "segments": [str(segment)]} == detail


# -- what never leaves or stays ---------------------------------------------------------


def _pii() -> list[str]:
    return [value for person in PEOPLE for value in person]


def test_no_pii_in_bodies_logs_or_audit(
    vault: Vault, receiver: Receiver, clock: FrozenClock
) -> None:
    """Customers with names, e-mail addresses and phone numbers in four scripts enter a
    segment; a failing then succeeding receiver: no PII value appears in any body,
    header, log event or audit entry; the run's audit entry holds counts."""
    ids = []
    with vault.unit(CTX) as s:
        for first, last, email, phone in PEOPLE:
            data = CustomerInput(first_name=first, last_name=last, email=email, phone=phone,
                                 tier="gold")  # fmt: skip
            ids.append(vault.customers.create(s, data).id)
    _register(vault, receiver, "/pii", [_segment(vault)])
    receiver.replies["/pii"] = [500, 500]
    _refresh(vault)
    with structlog.testing.capture_logs() as logs:
        first_run = vault.dispatcher.run_once(vault.db)
        clock.advance(seconds=3600)
        second_run = vault.dispatcher.run_once(vault.db)
    assert (first_run.attempted, first_run.retrying, first_run.delivered) == (4, 2, 2)
    assert second_run.delivered == 2
    assert len(logs) >= 2  # the two failed attempts were logged
    with vault.db.transaction() as s:
        audit = [
            json.loads(c)
            for c in s.scalars(select(AuditEntryRow.canonical).order_by(AuditEntryRow.id))
        ]
    runs = [a["detail"] for a in audit if a["action"] == AuditAction.WEBHOOK_DELIVERY.value]
    assert [r["attempted"] for r in runs] == [4, 2]
    assert [r["fanned_out"] for r in runs] == [4, 0]
    texts = [r.body.decode() + json.dumps(r.headers) for r in receiver.received]
    texts += [json.dumps(event, default=str, ensure_ascii=False) for event in logs]
    texts += [json.dumps(entry, ensure_ascii=False) for entry in audit]
    for text in texts:
        for value in _pii():
            assert value not in text
    assert {str(i) for i in ids} == {r.message["customer_id"] for r in receiver.received}


def _scan(vault: Vault, needles: list[bytes]) -> list[str]:
    """Every table and column whose value holds one of ``needles``."""
    hits = []
    with vault.db.transaction() as s:
        for table in Base.metadata.sorted_tables:
            for row in s.execute(select(table)).mappings():
                for column, value in row.items():
                    raw = value if isinstance(value, bytes) else json.dumps(
                        value, default=str, ensure_ascii=False).encode()  # fmt: skip
                    if any(n in raw for n in needles):
                        hits.append(f"{table.name}.{column}")
    return hits


def test_the_secret_is_stored_nowhere_in_the_database(
    vault: Vault, receiver: Receiver, clock: FrozenClock
) -> None:
    """After registering and delivering, no table holds the secret (as text, without its
    prefix, or as its raw bytes), and neither does the SQLite file or its WAL."""
    import base64  # noqa: PLC0415

    _customers(vault, 1, tier="gold")
    new = _register(vault, receiver, "/s", [_segment(vault)])
    _refresh(vault)
    assert vault.dispatcher.run_once(vault.db).delivered == 1
    body = new.secret.removeprefix("whsec_")
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    needles = [new.secret.encode(), body.encode(), raw, raw.hex().encode()]
    assert _scan(vault, needles) == []
    assert _scan(vault, [str(new.webhook.id).encode()])  # the scan does see the tables
    path = vault.db.engine.url.database
    if vault.db.dialect == "sqlite" and path:
        from pathlib import Path  # noqa: PLC0415

        for file in (Path(path), Path(path + "-wal")):
            if file.exists():
                content = file.read_bytes()
                assert not any(n in content for n in needles)


def test_two_dispatchers_running_at_once_never_send_the_same_delivery(
    vault: Vault, receiver: Receiver, clock: FrozenClock
) -> None:
    """Two runs in parallel (two server processes) split the work: outbox rows are
    claimed while fanned out and deliveries while sent, so each id arrives exactly once."""
    _customers(vault, 30, tier="gold")
    _register(vault, receiver, "/busy", [_segment(vault)])
    _refresh(vault)
    dispatchers = [_dispatcher(vault, clock), _dispatcher(vault, clock)]
    reports: list[DeliveryReport] = []

    def run(dispatcher: WebhookDispatcher) -> None:
        reports.append(dispatcher.run_once(vault.db))

    threads = [threading.Thread(target=run, args=(d,)) for d in dispatchers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    keys = [r.headers["idempotency-key"] for r in receiver.at("/busy")]
    assert len(keys) == len(set(keys)) == 30
    assert sum(r.fanned_out for r in reports) == 30
    assert sum(r.delivered for r in reports) == 30


def test_events_no_webhook_follows_are_consumed_without_an_audit_entry(vault: Vault) -> None:
    """With no webhook registered, a run marks the outbox rows handed over, creates no
    delivery and writes no webhook.delivery entry (nothing was disclosed or decided)."""
    from vault.storage.models import SegmentOutboxRow  # noqa: PLC0415

    _customers(vault, 2, tier="gold")
    _segment(vault)
    _refresh(vault)
    assert vault.dispatcher.run_once(vault.db) == DeliveryReport(events=2)
    with vault.db.transaction() as s:
        handed = list(s.scalars(select(SegmentOutboxRow.delivered_at)))
        runs = s.scalar(
            select(AuditEntryRow.id).where(
                AuditEntryRow.action == AuditAction.WEBHOOK_DELIVERY.value
            )
        )
    assert handed == [vault.clock(), vault.clock()]
    assert runs is None
    assert _deliveries(vault) == []
