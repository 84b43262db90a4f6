"""Requests filed on the privacy page: verified by the signed-in session, an erasure that
waits for the desk's approval (or not, when the vault is set to erase at once)."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from consent import Privacy
from consent.dsr.desk import DsrInput, RequestStateError
from policies import AccessDenied
from tests.conftest import CTX
from vault.authorization.context import AccessContext, Actor
from vault.customers import CustomerInput
from vault.runtime import Vault
from vault.types import CustomerStatus, DsrStatus

OFFICER = AccessContext(Actor("officer-1", "compliance_officer"), "compliance")


def _subject(customer_id: uuid.UUID) -> AccessContext:
    return AccessContext(Actor("privacy:s1", "data_subject", customer_id), "self")


def _customer(vault: Vault, email: str = "p@example.com") -> uuid.UUID:
    with vault.unit(CTX) as s:
        return vault.customers.create(s, CustomerInput(email=email, first_name="P")).id


def test_a_request_filed_by_a_session_is_verified_at_once(vault: Vault) -> None:
    """No token is handed out: the request is verified on filing, its history says by
    whom, and the desk may process it."""
    cid = _customer(vault)
    desk = Privacy.of(vault).desk
    with vault.unit(_subject(cid)) as s:
        view = desk.file_verified(s, DsrInput("access", cid))
    assert (view.status, view.verified_at is not None, view.verification_attempts_left) == (
        DsrStatus.VERIFIED,
        True,
        5,
    )
    assert [(e.status, e.note) for e in view.history] == [
        (DsrStatus.RECEIVED, None),
        (DsrStatus.VERIFIED, "verified by a signed-in session"),
    ]
    with vault.unit(OFFICER) as s:
        done = desk.process(s, view.id)
    assert done.request.status is DsrStatus.COMPLETED
    assert done.bundle is not None


def test_only_the_data_subject_itself_files_a_verified_request(vault: Vault) -> None:
    """An officer, or a data subject for someone else, cannot skip the verification."""
    cid, other = _customer(vault), _customer(vault, email="q@example.com")
    desk = Privacy.of(vault).desk
    for context, customer in ((OFFICER, cid), (_subject(other), cid)):
        with pytest.raises(AccessDenied), vault.unit(context) as s:
            desk.file_verified(s, DsrInput("erasure", customer))


def test_an_erasure_from_the_page_waits_for_the_desks_approval(vault: Vault) -> None:
    """Until an officer approves it, nobody processes it; approved, it erases."""
    cid = _customer(vault)
    desk = Privacy.of(vault).desk
    with vault.unit(_subject(cid)) as s:
        view = desk.file_verified(s, DsrInput("erasure", cid))
    assert view.result["approval"] == "pending"
    for context in (_subject(cid), OFFICER):
        with pytest.raises(RequestStateError, match="approval"), vault.unit(context) as s:
            desk.process(s, view.id)
    with pytest.raises(AccessDenied), vault.unit(_subject(cid)) as s:
        desk.approve(s, view.id)
    with vault.unit(OFFICER) as s:
        approved = desk.approve(s, view.id)
    assert (approved.result["approval"], approved.history[-1].note) == ("approved", "approved")
    with pytest.raises(RequestStateError), vault.unit(OFFICER) as s:
        desk.approve(s, view.id)
    with vault.unit(OFFICER) as s:
        assert desk.process(s, view.id).request.status is DsrStatus.COMPLETED
    with vault.db.transaction() as s:
        from vault.storage.models import CustomerRow  # noqa: PLC0415

        assert s.get(CustomerRow, cid).status == CustomerStatus.ERASED.value  # type: ignore[union-attr]


def test_with_automatic_erasure_the_subject_processes_it_at_once(vault: Vault) -> None:
    """CVAULT_ERASURE_APPROVAL=automatic: no approval step; the data subject's own
    session may carry the erasure out."""
    automatic = Vault.open(
        dataclasses.replace(vault.settings, erasure_approval="automatic"),
        keyring=vault.keyring,
        database=vault.db,
        signer=vault.audit.signer,
        clock=vault.clock,
    )
    cid = _customer(automatic)
    desk = Privacy.of(automatic).desk
    with automatic.unit(_subject(cid)) as s:
        view = desk.file_verified(s, DsrInput("erasure", cid))
        assert "approval" not in view.result
        assert desk.process(s, view.id).request.status is DsrStatus.COMPLETED
