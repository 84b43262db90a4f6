"""The consent ledger: append-only events, current state, signed receipts, who may change it."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from consent import ConsentChange, Privacy
from consent.receipts import ReceiptError, verify_receipt
from policies import AccessDenied
from tests.conftest import CTX, FrozenClock
from vault.authorization.context import AccessContext, Actor
from vault.crypto.signing import ed25519_verify
from vault.customers import CustomerInput
from vault.errors import InvalidInput
from vault.runtime import Vault
from vault.storage.models import AuditEntryRow, ConsentEventRow, ConsentStateRow
from vault.types import ConsentState

USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0 unique-agent-4711"
ADDRESS = "203.0.113.77"


def _customer(vault: Vault, name: str = "Noor") -> uuid.UUID:
    with vault.unit(CTX) as s:
        return vault.customers.create(s, CustomerInput(first_name=name)).id


def _subject(customer_id: uuid.UUID) -> AccessContext:
    return AccessContext(Actor("subject-1", "data_subject", customer_id), "self")


def test_grant_then_withdraw_leaves_history_and_state(vault: Vault, clock: FrozenClock) -> None:
    """Each change is one event; the current state follows the latest; history keeps all."""
    ledger = Privacy.of(vault).ledger
    cid = _customer(vault)
    with vault.unit(_subject(cid)) as s:
        ledger.record(
            s,
            cid,
            ConsentChange(
                "marketing_email", "granted", source_channel="web", notice_version="2026-11",
                method="checkbox", user_agent=USER_AGENT, client_address=ADDRESS,
            ),
        )  # fmt: skip
    clock.advance(days=3)
    with vault.unit(_subject(cid)) as s:
        ledger.withdraw(s, cid, "marketing_email")
    with vault.unit(_subject(cid)) as s:
        history = ledger.history(s, cid)
        status = {st.purpose.value: st for st in ledger.status(s, cid)}
    assert [(h.purpose.value, h.state.value) for h in history] == [
        ("marketing_email", "granted"),
        ("marketing_email", "withdrawn"),
    ]
    assert history[0].notice_version == "2026-11"
    assert history[1].occurred_at - history[0].occurred_at == timedelta(days=3)
    assert status["marketing_email"].state is ConsentState.WITHDRAWN
    assert status["marketing_email"].effective is False
    assert status["marketing_sms"].state is None
    assert set(status) == {"marketing_email", "marketing_sms", "personalization"}


def test_receipts_are_signed_kantara_records_without_pii(vault: Vault) -> None:
    """A receipt verifies offline with the vault's public key, carries the Kantara fields,
    names the customer by pseudonymous id only, and any edit breaks its signature."""
    ledger = Privacy.of(vault).ledger
    cid = _customer(vault, "Somchai")
    with vault.unit(CTX) as s:
        record = ledger.record(
            s, cid, ConsentChange("marketing_sms", "granted", user_agent=USER_AGENT)
        )
    with vault.unit(CTX) as s:
        stored = ledger.receipt(s, record.id)
    assert stored == record.receipt
    key = stored["signature"]["key"]
    assert key == vault.audit.public_vkey
    body = verify_receipt(stored, ed25519_verify, trusted_key=key)
    expected_keys = {
        "version", "jurisdiction", "consentTimestamp", "collectionMethod", "consentReceiptID",
        "language", "piiPrincipalId", "piiControllers", "policyUrl", "services", "sensitive",
        "spiCat",
    }  # fmt: skip
    assert expected_keys <= set(body)
    assert (body["piiPrincipalId"], body["consentReceiptID"]) == (str(cid), str(record.id))
    assert body["services"][0]["purposes"][0]["purposeCategory"] == ["marketing_sms"]
    text = json.dumps(stored, ensure_ascii=False)
    assert "Somchai" not in text
    assert USER_AGENT not in text
    forged = json.loads(json.dumps(stored))
    forged["receipt"]["state"] = "withdrawn"
    with pytest.raises(ReceiptError):
        verify_receipt(forged, ed25519_verify)


def test_evidence_is_kept_as_keyed_pseudonyms(vault: Vault) -> None:
    """The user agent and client address are stored as pseudonyms, never as given, and
    the same evidence gives the same pseudonym (so it can be matched later)."""
    ledger = Privacy.of(vault).ledger
    cid = _customer(vault)
    change = ConsentChange(
        "personalization", "granted", user_agent=USER_AGENT, client_address=ADDRESS
    )
    with vault.unit(CTX) as s:
        ledger.record(s, cid, change)
        ledger.record(s, cid, change)
    with vault.db.transaction() as s:
        rows = s.scalars(select(ConsentEventRow)).all()
    assert len(rows) == 2
    for row in rows:
        values = [str(getattr(row, c.key)) for c in ConsentEventRow.__table__.columns]
        assert not any(USER_AGENT in v or ADDRESS in v for v in values)
    assert rows[0].evidence_user_agent == rows[1].evidence_user_agent is not None
    assert rows[0].evidence_address == rows[1].evidence_address is not None


def test_bad_changes_are_refused_with_the_field_named(vault: Vault, clock: FrozenClock) -> None:
    """Only consent-based purposes take consents; words, notices and expiry are checked;
    nothing is written for a refused change."""
    ledger = Privacy.of(vault).ledger
    cid = _customer(vault)
    cases = [
        (ConsentChange("support", "granted"), "purpose"),
        (ConsentChange("telepathy", "granted"), "purpose"),
        (ConsentChange("marketing_email", "maybe"), "state"),
        (ConsentChange("marketing_email", "granted", source_channel="fax"), "sourceChannel"),
        (ConsentChange("marketing_email", "granted", method="telepathy"), "method"),
        (ConsentChange("marketing_email", "granted", notice_version=" "), "noticeVersion"),
        (
            ConsentChange("marketing_email", "granted", expires_at=clock.now - timedelta(1)),
            "expiresAt",
        ),
        (
            ConsentChange("marketing_email", "withdrawn", expires_at=clock.now + timedelta(9)),
            "expiresAt",
        ),
    ]
    fields = []
    for change, _field in cases:
        with pytest.raises(InvalidInput) as caught, vault.unit(CTX) as s:
            ledger.record(s, cid, change)
        fields.append(caught.value.field)
    assert fields == [f for _c, f in cases]
    with vault.db.transaction() as s:
        assert s.scalars(select(ConsentEventRow)).all() == []
        assert s.scalars(select(ConsentStateRow)).all() == []


def test_who_may_record_and_read_consents(vault: Vault) -> None:
    """A data subject changes its own consents only; marketing can neither change nor read
    them; support and compliance read them; every refusal raises."""
    ledger = Privacy.of(vault).ledger
    mine, other = _customer(vault, "A"), _customer(vault, "B")
    with vault.unit(_subject(mine)) as s:
        ledger.grant(s, mine, "marketing_email")
    with pytest.raises(AccessDenied), vault.unit(_subject(mine)) as s:
        ledger.grant(s, other, "marketing_email")
    marketing = AccessContext(Actor("mkt-1", "marketing"), "marketing_email")
    with pytest.raises(AccessDenied), vault.unit(marketing) as s:
        ledger.grant(s, mine, "marketing_email")
    with pytest.raises(AccessDenied), vault.unit(marketing) as s:
        ledger.status(s, mine)
    for role, purpose in (("support_agent", "support"), ("compliance_officer", "compliance")):
        with vault.unit(AccessContext(Actor("x-1", role), purpose)) as s:
            assert [h.state.value for h in ledger.history(s, mine)] == ["granted"]


def test_consent_changes_are_audited_without_pii(vault: Vault) -> None:
    """Each change writes a consent.change entry naming purpose, state and event id."""
    ledger = Privacy.of(vault).ledger
    cid = _customer(vault, "Wang")
    with vault.unit(_subject(cid)) as s:
        record = ledger.grant(s, cid, "marketing_email")
    with vault.db.transaction() as s:
        rows = s.scalars(
            select(AuditEntryRow.canonical).where(AuditEntryRow.action == "consent.change")
        ).all()
    entries = [json.loads(r) for r in rows]
    assert len(entries) == 1
    assert entries[0]["customer"] == str(cid)
    assert entries[0]["detail"] == {
        "event": str(record.id),
        "purpose": "marketing_email",
        "state": "granted",
    }
    assert "Wang" not in rows[0].decode()


def test_changes_in_the_same_instant_keep_their_order(vault: Vault) -> None:
    """Grant, withdraw, grant within one unit of work (one clock reading): the history
    lists them in the order they were made and the state is the last one."""
    ledger = Privacy.of(vault).ledger
    cid = _customer(vault)
    with vault.unit(CTX) as s:
        for _ in range(5):
            ledger.grant(s, cid, "marketing_sms")
            ledger.withdraw(s, cid, "marketing_sms")
        ledger.grant(s, cid, "marketing_sms")
    with vault.unit(CTX) as s:
        states = [h.state.value for h in ledger.history(s, cid)]
        current = {st.purpose.value: st.state for st in ledger.status(s, cid)}
    assert states == ["granted", "withdrawn"] * 5 + ["granted"]
    assert current["marketing_sms"] is ConsentState.GRANTED
