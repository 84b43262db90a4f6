"""Declared custom attributes in the domain: PII ones sealed per attribute, written only
with a grant on attr:<name>, re-sealed by a merge, shredded by an erasure; undeclared
names refused on write and on import (with the line); segment rules refuse PII and
undeclared attributes and values of the wrong type."""

# ruff: noqa: SIM300 - assertions read `expected == actual`.

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from policies import AccessDenied, PolicyEnforcer, default_policy_lines
from tests.conftest import CTX, FrozenClock
from vault.authorization.context import AccessContext, Actor
from vault.config import Settings
from vault.crypto import DecryptionError, Keyring
from vault.crypto.signing import Ed25519Signer
from vault.customers import CustomerInput, CustomerPatch
from vault.customers.custom_attributes import open_value, seal_value
from vault.errors import InvalidInput
from vault.importing import RowError, import_customers
from vault.runtime import Vault
from vault.segments.rules import RuleError
from vault.storage.db import Database
from vault.storage.models import CustomerRow

INGEST = AccessContext(Actor("ingest-1", "ingest_service"), "service_delivery")
PERSIAN, THAI, CHINESE = "شیرین عبادی", "สมชาย ใจดี", "王小明"


def _row(vault: Vault, customer_id: uuid.UUID) -> CustomerRow:
    with vault.db.transaction() as s:
        row = s.scalar(select(CustomerRow).where(CustomerRow.id == customer_id))
        assert row is not None
        s.expunge(row)
        return row


def test_a_pii_attribute_is_sealed_apart_and_a_clear_one_stays_clear(vault: Vault) -> None:
    """The PII attribute lands in sealed_attributes as a token (its value nowhere in the
    row); the non-PII one stays in the clear attributes that segment rules read; both
    round-trip exactly in Persian, Thai and Chinese."""
    for value in (PERSIAN, THAI, CHINESE):
        with vault.unit(CTX) as s:
            made = vault.customers.create(
                s, CustomerInput(attributes={"nickname": value, "favourite_colour": value})
            )
        row = _row(vault, made.id)
        assert {"favourite_colour": value} == row.attributes
        assert ["nickname"] == list(row.sealed_attributes or {})
        assert value not in json.dumps(row.sealed_attributes, ensure_ascii=False)
        assert {"nickname": value, "favourite_colour": value} == made.attributes


def test_a_sealed_attribute_opens_only_under_its_own_customer_and_name(
    vault: Vault,
) -> None:
    """A token is bound to the customer and to attr:<name>: moved to another attribute or
    opened with another customer's key, it does not open."""
    with vault.unit(CTX) as s:
        one = vault.customers.create(s, CustomerInput(attributes={"nickname": THAI}))
        two = vault.customers.create(s, CustomerInput(attributes={"nickname": CHINESE}))
        keys = vault.keys.get_many(s, [one.id, two.id])
    token = seal_value(keys[one.id], "nickname", THAI)
    assert THAI == open_value(keys[one.id], "nickname", token)
    with pytest.raises(DecryptionError):
        open_value(keys[one.id], "loyalty_number", token)
    with pytest.raises(DecryptionError):
        open_value(keys[two.id], "nickname", token)


def _vault_with(
    settings: Settings, database: Database, keyring: Keyring, lines: list[str]
) -> Vault:
    return Vault.open(
        settings,
        keyring=keyring,
        database=database,
        signer=Ed25519Signer.generate("customer-vault/test"),
        policy=PolicyEnforcer.from_lines(lines),
        clock=FrozenClock(),
    )


def test_writing_a_pii_attribute_needs_its_own_grant(
    settings: Settings, database: Database, session_keyring: Keyring
) -> None:
    """With the profile write but no grant on attr:*, the ingest service may set a clear
    attribute but not a PII one (refused, nothing written)."""
    lines = [line for line in default_policy_lines() if "attr:*, write" not in line]
    vault = _vault_with(settings, database, session_keyring, lines)
    with vault.unit(INGEST) as s:
        made = vault.customers.create(s, CustomerInput(attributes={"plan": "pro"}))
    with pytest.raises(AccessDenied) as caught, vault.unit(INGEST) as s:
        vault.customers.update(s, made.id, CustomerPatch(attributes={"nickname": THAI}))
    assert "attr:nickname" == caught.value.resource
    assert _row(vault, made.id).sealed_attributes is None
    vault.close()


@pytest.mark.parametrize(
    ("attributes", "field"),
    [
        ({"colour": "teal"}, "attributes.colour"),
        ({"nickname": 7}, "attributes.nickname"),
        ({"signup_date": "10/06/2015"}, "attributes.signup_date"),
        ({"demo_seed": 2**70}, "attributes.demo_seed"),
        ({"score": float("inf")}, "attributes"),
        ({"jane@example.com": 1}, "attributes.<name>"),
    ],
)
def test_create_refuses_undeclared_and_ill_typed_attributes(
    vault: Vault, attributes: dict[str, Any], field: str
) -> None:
    """An undeclared name, or a value that is not of the declared type, is refused naming
    the attribute (a name that does not look like one is not echoed)."""
    with pytest.raises(InvalidInput) as caught, vault.unit(CTX) as s:
        vault.customers.create(s, CustomerInput(attributes=attributes))
    assert field == caught.value.field


def test_import_reports_the_line_of_an_undeclared_attribute(vault: Vault, tmp_path: Path) -> None:
    """cvault import skips a row with an undeclared (or ill-typed) attribute and reports its
    line; the other rows land."""
    path = tmp_path / "customers.jsonl"
    rows = [
        {"email": "ok@example.com", "attributes": {"plan": "pro", "nickname": THAI}},
        {"email": "bad@example.com", "attributes": {"shoe_colour": "red"}},
        {"email": "typed@example.com", "attributes": {"newsletter": "yes"}},
    ]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", "utf-8")
    report = import_customers(vault, path)
    assert [
        RowError(2, "attributes.shoe_colour: is not a declared attribute "
                 "(policies/attributes.toml, CVAULT_ATTRIBUTES_FILE)"),
        RowError(3, "attributes.newsletter: must be a boolean (as declared)"),
    ] == report.rejected  # fmt: skip
    with vault.unit(CTX) as s:
        (found,) = vault.customers.find_by_email(s, "ok@example.com")
    assert {"plan": "pro", "nickname": THAI} == found.attributes


def test_a_merge_reseals_the_merged_pii_attributes_under_the_kept_key(vault: Vault) -> None:
    """The kept record gains the merged one's PII attribute (sealed again under its own
    key) and keeps its own where both have one; the merged record keeps none."""
    with vault.unit(CTX) as s:
        keep = vault.customers.create(s, CustomerInput(attributes={"nickname": PERSIAN}))
        gone = vault.customers.create(
            s, CustomerInput(attributes={"nickname": THAI, "loyalty_number": "LN-1", "plan": "pro"})
        )
        result = vault.customers.merge(s, keep.id, gone.id)
    assert {"nickname": PERSIAN, "loyalty_number": "LN-1", "plan": "pro"} == (
        result.customer.attributes
    )
    assert "attr:loyalty_number" in result.filled_fields
    assert _row(vault, gone.id).sealed_attributes is None


def test_erasure_removes_the_sealed_attributes(vault: Vault) -> None:
    """An erased customer keeps no sealed attribute (its key is shredded as well)."""
    with vault.unit(CTX) as s:
        made = vault.customers.create(s, CustomerInput(attributes={"nickname": THAI}))
        vault.erasure.erase(s, made.id)
    assert _row(vault, made.id).sealed_attributes is None


# -- segment rules --------------------------------------------------------------------


def _custom(key: str, op: str, value: Any) -> dict[str, Any]:
    return {"attribute": {"field": "custom", "key": key, "op": op, "value": value}}


@pytest.mark.parametrize(
    ("definition", "field", "message"),
    [
        pytest.param(
            {"all": [_custom("plan", "eq", "pro"), _custom("loyalty_number", "eq", "LN-1")]},
            "rule.all[1].attribute.key",
            "attribute 'loyalty_number' is personal data (declared pii = true) and stored "
            "encrypted: segment rules cannot use it",
            id="pii",
        ),
        pytest.param(
            {"not": _custom("colour", "eq", "teal")},
            "rule.not.attribute.key",
            "attribute 'colour' is not declared (policies/attributes.toml, CVAULT_ATTRIBUTES_FILE)",
            id="undeclared",
        ),
        pytest.param(
            _custom("score", "eq", "50"),
            "rule.attribute.value",
            "attribute 'score' is declared decimal: compare it with a decimal value",
            id="type",
        ),
    ],
)
def test_a_segment_rule_must_name_a_declared_clear_attribute(
    vault: Vault, definition: dict[str, Any], field: str, message: str
) -> None:
    """create, update and preview refuse a rule on a PII attribute, on an undeclared one,
    or comparing with a value of another type, naming the node and the attribute."""
    with vault.unit(CTX) as s:
        segment = vault.segments.create(s, name="pro", definition=_custom("plan", "eq", "pro"))
    attempts: list[Callable[[Session], object]] = [
        lambda s: vault.segments.create(s, name="bad", definition=definition),
        lambda s: vault.segments.update(s, segment.id, definition=definition),
        lambda s: vault.segments.preview(s, definition),
    ]
    for attempt in attempts:
        with pytest.raises(RuleError) as caught, vault.unit(CTX) as s:
            attempt(s)
        assert (field, message) == (caught.value.field, caught.value.rule)


def test_a_segment_rule_on_a_clear_attribute_selects_by_it(vault: Vault) -> None:
    """A declared non-PII attribute is usable in a rule: it selects the customers with it."""
    with vault.unit(CTX) as s:
        pro = vault.customers.create(s, CustomerInput(attributes={"plan": "pro"}))
        vault.customers.create(s, CustomerInput(attributes={"plan": "free"}))
        assert 1 == vault.segments.preview(s, _custom("plan", "eq", "pro"))
        segment = vault.segments.create(s, name="pro", definition=_custom("plan", "eq", "pro"))
        vault.segments.refresh(s)
        members = vault.segments.members(s, segment.id, first=10)
    assert [pro.id] == list(members.items)
