"""Recipients in the audit trail (GDPR Art. 15(1)(c)), on SQLite and PostgreSQL: each
delivered webhook event is one ``webhook.delivered`` entry about its customer, written
with the delivered mark; failed attempts write none; the entries carry ids, never the
URL; the customer's access history and access bundle name the recipient."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from audit.entries import AuditAction
from consent import Privacy
from consent.dsr.export import Exporter
from tests.conftest import CTX, FrozenClock
from tests.vault.test_webhooks import (
    PEOPLE,
    Receiver,
    _customers,
    _deliveries,
    _dispatcher,
    _refresh,
    _register,
    _segment,
    receiver,
)
from vault.audit_trail.queries import Recipient
from vault.authorization.context import AccessContext, Actor
from vault.customers import CustomerInput
from vault.runtime import Vault
from vault.segments.webhooks import DeliveryState
from vault.storage.models import AuditEntryRow
from vault.types import DsrType

__all__ = ["receiver"]  # the fixture, shared with tests/vault/test_webhooks.py

SECRET_PATH = "/hook?token=s3cr3t-in-the-query"


def _entries(vault: Vault, action: AuditAction) -> list[dict[str, Any]]:
    with vault.db.transaction() as s:
        rows = s.scalars(
            select(AuditEntryRow.canonical)
            .where(AuditEntryRow.action == action.value)
            .order_by(AuditEntryRow.id)
        ).all()
    return [json.loads(raw) for raw in rows]


def _subject(customer_id: uuid.UUID) -> AccessContext:
    return AccessContext(Actor("subject-1", "data_subject", customer_id=customer_id), "self")


def test_each_delivered_event_is_one_entry_about_its_customer(
    vault: Vault, receiver: Receiver, clock: FrozenClock
) -> None:
    """Three customers enter a segment a webhook follows: three webhook.delivered entries,
    one per customer, actor webhook:<id>, role system, the webhook's purpose, the ids of
    the webhook, delivery and segment, the event type, attempt and status; the run's
    summary entry stays, without a customer, and shares the entries' request id."""
    ids = _customers(vault, 3, tier="gold")
    segment = _segment(vault)
    new = _register(vault, receiver, "/hook", [segment])
    _refresh(vault)
    assert vault.dispatcher.run_once(vault.db).delivered == 3

    entries = _entries(vault, AuditAction.WEBHOOK_DELIVERED)
    deliveries = {d.customer_id: d.id for d in _deliveries(vault)}
    assert sorted(str(i) for i in ids) == sorted(e["customer"] for e in entries)
    for entry in entries:
        customer = uuid.UUID(entry["customer"])
        expected = {
            "webhook": str(new.webhook.id),
            "delivery": str(deliveries[customer]),
            "segment": str(segment),
            "event": "segment.entered",
            "attempt": 1,
            "status": 200,
        }
        assert expected == entry["detail"]
        assert (f"webhook:{new.webhook.id}", "system", "analytics", "success") == (
            entry["actor"], entry["role"], entry["purpose"], entry["outcome"],
        )  # fmt: skip
        assert entry["fields"] == {"segments": "disclosed"}
    (summary,) = _entries(vault, AuditAction.WEBHOOK_DELIVERY)
    assert (
        summary["customer"], summary["purpose"], summary["detail"]["delivered"],
    ) == (None, "administration", 3)  # fmt: skip
    assert {summary["request"]} == {e["request"] for e in entries}


def test_failed_attempts_write_no_delivered_entry(
    vault: Vault, receiver: Receiver, clock: FrozenClock
) -> None:
    """A receiver that answers 500 until the delivery is given up: no webhook.delivered
    entry; another that fails once then accepts: exactly one, for the accepting attempt."""
    _customers(vault, 1, tier="gold")
    segment = _segment(vault)
    _register(vault, receiver, "/down", [segment])
    flaky = _register(vault, receiver, "/flaky", [segment])
    receiver.replies["/down"] = [500] * 10
    receiver.replies["/flaky"] = [503]
    dispatcher = _dispatcher(vault, clock, max_attempts=2, base_delay=1.0, max_delay=1.0)
    _refresh(vault)
    first = dispatcher.run_once(vault.db)
    assert (first.retrying, _entries(vault, AuditAction.WEBHOOK_DELIVERED)) == (2, [])
    clock.advance(seconds=1)
    second = dispatcher.run_once(vault.db)
    assert (second.delivered, second.failed) == (1, 1)
    entries = _entries(vault, AuditAction.WEBHOOK_DELIVERED)
    assert [(str(flaky.webhook.id), 2, 200)] == [
        (e["detail"]["webhook"], e["detail"]["attempt"], e["detail"]["status"]) for e in entries
    ]


def test_no_delivery_is_marked_delivered_without_its_entry(
    vault: Vault, receiver: Receiver, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit append fails in the transaction that settles a batch: the run fails, the
    delivery stays pending with no entry; once its lease has passed the retry sends the
    same Idempotency-Key again and writes the entry then."""
    _customers(vault, 1, tier="gold")
    _register(vault, receiver, "/hook", [_segment(vault)])
    _refresh(vault)
    assert vault.dispatcher.fan_out(vault.db) == 1
    audit = vault.audit
    original = audit.write

    def refuse(*_args: Any) -> None:
        raise RuntimeError("audit store down")

    monkeypatch.setattr(audit, "write", refuse)
    with pytest.raises(RuntimeError):
        vault.dispatcher.deliver_due(vault.db)
    monkeypatch.setattr(audit, "write", original)
    (row,) = _deliveries(vault)
    assert (DeliveryState.PENDING.value, 0) == (row.state, row.attempts)
    assert _entries(vault, AuditAction.WEBHOOK_DELIVERED) == []
    clock.advance(minutes=5)
    assert vault.dispatcher.run_once(vault.db).delivered == 1
    keys = {r.headers["idempotency-key"] for r in receiver.at("/hook")}
    (entry,) = _entries(vault, AuditAction.WEBHOOK_DELIVERED)
    assert ({str(row.id)}, str(row.id)) == (keys, entry["detail"]["delivery"])


def test_entries_hold_no_url_and_no_pii(
    vault: Vault, receiver: Receiver, clock: FrozenClock
) -> None:
    """A webhook whose URL carries a token in its query, customers named in four scripts:
    no delivered entry holds the URL, its token, its host or any PII value."""
    with vault.unit(CTX) as s:
        for first, last, email, phone in PEOPLE:
            data = CustomerInput(first_name=first, last_name=last, email=email, phone=phone,
                                 tier="gold")  # fmt: skip
            vault.customers.create(s, data)
    _register(vault, receiver, SECRET_PATH, [_segment(vault)])
    _refresh(vault)
    assert vault.dispatcher.run_once(vault.db).delivered == len(PEOPLE)
    entries = _entries(vault, AuditAction.WEBHOOK_DELIVERED)
    assert len(entries) == len(PEOPLE)
    text = json.dumps(entries, ensure_ascii=False)
    needles = [receiver.url(SECRET_PATH), "s3cr3t-in-the-query", "127.0.0.1", "http"]
    needles += [value for person in PEOPLE for value in person]
    assert [n for n in needles if n in text] == []


def test_the_access_history_and_the_bundle_name_the_recipient(
    vault: Vault, receiver: Receiver, clock: FrozenClock
) -> None:
    """The customer's access history lists the delivery with its Recipient (webhook id,
    purpose, the URL's host and nothing else of it); the access bundle carries it on the
    access history row and in its recipients section, one row per webhook."""
    (cid,) = _customers(vault, 1, tier="gold")
    new = _register(vault, receiver, SECRET_PATH, [_segment(vault)])
    _refresh(vault)
    vault.dispatcher.run_once(vault.db)
    clock.advance(minutes=1)
    with vault.unit(_subject(cid)) as s:
        page = vault.trail.access_history(s, cid)
    delivered = [r for r in page.items if r.action == AuditAction.WEBHOOK_DELIVERED.value]
    expected = Recipient(new.webhook.id, "analytics", "127.0.0.1")
    assert [expected] == [r.recipient for r in delivered]

    exporter = Exporter(vault, Privacy.of(vault).ledger)
    with vault.unit(_subject(cid)) as s:
        bundle = exporter.build(s, cid, request_id=uuid.uuid4(), kind=DsrType.ACCESS, requests=[])
    shown = {"webhook_id": str(new.webhook.id), "purpose": "analytics", "host": "127.0.0.1"}
    rows = [a for a in bundle.access_history if a["action"] == "webhook.delivered"]
    assert [shown] == [a["recipient"] for a in rows]
    (recipient,) = bundle.recipients
    assert {**shown, "events": 1} == {k: recipient[k] for k in (*shown, "events")}
    assert recipient["first_at"] == recipient["last_at"] == rows[0]["time"]
    assert "s3cr3t" not in bundle.to_json().decode()
    assert bundle.counts()["recipients"] == 1
