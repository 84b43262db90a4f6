"""Consent, restriction and objection are enforced inside the domain, on every path:
a consent-based purpose sees only customers who granted it, a withdrawal applies to the
very next request, an objection to direct marketing blocks every marketing purpose, and a
restricted customer is processed only for compliance and the data subject's own requests."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from consent import ConsentChange, Privacy
from tests.conftest import CTX, FrozenClock
from vault.authorization.context import AccessContext, Actor
from vault.customers import CustomerInput, CustomerPatch
from vault.errors import ConsentRequired, ObjectionInForce, ProcessingRestricted
from vault.interactions import InteractionInput
from vault.runtime import Vault
from vault.storage.models import AuditEntryRow, CustomerRow, ObjectionRow
from vault.types import ConsentState, CustomerStatus

MARKETING = ("marketing_email", "marketing_sms", "personalization")


def ctx(role: str, purpose: str, customer_id: uuid.UUID | None = None) -> AccessContext:
    return AccessContext(Actor(f"{role}-1", role, customer_id), purpose)


EMAIL = ctx("marketing", "marketing_email")


def _people(vault: Vault) -> tuple[uuid.UUID, uuid.UUID]:
    """Two customers with the same tier and a chat each; only the first consents to
    marketing e-mail."""
    with vault.unit(CTX) as s:
        yes = vault.customers.create(
            s, CustomerInput(email="yes@example.com", phone="+441632960001", first_name="Yes")
        )
        no = vault.customers.create(
            s, CustomerInput(email="no@example.com", phone="+441632960002", first_name="No")
        )
        vault.interactions.record_many(
            s,
            [
                InteractionInput(
                    customer_id=c.id, channel="web", type="page_view",
                    occurred_at=datetime(2026, 11, 1, tzinfo=UTC),
                )
                for c in (yes, no)
            ],
        )  # fmt: skip
    with vault.unit(CTX) as s:
        Privacy.of(vault).ledger.grant(s, yes.id, "marketing_email")
    return yes.id, no.id


def _listed(vault: Vault, context: AccessContext) -> set[uuid.UUID]:
    with vault.unit(context) as s:
        return {c.id for c in vault.customers.page(s, first=100).items}


def test_a_consent_purpose_lists_and_finds_only_consenting_customers(vault: Vault) -> None:
    """Listing and lookups by e-mail or phone leave out customers without consent."""
    yes, no = _people(vault)
    assert _listed(vault, EMAIL) == {yes}
    with vault.unit(EMAIL) as s:
        assert [c.id for c in vault.customers.find_by_email(s, "yes@example.com")] == [yes]
        assert vault.customers.find_by_email(s, "no@example.com") == []
    with vault.unit(ctx("support_agent", "support")) as s:
        found = vault.customers.find_by_email(s, "no@example.com")
    assert [c.id for c in found] == [no]
    assert _listed(vault, ctx("support_agent", "support")) == {yes, no}


def test_one_customer_without_consent_is_refused_and_audited(vault: Vault) -> None:
    """Reading, updating or reading the timeline of a non-consenting customer raises
    ConsentRequired, and the refusal is in the audit trail."""
    _yes, no = _people(vault)
    with pytest.raises(ConsentRequired), vault.unit(EMAIL) as s:
        vault.customers.get(s, no)
    with pytest.raises(ConsentRequired), vault.unit(EMAIL) as s:
        vault.interactions.timeline(s, no)
    with pytest.raises(ConsentRequired), vault.unit(EMAIL) as s:
        vault.customers.get_many(s, [no])
    with vault.db.transaction() as s:
        denied = s.scalars(
            select(AuditEntryRow.canonical).where(AuditEntryRow.action == "access.denied")
        ).all()
    assert [json.loads(d)["customer"] for d in denied] == [str(no)] * 3


def test_a_withdrawal_applies_to_the_very_next_request(vault: Vault) -> None:
    """Right after a withdrawal the customer is gone from the marketing caller's results."""
    yes, _no = _people(vault)
    assert _listed(vault, EMAIL) == {yes}
    with vault.unit(ctx("data_subject", "self", yes)) as s:
        Privacy.of(vault).ledger.withdraw(s, yes, "marketing_email")
    assert _listed(vault, EMAIL) == set()
    with pytest.raises(ConsentRequired), vault.unit(EMAIL) as s:
        vault.customers.get(s, yes)


def test_consent_to_one_purpose_does_not_open_another(vault: Vault) -> None:
    """Consent is per purpose: e-mail consent does not let SMS or personalization in."""
    yes, _no = _people(vault)
    assert _listed(vault, ctx("marketing", "marketing_sms")) == set()
    assert _listed(vault, ctx("marketing", "personalization")) == set()
    assert _listed(vault, EMAIL) == {yes}


def test_an_expired_consent_stops_processing(vault: Vault, clock: FrozenClock) -> None:
    """A consent granted until a date reaches the customer before it, not after."""
    _yes, no = _people(vault)
    change = ConsentChange("marketing_email", "granted", expires_at=clock.now + timedelta(days=30))
    with vault.unit(CTX) as s:
        Privacy.of(vault).ledger.record(s, no, change)
    assert no in _listed(vault, EMAIL)
    clock.advance(days=30)
    assert no not in _listed(vault, EMAIL)


def _object(vault: Vault, customer_id: uuid.UUID, scope: str) -> None:
    with vault.db.transaction() as s:
        s.add(ObjectionRow(customer_id=customer_id, scope=scope, objected_at=datetime.now(UTC)))


def test_an_objection_to_direct_marketing_blocks_every_marketing_purpose(vault: Vault) -> None:
    """One objection (Art. 21(2)) closes all marketing purposes at once, whatever the
    consents say; support still serves the customer."""
    yes, _no = _people(vault)
    with vault.unit(CTX) as s:
        for purpose in MARKETING:
            Privacy.of(vault).ledger.grant(s, yes, purpose)
    assert all(_listed(vault, ctx("marketing", p)) == {yes} for p in MARKETING)
    _object(vault, yes, "direct_marketing")
    assert [_listed(vault, ctx("marketing", p)) for p in MARKETING] == [set(), set(), set()]
    with pytest.raises(ObjectionInForce), vault.unit(EMAIL) as s:
        vault.customers.get(s, yes)
    assert yes in _listed(vault, ctx("support_agent", "support"))


def test_an_objection_to_a_legitimate_interest_stops_that_purpose_only(vault: Vault) -> None:
    """Objecting to analytics keeps the customer out of analytics and nothing else."""
    yes, no = _people(vault)
    _object(vault, no, "analytics")
    assert _listed(vault, ctx("analyst", "analytics")) == {yes}
    with pytest.raises(ObjectionInForce), vault.unit(ctx("analyst", "analytics")) as s:
        vault.interactions.timeline(s, no)
    assert _listed(vault, ctx("support_agent", "support")) == {yes, no}


def test_a_restricted_customer_is_processed_for_compliance_and_self_only(vault: Vault) -> None:
    """Under restriction (Art. 18) the data stays, support and ingest are refused, the
    compliance officer and the data subject still reach it."""
    yes, no = _people(vault)
    with vault.db.transaction() as s:
        s.execute(
            update(CustomerRow)
            .where(CustomerRow.id == no)
            .values(status=CustomerStatus.RESTRICTED.value)
        )
    support = ctx("support_agent", "support")
    assert _listed(vault, support) == {yes}
    with pytest.raises(ProcessingRestricted), vault.unit(support) as s:
        vault.customers.get(s, no)
    ingest = ctx("ingest_service", "service_delivery")
    item = InteractionInput(
        customer_id=no, channel="web", type="page_view", occurred_at=datetime.now(UTC)
    )
    with pytest.raises(ProcessingRestricted), vault.unit(ingest) as s:
        vault.interactions.record_many(s, [item])
    with pytest.raises(ProcessingRestricted), vault.unit(ingest) as s:
        vault.customers.update(s, no, CustomerPatch(tier="gold"))
    with vault.unit(ctx("compliance_officer", "compliance")) as s:
        assert vault.customers.get(s, no).status is CustomerStatus.RESTRICTED
    with vault.unit(ctx("data_subject", "self", no)) as s:
        assert vault.customers.get(s, no).first_name == "No"
        assert len(vault.interactions.timeline(s, no).items) == 1


def test_a_merge_needs_both_customers_processable(vault: Vault) -> None:
    """Folding a restricted record into another is refused and changes nothing."""
    yes, no = _people(vault)
    with vault.db.transaction() as s:
        s.execute(update(CustomerRow).where(CustomerRow.id == no).values(status="restricted"))
    with pytest.raises(ProcessingRestricted), vault.unit(CTX) as s:
        vault.customers.merge(s, yes, no)
    with vault.db.transaction() as s:
        assert s.get(CustomerRow, no).status == "restricted"  # type: ignore[union-attr]


def test_an_erased_customers_interactions_are_never_read_again(vault: Vault) -> None:
    """Between erasure and purge the rows still exist; no timeline returns them."""
    yes, _no = _people(vault)
    with vault.unit(CTX) as s:
        vault.erasure.erase(s, yes)
    with vault.unit(ctx("support_agent", "support")) as s:
        page = vault.interactions.timeline(s, yes)
    assert (page.items, page.has_next_page) == ([], False)


def test_a_merge_never_reopens_what_the_merged_record_refused(vault: Vault) -> None:
    """The kept record consented to e-mail; the merged duplicate withdrew it and objected
    to direct marketing. After the merge marketing reaches neither id, and the kept record
    carries the objection and the withdrawal."""
    keep, gone = _people(vault)  # keep granted marketing_email, gone never did
    ledger = Privacy.of(vault).ledger
    with vault.unit(CTX) as s:
        ledger.grant(s, gone, "marketing_email")
        ledger.withdraw(s, gone, "marketing_email")
    _object(vault, gone, "direct_marketing")
    assert _listed(vault, EMAIL) == {keep}
    with vault.unit(ctx("ingest_service", "service_delivery")) as s:
        vault.customers.merge(s, keep, gone)
    assert _listed(vault, EMAIL) == set()
    for target in (keep, gone):
        with pytest.raises(ObjectionInForce), vault.unit(EMAIL) as s:
            vault.customers.get(s, target)
    with vault.unit(CTX) as s:
        states = {st.purpose.value: st.state for st in ledger.status(s, keep)}
    assert states["marketing_email"] is ConsentState.WITHDRAWN
