"""Policy inside the domain layer: every read resolves per role and purpose, writes need a
grant, a data subject reaches only its own record, and every refusal is audited."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from policies import AccessDenied, PurposeNotAllowed
from tests.conftest import CTX, grant_all_consents
from vault.authorization.context import AccessContext, Actor
from vault.customers import Customer, CustomerInput, CustomerPatch
from vault.interactions import InteractionInput
from vault.runtime import Vault
from vault.storage.models import AuditEntryRow

PERSON = CustomerInput(
    email="jane.doe@example.com",
    phone="+447700900123",
    first_name="Jane",
    last_name="Doe",
    birth_date="1990-04-17",
    address="1 High Street, Leeds, UK",
)
C, M, H = "clear", "masked", "hidden"
# role, purpose -> email, phone, first_name, last_name, birth_date, address (issue 3's table)
TABLE = {
    ("support_agent", "support"): (M, M, C, C, H, M),
    ("marketing", "marketing_email"): (C, H, C, H, M, H),
    ("marketing", "marketing_sms"): (H, C, C, H, M, H),
    ("marketing", "personalization"): (H, H, C, H, H, H),
    ("analyst", "analytics"): (H, H, H, H, H, H),
    ("compliance_officer", "compliance"): (M, M, M, M, H, H),
    ("admin", "administration"): (M, M, M, M, H, H),
    ("ingest_service", "service_delivery"): (H, H, H, H, H, H),
}
FIELDS = ("email", "phone", "first_name", "last_name", "birth_date", "address")
VALUES = {
    C: ("jane.doe@example.com", "+447700900123", "Jane", "Doe", "1990-04-17",
        "1 High Street, Leeds, UK"),
}  # fmt: skip


def ctx(role: str, purpose: str, customer_id: uuid.UUID | None = None) -> AccessContext:
    return AccessContext(Actor(subject=f"{role}-1", role=role, customer_id=customer_id), purpose)


def _person(vault: Vault, email: str | None = None, phone: str | None = None) -> Customer:
    """The person above; another email and phone make another one (one email, one customer)."""
    data = PERSON if email is None else replace(PERSON, email=email, phone=phone)
    with vault.unit(CTX) as s:
        made = vault.customers.create(s, data)
    grant_all_consents(vault, made.id)
    return made


def _denials(vault: Vault) -> list[dict[str, object]]:
    with vault.db.transaction() as s:
        rows = s.scalars(
            select(AuditEntryRow.canonical).where(AuditEntryRow.action == "access.denied")
        ).all()
    return [json.loads(r) for r in rows]


@pytest.mark.parametrize(("role", "purpose"), list(TABLE))
def test_reads_follow_the_policy_table(vault: Vault, role: str, purpose: str) -> None:
    """Each role reading for each of its purposes sees every field clear, masked or hidden
    exactly as the default policy says; masked values are masks, hidden ones are None."""
    person = _person(vault)
    with vault.unit(ctx(role, purpose)) as s:
        seen = vault.customers.get(s, person.id)
    expected = TABLE[(role, purpose)]
    assert tuple(seen.resolutions[f] for f in FIELDS) == expected
    for field, how, clear in zip(FIELDS, expected, VALUES[C], strict=True):
        value = getattr(seen, field)
        if how == C:
            assert value == clear
        elif how == H:
            assert value is None
        else:
            assert value is not None
            assert value != clear


def test_masks_follow_the_issue(vault: Vault) -> None:
    """Support sees j***@e***.com, the last four digits, and the first three address
    characters; marketing sees the birthday as --MM-DD."""
    person = _person(vault)
    with vault.unit(ctx("support_agent", "support")) as s:
        support = vault.customers.get(s, person.id)
    with vault.unit(ctx("marketing", "marketing_email")) as s:
        marketing = vault.customers.get(s, person.id)
    assert support.email == "j***@e***.com"
    assert support.phone is not None
    assert support.phone.endswith("0123")
    assert "7700900" not in support.phone
    assert marketing.birth_date == "--04-17"


def test_a_purpose_the_role_may_not_use_is_refused_and_audited(vault: Vault) -> None:
    """Marketing asking for 'support' gets PurposeNotAllowed, and the refusal is in the log."""
    person = _person(vault)
    with pytest.raises(PurposeNotAllowed), vault.unit(ctx("marketing", "support")) as s:
        vault.customers.get(s, person.id)
    assert [(d["actor"], d["purpose"], d["outcome"]) for d in _denials(vault)] == [
        ("marketing-1", "support", "denied")
    ]


def test_a_data_subject_reaches_only_its_own_record(vault: Vault) -> None:
    """With its own id a data subject sees everything in clear; any other id is refused
    (and audited), as are searches and lists."""
    me = _person(vault)
    other = _person(vault, email="john.roe@example.com", phone="+447700900456")
    subject = ctx("data_subject", "self", me.id)
    with vault.unit(subject) as s:
        mine = vault.customers.get(s, me.id)
    assert (mine.email, mine.birth_date) == ("jane.doe@example.com", "1990-04-17")
    with pytest.raises(AccessDenied), vault.unit(subject) as s:
        vault.customers.get(s, other.id)
    with pytest.raises(AccessDenied), vault.unit(subject) as s:
        vault.customers.find_by_email(s, "jane.doe@example.com")
    assert [d["customer"] for d in _denials(vault)] == [str(other.id), None]


def test_only_granted_roles_write(vault: Vault) -> None:
    """The ingest service may create and update; a support agent or an analyst may not."""
    ingest = ctx("ingest_service", "service_delivery")
    with vault.unit(ingest) as s:
        made = vault.customers.create(s, CustomerInput(first_name="New", tier="gold"))
        vault.customers.update(s, made.id, CustomerPatch(last_name="Person"))
    assert made.first_name is None  # the ingest service reads nothing back
    for role, purpose in (("support_agent", "support"), ("analyst", "analytics")):
        with pytest.raises(AccessDenied), vault.unit(ctx(role, purpose)) as s:
            vault.customers.update(s, made.id, CustomerPatch(tier="silver"))


def test_lookup_compares_inside_the_vault_even_when_the_caller_sees_a_mask(
    vault: Vault,
) -> None:
    """Support finds a customer by email although it only ever sees the email masked."""
    person = _person(vault)
    with vault.unit(ctx("support_agent", "support")) as s:
        found = vault.customers.find_by_email(s, "Jane.Doe@example.com")
    assert [(c.id, c.email) for c in found] == [(person.id, "j***@e***.com")]


def test_interactions_and_payloads_follow_the_policy(vault: Vault) -> None:
    """Support sees interactions without payloads, admin none at all (refused), the data
    subject its own with payloads."""
    person = _person(vault)
    with vault.unit(ctx("ingest_service", "service_delivery")) as s:
        vault.interactions.record_many(
            s,
            [
                InteractionInput(
                    customer_id=person.id, channel="chat", type="chat_message",
                    occurred_at=datetime(2026, 1, 1, tzinfo=UTC), payload={"text": "hello"},
                )
            ],
        )  # fmt: skip
    with vault.unit(ctx("support_agent", "support")) as s:
        support = vault.interactions.timeline(s, person.id)
    with vault.unit(ctx("data_subject", "self", person.id)) as s:
        own = vault.interactions.timeline(s, person.id)
    with pytest.raises(AccessDenied), vault.unit(ctx("admin", "administration")) as s:
        vault.interactions.timeline(s, person.id)
    assert [i.payload for i in support.items] == [None]
    assert [i.payload for i in own.items] == [{"text": "hello"}]
