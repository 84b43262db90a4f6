"""The notice version over GraphQL: grantConsent and withdrawConsent take an optional
noticeVersion; without it the purpose's current version is recorded; a purpose without
one refuses the change with BAD_USER_INPUT naming the purpose."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from consent.receipts import verify_receipt
from policies import Role
from policies.purposes import PurposeInfo, purpose_info
from tests.api.test_graphql_policy import Gateway, gateway
from tests.conftest import CTX
from vault.crypto.signing import ed25519_verify
from vault.customers import CustomerInput
from vault.runtime import Vault
from vault.storage.models import ConsentEventRow

__all__ = ["gateway"]

NOTICE = "\u0627\u0639\u0644\u0627\u0645\u06cc\u0647-\u06f3"  # notice-3, in Persian
CHANGE = """
mutation Change($id: ID!, $purpose: String!, $how: ConsentChangeInput) {
  grantConsent(customerId: $id, purpose: $purpose, how: $how) { noticeVersion receipt }
}
"""
WITHDRAW = """
mutation Withdraw($id: ID!, $purpose: String!, $how: ConsentChangeInput) {
  withdrawConsent(customerId: $id, purpose: $purpose, how: $how) { noticeVersion receipt }
}
"""
PURPOSES = "{ purposes { name noticeVersion } }"


def _customer(vault: Vault) -> uuid.UUID:
    with vault.unit(CTX) as s:
        return vault.customers.create(s, CustomerInput(first_name="Omid")).id


def _as_subject(gw: Gateway, cid: uuid.UUID, query: str, **variables: Any) -> dict[str, Any]:
    response = gw.post(query, variables, role=Role.DATA_SUBJECT, purpose="self", customer_id=cid)
    body: dict[str, Any] = response.json()
    return body


def test_a_change_without_notice_version_records_the_purposes_current_one(
    vault: Vault, gateway: Gateway
) -> None:
    """No how: the registry's version; a Persian version given: that one, on the receipt."""
    cid = _customer(vault)
    current = purpose_info("marketing_sms").notice_version
    granted = _as_subject(gateway, cid, CHANGE, id=str(cid), purpose="marketing_sms")
    withdrawn = _as_subject(
        gateway, cid, WITHDRAW, id=str(cid), purpose="marketing_sms",
        how={"noticeVersion": NOTICE},
    )  # fmt: skip
    events = [granted["data"]["grantConsent"], withdrawn["data"]["withdrawConsent"]]
    assert [e["noticeVersion"] for e in events] == [current, NOTICE]
    bodies = [verify_receipt(e["receipt"], ed25519_verify) for e in events]
    assert [b["noticeVersion"] for b in bodies] == [current, NOTICE]
    listed = gateway.post(PURPOSES, role=Role.COMPLIANCE_OFFICER, purpose="compliance").json()
    versions = {p["name"]: p["noticeVersion"] for p in listed["data"]["purposes"]}
    assert (versions["marketing_sms"], versions["support"]) == (current, None)


def test_no_notice_version_anywhere_is_bad_user_input(
    vault: Vault, gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The purpose has no current version and the call gives none: refused, nothing kept."""
    unversioned = dataclasses.replace(purpose_info("personalization"), notice_version=None)

    def lookup(name: str) -> PurposeInfo:
        return unversioned if name == "personalization" else purpose_info(name)

    monkeypatch.setattr("consent.ledger.purpose_info", lookup)
    cid = _customer(vault)
    body = _as_subject(gateway, cid, CHANGE, id=str(cid), purpose="personalization")
    assert body["data"]["grantConsent"] is None
    assert [(e["extensions"]["code"], e["message"]) for e in body["errors"]] == [
        ("BAD_USER_INPUT", "noticeVersion: is required: purpose personalization has no "
         "current notice version in purposes.toml"),
    ]  # fmt: skip
    with vault.db.transaction() as s:
        assert s.scalars(select(ConsentEventRow)).all() == []
