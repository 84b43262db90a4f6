"""The data subject request desk: due dates, verification, extension, rejection, listing,
and each request type carried out, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from audit.verify import verify_lines
from consent import Privacy
from consent.dsr.desk import (
    DsrDesk,
    DsrInput,
    FiledRequest,
    RequestStateError,
    VerificationFailed,
    add_months,
)
from consent.receipts import verify_receipt
from policies import AccessDenied
from tests.conftest import CTX, FrozenClock, grant_all_consents
from vault.audit_trail.export import export_audit
from vault.audit_trail.queries import AuditRecord
from vault.authorization.context import AccessContext, Actor
from vault.crypto.signing import ed25519_verify
from vault.customers import CustomerInput, CustomerPatch, ExternalId
from vault.customers.addresses import PostalAddress
from vault.errors import (
    InvalidInput,
    LegalHoldActive,
    ObjectionInForce,
    ProcessingRestricted,
)
from vault.interactions import InteractionInput
from vault.runtime import Vault
from vault.storage.models import AuditEntryRow, DsrRequestRow, InteractionRow
from vault.types import CustomerStatus, DsrStatus

OFFICER = AccessContext(Actor("officer-1", "compliance_officer"), "compliance")
SUPPORT = AccessContext(Actor("agent-1", "support_agent"), "support")
PII = {
    "email": "dsr.canary@example.com",
    "phone": "+33612345678",
    "first_name": "\u067e\u0631\u0648\u06cc\u0646",  # Parvin, in Persian
    "last_name": "\u0e2a\u0e21\u0e0a\u0e32\u0e22",  # Somchai, in Thai
    "address": "\u5317\u4eac\u5e02 1 \u53f7",  # Beijing, in Chinese
    "birth_date": "1984-02-29",
}


def _subject(customer_id: uuid.UUID) -> AccessContext:
    return AccessContext(Actor("subject-1", "data_subject", customer_id), "self")


def _desk(vault: Vault) -> DsrDesk:
    return Privacy.of(vault).desk


def _customer(vault: Vault, **pii: str) -> uuid.UUID:
    values = {**PII, **pii}
    with vault.unit(CTX) as s:
        return vault.customers.create(
            s,
            CustomerInput(
                **values,
                locale="fa-IR",
                tier="gold",
                tags=["vip", "newsletter"],
                attributes={
                    "shoe_size": 42,
                    "favourite_colour": "\u0e2a\u0e35\u0e1f\u0e49\u0e32",
                    "nickname": "\u0634\u06cc\u0631\u06cc\u0646",  # PII: sealed at rest
                },
                external_ids=[ExternalId("shop", f"s-{uuid.uuid4().hex[:8]}")],
            ),
        ).id


def _interactions(vault: Vault, customer_id: uuid.UUID, n: int) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    items = [
        InteractionInput(
            channel="web" if i % 2 else "email",
            type="purchase" if i % 10 == 0 else "page_view",
            occurred_at=start + timedelta(hours=i),
            customer_id=customer_id,
            amount=Decimal("19.90") if i % 10 == 0 else None,
            currency="EUR" if i % 10 == 0 else None,
            external_id=f"ix-{customer_id.hex[:8]}-{i}",
            payload={"note": f"\u0633\u0644\u0627\u0645 {i}"} if i % 3 == 0 else None,
        )
        for i in range(n)
    ]
    with vault.unit(CTX) as s:
        vault.interactions.record_many(s, items)


def _file(
    vault: Vault,
    customer_id: uuid.UUID,
    kind: str,
    details: dict[str, Any] | None = None,
    context: AccessContext | None = None,
) -> FiledRequest:
    with vault.unit(context or _subject(customer_id)) as s:
        return _desk(vault).create(s, DsrInput(kind, customer_id, details))


def _verified(
    vault: Vault, customer_id: uuid.UUID, kind: str, details: dict[str, Any] | None = None
) -> uuid.UUID:
    """File a request as the data subject and verify it with its token."""
    filed = _file(vault, customer_id, kind, details)
    with vault.unit(_subject(customer_id)) as s:
        _desk(vault).verify(s, filed.request.id, filed.verification_token)
    return filed.request.id


def _audit(vault: Vault, action: str | None = None) -> list[dict[str, Any]]:
    stmt = select(AuditEntryRow.canonical).order_by(AuditEntryRow.id)
    if action is not None:
        stmt = stmt.where(AuditEntryRow.action == action)
    with vault.db.transaction() as s:
        return [json.loads(raw) for raw in s.scalars(stmt)]


def _no_pii(blob: bytes | str, values: dict[str, str] = PII) -> None:
    text = blob.decode("utf-8") if isinstance(blob, bytes) else blob
    assert [v for v in values.values() if v in text] == []


# -- due dates ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "months", "due"),
    [
        (datetime(2027, 1, 31, 9, 30, tzinfo=UTC), 1, datetime(2027, 2, 28, 9, 30, tzinfo=UTC)),
        (datetime(2028, 1, 31, 9, 30, tzinfo=UTC), 1, datetime(2028, 2, 29, 9, 30, tzinfo=UTC)),
        (datetime(2026, 3, 31, tzinfo=UTC), 1, datetime(2026, 4, 30, tzinfo=UTC)),
        (datetime(2026, 12, 15, tzinfo=UTC), 1, datetime(2027, 1, 15, tzinfo=UTC)),
        (datetime(2026, 11, 30, tzinfo=UTC), 3, datetime(2027, 2, 28, tzinfo=UTC)),
        (datetime(2026, 1, 31, tzinfo=UTC), 3, datetime(2026, 4, 30, tzinfo=UTC)),
    ],
)
def test_add_months_keeps_the_day_or_clamps_it_to_the_month_end(
    start: datetime, months: int, due: datetime
) -> None:
    """One calendar month later is the same day and time; a day the month lacks becomes
    its last day (31 January -> 28 February, or 29 in a leap year)."""
    assert due == add_months(start, months)


def test_a_request_is_due_one_calendar_month_after_receipt(
    vault: Vault, clock: FrozenClock
) -> None:
    """Filed on 31 January it is due on 28 February at the same time, status received,
    with a history of one step."""
    clock.now = datetime(2027, 1, 31, 10, 15, tzinfo=UTC)
    cid = _customer(vault)
    filed = _file(vault, cid, "access")
    view = filed.request
    assert (view.status, view.received_at, view.due_at) == (
        DsrStatus.RECEIVED,
        clock.now,
        datetime(2027, 2, 28, 10, 15, tzinfo=UTC),
    )
    assert [(e.status, e.actor) for e in view.history] == [(DsrStatus.RECEIVED, "subject-1")]
    assert view.overdue is False
    assert view.requested_by == "subject-1"


def test_only_the_token_digest_is_stored_and_no_repr_shows_the_token(vault: Vault) -> None:
    """The token is random, shown once; the row keeps its SHA-256 digest; reprs show ids."""
    cid = _customer(vault)
    filed = _file(vault, cid, "erasure")
    other = _file(vault, cid, "erasure")
    token = filed.verification_token
    assert len(token) >= 32
    assert token != other.verification_token
    with vault.db.transaction() as s:
        row = s.get(DsrRequestRow, filed.request.id)
        assert row is not None
        stored = row.verification_hash
    assert hashlib.sha256(token.encode()).hexdigest() == stored
    assert token not in repr(filed)
    assert str(filed.request.id) in repr(filed)


# -- verification ---------------------------------------------------------------------


def test_a_wrong_token_is_refused_and_counted_although_the_unit_rolls_back(
    vault: Vault,
) -> None:
    """A wrong token raises VERIFICATION_FAILED, the refusal is audited, and the attempt
    counts even though the refused unit rolled back; the right one then verifies, once."""
    desk = _desk(vault)
    cid = _customer(vault)
    filed = _file(vault, cid, "access")
    rid = filed.request.id
    with pytest.raises(VerificationFailed) as refused, vault.unit(_subject(cid)) as s:
        desk.verify(s, rid, "not-the-token")
    assert refused.value.code == "VERIFICATION_FAILED"
    with vault.unit(_subject(cid)) as s:
        after_one = desk.get(s, rid)
    assert (after_one.status, after_one.verification_attempts_left) == (DsrStatus.RECEIVED, 4)
    assert after_one.history[-1].note == "wrong verification token (1 of 5)"
    denied = _audit(vault, "access.denied")
    assert [(d["customer"], d["outcome"]) for d in denied] == [(str(cid), "denied")]
    with vault.unit(_subject(cid)) as s:
        verified = desk.verify(s, rid, filed.verification_token)
    assert verified.status is DsrStatus.VERIFIED
    assert [e.status for e in verified.history] == [
        DsrStatus.RECEIVED,
        DsrStatus.RECEIVED,
        DsrStatus.VERIFIED,
    ]
    with pytest.raises(RequestStateError), vault.unit(_subject(cid)) as s:
        desk.verify(s, rid, filed.verification_token)


def test_five_wrong_tokens_lock_the_request(vault: Vault) -> None:
    """After five wrong tokens even the right one is refused: file a new request."""
    desk = _desk(vault)
    cid = _customer(vault)
    filed = _file(vault, cid, "erasure")
    for attempt in range(5):
        with pytest.raises(VerificationFailed), vault.unit(_subject(cid)) as s:
            desk.verify(s, filed.request.id, f"guess-{attempt}")
    with pytest.raises(VerificationFailed, match="too many"), vault.unit(_subject(cid)) as s:
        desk.verify(s, filed.request.id, filed.verification_token)
    with vault.unit(OFFICER) as s:
        view = desk.get(s, filed.request.id)
    assert (view.status, view.verification_attempts_left) == (DsrStatus.RECEIVED, 0)


def test_the_token_expires_after_24_hours(vault: Vault, clock: FrozenClock) -> None:
    """A token is good for 24 hours; a minute before it works, at 24 h it is expired."""
    desk = _desk(vault)
    cid = _customer(vault)
    late = _file(vault, cid, "access")
    timely = _file(vault, cid, "access")
    clock.advance(hours=23, minutes=59)
    with vault.unit(_subject(cid)) as s:
        assert desk.verify(s, timely.request.id, timely.verification_token).status == "verified"
    clock.advance(minutes=1)
    with pytest.raises(VerificationFailed, match="expired"), vault.unit(_subject(cid)) as s:
        desk.verify(s, late.request.id, late.verification_token)


# -- extension, rejection, listing ----------------------------------------------------


def test_a_request_is_extended_once_by_at_most_two_months_with_a_reason(
    vault: Vault, clock: FrozenClock
) -> None:
    """Extending by two months puts the due date three months after receipt; the reason
    is recorded; a second extension, three months or no reason are refused."""
    clock.now = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    desk = _desk(vault)
    cid = _customer(vault)
    rid = _file(vault, cid, "portability").request.id
    for months, reason in ((3, "complex"), (0, "complex"), (1, "   ")):
        with pytest.raises(InvalidInput), vault.unit(OFFICER) as s:
            desk.extend(s, rid, months=months, reason=reason)
    with pytest.raises(AccessDenied), vault.unit(_subject(cid)) as s:
        desk.extend(s, rid, months=1, reason="I want more time")
    with vault.unit(OFFICER) as s:
        view = desk.extend(s, rid, months=2, reason="many systems to search")
    assert view.due_at == datetime(2027, 2, 28, 8, 0, tzinfo=UTC)
    assert (view.extended_at, view.extension_reason) == (clock.now, "many systems to search")
    assert view.history[-1].note == "extended by 2 month(s): many systems to search"
    with pytest.raises(RequestStateError, match="once"), vault.unit(OFFICER) as s:
        desk.extend(s, rid, months=1, reason="again")


def test_a_rejected_request_is_closed_with_its_reason(vault: Vault) -> None:
    """A compliance officer rejects an open request with a reason; it cannot be verified
    or processed afterwards, and a data subject cannot reject."""
    desk = _desk(vault)
    cid = _customer(vault)
    filed = _file(vault, cid, "erasure")
    rid = filed.request.id
    with pytest.raises(AccessDenied), vault.unit(_subject(cid)) as s:
        desk.reject(s, rid, reason="changed my mind")
    with vault.unit(OFFICER) as s:
        view = desk.reject(s, rid, reason="manifestly unfounded (Art. 12(5))")
    assert (view.status, view.rejection_reason) == (
        DsrStatus.REJECTED,
        "manifestly unfounded (Art. 12(5))",
    )
    assert view.completed_at is not None
    with pytest.raises(RequestStateError), vault.unit(_subject(cid)) as s:
        desk.verify(s, rid, filed.verification_token)
    with pytest.raises(RequestStateError), vault.unit(OFFICER) as s:
        desk.process(s, rid)


def test_only_a_verified_request_is_processed(vault: Vault) -> None:
    """Processing a received (unverified) request is refused and changes nothing."""
    desk = _desk(vault)
    cid = _customer(vault)
    rid = _file(vault, cid, "erasure").request.id
    with pytest.raises(RequestStateError, match="verified"), vault.unit(OFFICER) as s:
        desk.process(s, rid)
    with vault.unit(CTX) as s:
        assert vault.customers.get(s, cid).status is CustomerStatus.ACTIVE
        assert desk.get(s, rid).status is DsrStatus.RECEIVED


def test_compliance_lists_overdue_requests_by_due_date(vault: Vault, clock: FrozenClock) -> None:
    """Open requests past their due date are overdue; closed ones never are; the list is
    ordered by due date, pages by cursor, and filters by status."""
    desk = _desk(vault)
    cid = _customer(vault)
    first = _file(vault, cid, "access").request.id
    clock.advance(days=10)
    rejected = _file(vault, cid, "access").request.id
    with vault.unit(OFFICER) as s:
        desk.reject(s, rejected, reason="duplicate")
    clock.advance(days=10)
    second = _file(vault, cid, "restriction").request.id
    clock.advance(days=15)  # first is now 35 days old, second 15 days
    with vault.unit(OFFICER) as s:
        overdue = desk.list(s, overdue=True)
        current = desk.list(s, overdue=False)
        received = desk.list(s, status="received")
        page_one = desk.list(s, first=1)
        page_two = desk.list(s, first=1, after=page_one.end_cursor)
        shown = desk.get(s, first)
    assert [r.id for r in overdue.items] == [first]
    assert [r.id for r in current.items] == [rejected, second]
    assert [r.id for r in received.items] == [first, second]
    assert ([r.id for r in page_one.items], page_one.has_next_page) == ([first], True)
    assert [r.id for r in page_two.items] == [rejected]
    assert shown.overdue is True
    with pytest.raises(InvalidInput), vault.unit(OFFICER) as s:
        desk.list(s, status="lost")


def test_a_data_subject_sees_and_files_only_its_own_requests(vault: Vault) -> None:
    """A data subject lists only its own requests and is refused (audited) another's;
    a support agent may not read the queue at all."""
    desk = _desk(vault)
    mine, theirs = (
        _customer(vault),
        _customer(vault, email="other@example.com", phone="+33612345699"),
    )
    own = _file(vault, mine, "access").request.id
    other = _file(vault, theirs, "erasure").request.id
    with vault.unit(_subject(mine)) as s:
        listed = desk.list(s)
    assert [r.id for r in listed.items] == [own]
    with pytest.raises(AccessDenied), vault.unit(_subject(mine)) as s:
        desk.get(s, other)
    with pytest.raises(AccessDenied), vault.unit(_subject(mine)) as s:
        desk.create(s, DsrInput("erasure", theirs))
    with pytest.raises(AccessDenied), vault.unit(SUPPORT) as s:
        desk.list(s)
    with vault.unit(OFFICER) as s:
        assert {r.id for r in desk.list(s).items} == {own, other}
    assert len(_audit(vault, "access.denied")) == 3


def test_details_are_checked_when_filed(vault: Vault) -> None:
    """A rectification needs known fields with valid values, an objection a known scope;
    other types take no details. Errors name fields and rules, never the value."""
    cid = _customer(vault)
    bad: list[tuple[str, dict[str, Any] | None]] = [
        ("rectification", None),
        ("rectification", {"email": "not-an-address-4711"}),
        ("rectification", {"password": "hunter2-4711"}),
        ("rectification", {"first_name": "A", "firstName": "B"}),
        ("rectification", {"tags": None}),
        ("rectification", {"address": {"planet": "Mars-4711"}}),
        ("rectification", {"postalAddress": {"city": "Lyon", "country": "France-4711"}}),
        ("objection", {"scope": "support"}),
        ("objection", {"scope": "direct_marketing", "more": 1}),
        ("access", {"anything": 1}),
        ("deletion", None),
    ]
    for kind, details in bad:
        with pytest.raises(InvalidInput) as error, vault.unit(_subject(cid)) as s:
            _desk(vault).create(s, DsrInput(kind, cid, details))
        assert "4711" not in str(error.value)


# -- access and portability -----------------------------------------------------------


def test_an_access_bundle_holds_every_item_stored_for_the_customer(
    vault: Vault, clock: FrozenClock
) -> None:
    """Profile in clear, all 150 interactions with payloads, the consent history with
    receipts, objections, every request with its history, each segment stay (left and
    current), and the access history naming a support agent's earlier read."""
    desk, ledger = _desk(vault), Privacy.of(vault).ledger
    cid = _customer(vault)
    _interactions(vault, cid, 150)
    with vault.unit(CTX) as s:
        gold, silver = (
            vault.segments.create(
                s,
                name=f"{tier} tier",
                definition={"attribute": {"field": "tier", "op": "eq", "value": tier}},
            ).id
            for tier in ("gold", "silver")
        )
        vault.segments.refresh(s)
    clock.advance(days=2)
    with vault.unit(CTX) as s:
        vault.customers.update(s, cid, CustomerPatch(tier="silver"))
        vault.segments.refresh(s)
    grant_all_consents(vault, cid)
    with vault.unit(_subject(cid)) as s:
        ledger.withdraw(s, cid, "marketing_sms")
    earlier = _file(vault, cid, "objection", {"scope": "analytics"})
    with vault.unit(SUPPORT) as s:
        vault.customers.get(s, cid)
    clock.advance(days=1)
    rid = _verified(vault, cid, "access")
    with vault.unit(OFFICER) as s:
        outcome = desk.process(s, rid)
    bundle = outcome.bundle
    assert bundle is not None
    assert outcome.receipt is None
    assert outcome.request.status is DsrStatus.COMPLETED
    assert [e.status for e in outcome.request.history] == [
        DsrStatus.RECEIVED,
        DsrStatus.VERIFIED,
        DsrStatus.IN_PROGRESS,
        DsrStatus.COMPLETED,
    ]

    with vault.unit(CTX) as s:
        stored = vault.customers.get(s, cid)
        history = ledger.history(s, cid)
        rows = s.scalars(select(InteractionRow).where(InteractionRow.customer_id == cid)).all()
    profile = bundle.profile
    assert {k: profile[k] for k in PII} == PII
    assert (profile["locale"], profile["tier"], profile["tags"]) == (
        "fa-IR",
        "silver",
        ["vip", "newsletter"],
    )
    assert profile["attributes"] == stored.attributes
    assert profile["attributes"]["nickname"] == "\u0634\u06cc\u0631\u06cc\u0646"  # in clear
    assert profile["external_ids"] == [
        {"source": e.source, "external_id": e.external_id} for e in stored.external_ids
    ]
    assert sorted(i["id"] for i in bundle.interactions) == sorted(str(r.id) for r in rows)
    payloads = {i["external_id"]: i["payload"] for i in bundle.interactions}
    assert payloads[f"ix-{cid.hex[:8]}-3"] == {"note": "\u0633\u0644\u0627\u0645 3"}
    assert payloads[f"ix-{cid.hex[:8]}-4"] is None
    amounts = {i["amount"] for i in bundle.interactions if i["type"] == "purchase"}
    assert amounts == {"19.90"}
    assert [c["id"] for c in bundle.consents] == [str(h.id) for h in history]
    assert [c["receipt"] for c in bundle.consents] == [h.receipt for h in history]
    assert bundle.objections == []
    requests = {r["id"]: r for r in bundle.requests}
    assert set(requests) == {str(earlier.request.id), str(rid)}
    assert requests[str(rid)]["status"] == "in_progress"
    assert [(m["segment_id"], m["segment"], m["left_at"] is None) for m in bundle.segments] == [
        (str(gold), "gold tier", False),
        (str(silver), "silver tier", True),
    ]
    support_reads = [
        a for a in bundle.access_history if (a["actor"], a["action"]) == ("agent-1", "pii.access")
    ]
    assert [(a["role"], a["purpose"]) for a in support_reads] == [("support_agent", "support")]
    assert outcome.request.result["counts"] == bundle.counts()
    assert bundle.counts()["interactions"] == 150
    assert str(cid) in repr(bundle)
    _no_pii(repr(bundle))


def test_the_export_reads_as_the_data_subject_and_is_audited(vault: Vault) -> None:
    """The bundle's reads are audited under the request's owner context (data_subject,
    purpose self) in the officer's request; no audit entry holds a PII value."""
    desk = _desk(vault)
    cid = _customer(vault)
    _interactions(vault, cid, 3)
    rid = _verified(vault, cid, "portability")
    with vault.unit(OFFICER) as s:
        outcome = desk.process(s, rid)
    entries = _audit(vault)
    export_reads = [e for e in entries if e["actor"] == f"dsr:{rid}"]
    assert {(e["role"], e["purpose"], e["action"]) for e in export_reads} == {
        ("data_subject", "self", "pii.access"),  # the details and the timeline, one entry
    }
    officer_steps = [e for e in entries if e["actor"] == "officer-1"]
    assert [e["detail"]["status"] for e in officer_steps if e["action"] == "dsr.change"] == [
        "in_progress",
        "completed",
    ]
    assert {e["request"] for e in export_reads} == {e["request"] for e in officer_steps}
    assert outcome.bundle is not None
    assert outcome.bundle.kind.value == "portability"
    _no_pii(json.dumps(entries, ensure_ascii=False))


def test_the_zip_holds_the_json_bundle_and_one_csv_per_table(vault: Vault) -> None:
    """bundle.json equals to_json(); each CSV has a header and one row per item."""
    desk = _desk(vault)
    cid = _customer(vault)
    _interactions(vault, cid, 12)
    grant_all_consents(vault, cid)
    with vault.unit(CTX) as s:
        vault.segments.create(
            s,
            name="vip",
            definition={"attribute": {"field": "tags", "op": "contains", "value": "vip"}},
        )
        vault.segments.refresh(s)
    with vault.unit(SUPPORT) as s:
        vault.customers.get(s, cid)
    rid = _verified(vault, cid, "access")
    with vault.unit(OFFICER) as s:
        bundle = desk.process(s, rid).bundle
    assert bundle is not None
    archive = zipfile.ZipFile(io.BytesIO(bundle.to_zip()))
    assert set(archive.namelist()) == {
        "bundle.json",
        "profile.csv",
        "interactions.csv",
        "consents.csv",
        "objections.csv",
        "requests.csv",
        "segments.csv",
        "access_history.csv",
        "recipients.csv",
    }
    assert json.loads(archive.read("bundle.json")) == json.loads(bundle.to_json())

    def table(name: str) -> list[dict[str, str]]:
        return list(csv.DictReader(io.StringIO(archive.read(name).decode("utf-8"))))

    profile = {row["field"]: row["value"] for row in table("profile.csv")}
    assert {k: profile[k] for k in PII} == PII
    assert json.loads(profile["tags"]) == ["vip", "newsletter"]
    interactions = table("interactions.csv")
    assert sorted(r["id"] for r in interactions) == sorted(i["id"] for i in bundle.interactions)
    assert len(table("consents.csv")) == 3
    assert [r["id"] for r in table("requests.csv")] == [str(rid)]
    assert [r["segment"] for r in table("segments.csv")] == ["vip"]
    access = table("access_history.csv")
    assert [(a["actor"], a["action"]) for a in access] == [("agent-1", "pii.access")]
    assert json.loads(access[0]["fields"])["email"] == "masked"


# -- erasure --------------------------------------------------------------------------


def test_erasure_through_the_desk_leaves_a_tombstone_and_a_signed_receipt(vault: Vault) -> None:
    """The verified request erases the customer (tombstone, PII gone), its interactions
    are purged after the commit, the receipt verifies offline and holds no PII, and the
    audit trail still verifies."""
    desk = _desk(vault)
    cid = _customer(vault)
    _interactions(vault, cid, 20)
    grant_all_consents(vault, cid)
    rid = _verified(vault, cid, "erasure")
    with vault.unit(OFFICER) as s:
        outcome = desk.process(s, rid)
    receipt = outcome.receipt
    assert receipt is not None
    body = verify_receipt(receipt, ed25519_verify, trusted_key=vault.audit.public_vkey)
    assert (body["requestId"], body["piiPrincipalId"], body["method"]) == (
        str(rid),
        str(cid),
        "crypto-shredding",
    )
    assert body["erased"]["consentStates"] == 3
    assert body["erased"]["externalIds"] == 1
    assert body["interactionsPendingPurge"] == 20
    _no_pii(json.dumps(receipt, ensure_ascii=False))
    with vault.unit(CTX) as s:
        tombstone = vault.customers.get(s, cid)
        stored = desk.get(s, rid)
        left = s.scalar(
            select(func.count())
            .select_from(InteractionRow)
            .where(InteractionRow.customer_id == cid)
        )
    assert tombstone.status is CustomerStatus.ERASED
    assert [tombstone.email, tombstone.first_name, tombstone.address] == [None, None, None]
    assert left == 0
    assert (stored.status, stored.result["receipt"]) == (DsrStatus.COMPLETED, receipt)
    vault.audit.sequence(vault.db)
    trail = io.StringIO()
    export_audit(vault, trail, context=CTX)
    report = verify_lines(
        trail.getvalue().splitlines(keepends=True),
        trusted_vkey=vault.audit.public_vkey,
        verify=ed25519_verify,
    )
    assert report.full
    tampered = json.loads(json.dumps(receipt))
    tampered["receipt"]["piiPrincipalId"] = str(uuid.uuid4())
    with pytest.raises(ValueError, match="does not verify"):
        verify_receipt(tampered, ed25519_verify, trusted_key=vault.audit.public_vkey)


def test_a_legal_hold_blocks_erasure_until_it_is_lifted(vault: Vault) -> None:
    """Under a legal hold the erasure is refused (LEGAL_HOLD, audited) and the request
    stays verified; a data subject cannot place or lift holds; once lifted, it erases."""
    desk = _desk(vault)
    cid = _customer(vault)
    rid = _verified(vault, cid, "erasure")
    with pytest.raises(AccessDenied), vault.unit(_subject(cid)) as s:
        desk.place_hold(s, cid, "I hold myself")
    with vault.unit(OFFICER) as s:
        hold = desk.place_hold(s, cid, "litigation 2026-17")
    assert hold.active
    assert "litigation" not in repr(hold)
    with pytest.raises(LegalHoldActive) as refused, vault.unit(OFFICER) as s:
        desk.process(s, rid)
    assert refused.value.code == "LEGAL_HOLD"
    with vault.unit(OFFICER) as s:
        view = desk.get(s, rid)
        holds = desk.holds(s, cid)
    assert view.status is DsrStatus.VERIFIED
    assert [h.id for h in holds] == [hold.id]
    denied = [e for e in _audit(vault, "access.denied") if e["actor"] == "officer-1"]
    assert [e["customer"] for e in denied] == [str(cid)]
    with vault.unit(OFFICER) as s:
        lifted = desk.lift_hold(s, hold.id)
    assert (lifted.active, lifted.lifted_by) == (False, "officer-1")
    with pytest.raises(InvalidInput), vault.unit(OFFICER) as s:
        desk.lift_hold(s, hold.id)
    with vault.unit(OFFICER) as s:
        assert desk.process(s, rid).request.status is DsrStatus.COMPLETED
    holds_audit = _audit(vault, "legal_hold.change")
    assert [e["detail"]["change"] for e in holds_audit] == ["placed", "lifted"]


# -- rectification, restriction, objection --------------------------------------------


def test_rectification_changes_the_fields_and_audits_them_by_name(vault: Vault) -> None:
    """The new values are sealed while the request waits, then written through the
    customer service; the update's audit entry names the fields, never the values."""
    desk = _desk(vault)
    cid = _customer(vault)
    new = {"email": "corrected.4711@example.org", "firstName": "Zo\u00eb", "address": None}
    rid = _verified(vault, cid, "rectification", new)
    with vault.db.transaction() as s:
        sealed = s.scalar(select(DsrRequestRow.details_ct).where(DsrRequestRow.id == rid))
    assert sealed is not None
    assert b"corrected.4711" not in sealed
    with vault.unit(OFFICER) as s:
        outcome = desk.process(s, rid)
    assert outcome.request.result["fields"] == ["address", "email", "first_name"]
    with vault.unit(CTX) as s:
        changed = vault.customers.get(s, cid)
    assert (changed.email, changed.first_name, changed.address, changed.last_name) == (
        "corrected.4711@example.org",
        "Zo\u00eb",
        None,
        PII["last_name"],
    )
    updates = _audit(vault, "customer.update")
    assert [(e["actor"], e["fields"]) for e in updates] == [
        (f"dsr:{rid}", {"address": "cleared", "email": "written", "first_name": "written"})
    ]
    _no_pii(
        json.dumps(_audit(vault), ensure_ascii=False),
        {**PII, "new": "corrected.4711", "name": "Zo\u00eb"},
    )


def test_a_rectification_can_give_the_address_in_parts(vault: Vault) -> None:
    """postalAddress in a rectification's details replaces the address with its parts
    (sealed while the request waits); the audit entry names the field only."""
    desk = _desk(vault)
    cid = _customer(vault)
    new = {"postalAddress": {"street": "Rua Augusta 4711", "city": "São Paulo",
                             "postalCode": "01305-000", "country": "br"}}  # fmt: skip
    rid = _verified(vault, cid, "rectification", new)
    with vault.unit(OFFICER) as s:
        outcome = desk.process(s, rid)
    with vault.unit(CTX) as s:
        changed = vault.customers.get(s, cid)
    assert outcome.request.result["fields"] == ["address"]
    assert changed.postal_address == PostalAddress(
        street="Rua Augusta 4711", city="São Paulo", postal_code="01305-000", country="BR"
    )
    _no_pii(json.dumps(_audit(vault), ensure_ascii=False), {"street": "Rua Augusta 4711"})


def test_restriction_stops_support_but_not_compliance_until_lifted(vault: Vault) -> None:
    """A processed restriction makes a support read fail with ProcessingRestricted while
    a compliance officer still reads; lifting it lets support read again."""
    desk = _desk(vault)
    cid = _customer(vault)
    rid = _verified(vault, cid, "restriction")
    with vault.unit(OFFICER) as s:
        assert desk.process(s, rid).request.result["status"] == "restricted"
    with pytest.raises(ProcessingRestricted), vault.unit(SUPPORT) as s:
        vault.customers.get(s, cid)
    with vault.unit(OFFICER) as s:
        assert vault.customers.get(s, cid).status is CustomerStatus.RESTRICTED
    with pytest.raises(AccessDenied), vault.unit(_subject(cid)) as s:
        desk.lift_restriction(s, cid)
    with vault.unit(OFFICER) as s:
        desk.lift_restriction(s, cid)
    with vault.unit(SUPPORT) as s:
        assert vault.customers.get(s, cid).status is CustomerStatus.ACTIVE
    changes = [e["detail"] for e in _audit(vault, "customer.update")]
    assert [c["status"] for c in changes] == ["restricted", "active"]


@pytest.mark.parametrize("purpose", ["marketing_email", "marketing_sms", "personalization"])
def test_an_objection_to_direct_marketing_stops_every_marketing_purpose(
    vault: Vault, purpose: str
) -> None:
    """With every consent granted, an objection to direct marketing refuses each of the
    three marketing purposes (OBJECTION_IN_FORCE); analytics is not direct marketing."""
    desk = _desk(vault)
    cid = _customer(vault)
    grant_all_consents(vault, cid)
    marketing = AccessContext(Actor("mailer", "marketing"), purpose)
    with vault.unit(marketing) as s:
        assert vault.customers.get(s, cid).id == cid
    rid = _verified(vault, cid, "objection", {"scope": "direct_marketing"})
    with vault.unit(OFFICER) as s:
        assert desk.process(s, rid).request.result == {
            "scope": "direct_marketing",
            "already": False,
        }
    with pytest.raises(ObjectionInForce), vault.unit(marketing) as s:
        vault.customers.get(s, cid)
    analyst = AccessContext(Actor("bi", "analyst"), "analytics")
    with vault.unit(analyst) as s:
        assert vault.interactions.timeline(s, cid).items == []
    with vault.unit(OFFICER) as s:
        listed = desk.list(s, status="completed")
    assert [r.id for r in listed.items] == [rid]


def test_every_step_is_audited_without_details(vault: Vault) -> None:
    """Filing, verifying, processing: one dsr.change entry per step naming the request,
    its type and status; the access history of the trail lists none of them as reads."""
    cid = _customer(vault)
    rid = _verified(vault, cid, "objection", {"scope": "marketing_sms"})
    with vault.unit(OFFICER) as s:
        _desk(vault).process(s, rid)
    steps = _audit(vault, "dsr.change")
    assert [(e["detail"]["status"], e["detail"]["type"]) for e in steps] == [
        ("received", "objection"),
        ("verified", "objection"),
        ("in_progress", "objection"),
        ("completed", "objection"),
    ]
    assert {e["detail"]["request"] for e in steps} == {str(rid)}
    assert steps[-1]["detail"]["effect"] == "objection"
    with vault.unit(_subject(cid)) as s:
        history: list[AuditRecord] = vault.trail.access_history(s, cid).items
    assert "dsr.change" not in {h.action for h in history}


def test_a_data_subject_processes_its_own_verified_request_only(vault: Vault) -> None:
    """Self-service: a data subject may process its own verified portability request and
    receives the bundle; another subject's request is refused."""
    desk = _desk(vault)
    mine, theirs = (
        _customer(vault),
        _customer(vault, email="other@example.com", phone="+33612345699"),
    )
    own = _verified(vault, mine, "portability")
    other = _verified(vault, theirs, "portability")
    with pytest.raises(AccessDenied), vault.unit(_subject(mine)) as s:
        desk.process(s, other)
    with vault.unit(_subject(mine)) as s:
        outcome = desk.process(s, own)
    assert outcome.bundle is not None
    assert outcome.bundle.profile["email"] == PII["email"]
    assert outcome.request.status is DsrStatus.COMPLETED
