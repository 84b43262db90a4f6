"""Sign-in codes and page sessions (vault.sign_in): what the privacy page stands on."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from audit.entries import AuditAction
from tests.conftest import CTX, FrozenClock
from vault.customers import CustomerInput
from vault.runtime import Vault
from vault.sign_in import (
    MAX_WRONG_TRIES,
    IssuedCode,
    SessionErased,
    SessionInvalid,
    SignInCodes,
    SignInFailed,
    SignInLimited,
    SignInLimits,
    sign_in_context,
)
from vault.storage.models import AuditEntryRow, PageSessionRow, SignInCodeRow

BROWSER = "browser-one"


def _customer(
    vault: Vault, email: str = "ann@example.com", phone: str = "+66812345678"
) -> uuid.UUID:
    with vault.unit(CTX) as s:
        return vault.customers.create(
            s, CustomerInput(email=email, phone=phone, first_name="Ann")
        ).id


def _request(
    vault: Vault, contact: str, channel: str = "email", browser: str = BROWSER
) -> IssuedCode | None:
    with vault.unit(sign_in_context("client-a")) as s:
        return vault.sign_in.request(s, channel, contact, browser=browser)


def _verify(vault: Vault, code: str, browser: str = BROWSER) -> uuid.UUID:
    with vault.unit(sign_in_context("client-a")) as s:
        return vault.sign_in.verify(s, code, browser=browser)


def _sign_in_steps(vault: Vault) -> list[tuple[str, str, str | None]]:
    import json  # noqa: PLC0415

    with vault.db.transaction() as s:
        rows = s.scalars(
            select(AuditEntryRow.canonical)
            .where(AuditEntryRow.action == AuditAction.SIGN_IN.value)
            .order_by(AuditEntryRow.id)
        ).all()
    out = []
    for raw in rows:
        entry = json.loads(raw)
        out.append((entry["detail"]["step"], entry["outcome"], entry["customer"]))
    return out


def test_a_code_goes_to_the_customer_on_record_and_signs_in_once(vault: Vault) -> None:
    """A code is issued for the one customer with that email (any case), to the address on
    record; it is 8 digits and signs in exactly once; the database keeps a digest, never
    the code."""
    cid = _customer(vault)
    issued = _request(vault, "ANN@Example.com")
    assert issued is not None
    assert (issued.customer_id, issued.channel, issued.address) == (cid, "email", "ann@example.com")
    assert (len(issued.code), issued.code.isdigit()) == (8, True)
    with vault.db.transaction() as s:
        stored = s.scalars(select(SignInCodeRow.code_digest)).all()
    assert len(stored) == 1
    assert issued.code not in stored[0]
    assert _verify(vault, f"{issued.code[:4]} {issued.code[4:]}") == cid  # pasted with a space
    with pytest.raises(SignInFailed):
        _verify(vault, issued.code)
    assert _sign_in_steps(vault) == [
        ("requested", "success", str(cid)),
        ("signed_in", "success", str(cid)),
        ("failed", "failed", None),
    ]


def test_an_unknown_contact_gets_no_code_and_the_same_kind_of_answer(vault: Vault) -> None:
    """Nobody with that address: no code, no row, no error (the page answers the same);
    the audit entry names no customer."""
    _customer(vault)
    assert _request(vault, "nobody@example.com") is None
    with vault.db.transaction() as s:
        assert s.scalars(select(SignInCodeRow)).all() == []
    assert _sign_in_steps(vault) == [("requested", "success", None)]


def test_a_phone_number_on_record_gets_a_code(vault: Vault) -> None:
    """The phone on record (typed with spaces) gets a code on the phone channel, sent to the
    number as recorded."""
    cid = _customer(vault)
    issued = _request(vault, "+66 81 234 5678", channel="phone")
    assert issued is not None
    assert (issued.customer_id, issued.channel, issued.address) == (cid, "phone", "+66812345678")
    assert _verify(vault, issued.code) == cid


def test_a_code_expires_after_ten_minutes(vault: Vault, clock: FrozenClock) -> None:
    """Ten minutes after it was issued, the code no longer signs in."""
    _customer(vault)
    issued = _request(vault, "ann@example.com")
    assert issued is not None
    clock.advance(minutes=10)
    with pytest.raises(SignInFailed):
        _verify(vault, issued.code)


def test_five_wrong_tries_invalidate_the_code(vault: Vault) -> None:
    """After five wrong codes the right one fails too; each wrong try is counted although
    its unit of work rolled back."""
    _customer(vault)
    issued = _request(vault, "ann@example.com")
    assert issued is not None
    wrong = f"{(int(issued.code) + 1) % 10**8:08d}"
    for _ in range(MAX_WRONG_TRIES):
        with pytest.raises(SignInFailed):
            _verify(vault, wrong)
    with vault.db.transaction() as s:
        row = s.scalars(select(SignInCodeRow)).one()
        assert (row.attempts, row.invalidated_at is not None) == (MAX_WRONG_TRIES, True)
    with pytest.raises(SignInFailed):
        _verify(vault, issued.code)


def test_a_new_code_invalidates_the_old_one(vault: Vault) -> None:
    """Resending makes a new code; the earlier one stops working."""
    cid = _customer(vault)
    first = _request(vault, "ann@example.com")
    second = _request(vault, "ann@example.com")
    assert first is not None
    assert second is not None
    with pytest.raises(SignInFailed):
        _verify(vault, first.code)
    assert _verify(vault, second.code) == cid


def test_a_code_works_only_in_the_browser_that_asked(vault: Vault) -> None:
    """A code is bound to the browser that requested it."""
    _customer(vault)
    issued = _request(vault, "ann@example.com", browser="browser-one")
    assert issued is not None
    with pytest.raises(SignInFailed):
        _verify(vault, issued.code, browser="browser-two")


def test_rate_limits_per_contact_and_per_client(vault: Vault) -> None:
    """Past the per-contact limit a contact gets no more codes (known or not alike); past
    the per-client limit a client gets none for any contact."""
    codes = SignInCodes(
        vault.customers,
        vault.page_secrets,
        SignInLimits(per_contact="2/hour", per_client="3/hour"),
        db=vault.db,
        audit=vault.audit,
        clock=vault.clock,
    )

    def ask(contact: str, client: str) -> str:
        try:
            with vault.unit(sign_in_context(client)) as s:
                codes.request(s, "email", contact, browser=BROWSER)
        except SignInLimited as exc:
            return exc.scope
        return "ok"

    _customer(vault)
    assert [ask("ann@example.com", f"c{i}") for i in range(3)] == ["ok", "ok", "contact"]
    assert [ask("x@example.com", f"c{i}") for i in range(3)] == ["ok", "ok", "contact"]
    assert [ask(f"p{i}@example.com", "same") for i in range(4)] == ["ok", "ok", "ok", "client"]


def test_sessions_end_when_idle_revoked_or_erased(vault: Vault, clock: FrozenClock) -> None:
    """A session resumes while used within 15 minutes; it ends after 15 idle minutes, on
    sign-out, and when its customer is erased: the codes go, ended sessions go, and a live
    one ends and says so (SessionErased) until its expiry, never resuming."""
    cid = _customer(vault)
    sessions = vault.page_sessions

    def open_one() -> str:
        with vault.unit(sign_in_context("c")) as s:
            return sessions.open_for_customer(s, cid).cookie

    def resume(cookie: str | None) -> uuid.UUID | None:
        with vault.db.transaction() as s:
            return sessions.resume(s, cookie, "privacy").customer_id

    cookie = open_one()
    clock.advance(minutes=14)
    assert resume(cookie) == cid
    clock.advance(minutes=14)
    assert resume(cookie) == cid  # the idle clock restarted
    clock.advance(minutes=15, seconds=1)
    with pytest.raises(SessionInvalid, match="expired"):
        resume(cookie)

    cookie = open_one()
    with pytest.raises(SessionInvalid, match="forged"):
        resume(cookie[:-2] + "xx")
    with vault.db.transaction() as s:
        live = sessions.resume(s, cookie, "privacy")
    with vault.unit(live.context("self")) as s:
        sessions.revoke(s, live)
    with pytest.raises(SessionInvalid, match="signed out"):
        resume(cookie)
    assert _sign_in_steps(vault)[-1] == ("signed_out", "success", str(cid))

    cookie = open_one()
    _request(vault, "ann@example.com")
    with vault.unit(CTX) as s:
        vault.erasure.erase(s, cid)
    with pytest.raises(SessionErased):
        resume(cookie)
    with vault.db.transaction() as s:
        kept = s.scalars(select(PageSessionRow)).all()
        assert [(r.customer_id, r.revoked_at is not None) for r in kept] == [(cid, True)]
        assert s.scalars(select(SignInCodeRow)).all() == []
    clock.advance(hours=13)
    with pytest.raises(SessionInvalid, match="signed out"):
        resume(cookie)  # past its expiry the ended session says nothing more
    assert _request(vault, "ann@example.com") is None


def test_a_console_session_acts_as_the_staff_member_it_was_opened_for(
    vault: Vault, clock: FrozenClock
) -> None:
    """A console session names its subject and role, lasts 30 idle minutes, and is not a
    privacy session (a privacy page refuses its cookie)."""
    with vault.unit(sign_in_context("c")) as s:
        cookie = vault.page_sessions.open_for_staff(s, "officer-7", "compliance_officer").cookie
    clock.advance(minutes=29)
    with vault.db.transaction() as s:
        staff = vault.page_sessions.resume(s, cookie, "console")
        with pytest.raises(SessionInvalid):
            vault.page_sessions.resume(s, cookie, "privacy")
    context = staff.context("compliance")
    assert (context.actor.subject, context.actor.role, context.actor.customer_id) == (
        "officer-7",
        "compliance_officer",
        None,
    )
