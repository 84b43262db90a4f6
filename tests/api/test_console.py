"""The compliance console (/console) through the real app: one-time sign-in links, the data
subject requests queue and its actions, the audit trail (search, export, verification),
CSRF, and that every console action is audited as the signed-in staff member."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient
from typer.testing import CliRunner

from api.cli import app as cli
from consent import ConsentChange, Privacy
from consent.dsr.requests import DsrInput
from tests.api.test_cli import cli_env
from tests.conftest import FrozenClock
from tests.pages import ANN, Mailbox, csrf_of, make_customer, sign_in
from vault.authorization.context import AccessContext
from vault.errors import InvalidInput
from vault.runtime import Vault
from vault.storage.models import AuditEntryRow, DsrRequestRow, PageSessionRow
from vault.types import CustomerStatus, DsrType

OFFICER = "officer-ann"


def link_for(vault: Vault, role: str = "compliance_officer", sub: str = OFFICER) -> str:
    with vault.unit(AccessContext.system("console-link")) as s:
        return f"/console/link?t={vault.page_sessions.issue_link(s, sub, role)}"


def console(vault: Vault, client: TestClient, role: str = "compliance_officer") -> str:
    """Sign in through a link; returns the console's home page."""
    landed = client.get(link_for(vault, role))
    assert landed.status_code == 200, landed.status_code
    return landed.text


def audit(vault: Vault) -> list[dict[str, Any]]:
    with vault.db.transaction() as s:
        rows = s.scalars(select(AuditEntryRow.canonical).order_by(AuditEntryRow.id)).all()
    return [json.loads(raw) for raw in rows]


def _ids(page: str) -> list[str]:
    return re.findall(r'data-request="([0-9a-f-]+)"', page)


def file_request(vault: Vault, customer_id: uuid.UUID, kind: DsrType) -> uuid.UUID:
    desk = Privacy.of(vault).desk
    with vault.unit(AccessContext.system("test", purpose="compliance")) as s:
        filed = desk.create(s, DsrInput(type=kind.value, customer_id=customer_id))
        desk.verify(s, filed.request.id, filed.verification_token)
    return filed.request.id


# -- sign-in ---------------------------------------------------------------------------


def test_a_link_signs_in_once_and_acts_as_its_role(
    site: tuple[Vault, TestClient], capsys: pytest.CaptureFixture[str]
) -> None:
    """The link opens a console session as the officer; the same link a second time (even
    from a fresh browser) is refused, the sign-in is audited under the officer, and no log
    line holds the link's token."""
    vault, client = site
    link = link_for(vault)
    home = client.get(link)
    assert (home.status_code, 'data-actor="officer-ann"' in home.text) == (200, True)
    again = TestClient(client.app).get(link)
    assert (again.status_code, "cvault_console" in again.headers.get("set-cookie", "")) == (
        400, False,
    )  # fmt: skip
    signed = [e for e in audit(vault) if e["detail"].get("step") == "signed_in"]
    assert [(e["actor"], e["role"], e["purpose"]) for e in signed] == [
        (OFFICER, "compliance_officer", "compliance")
    ]
    logged = capsys.readouterr()
    assert '"path":"/console/link"' in logged.err
    assert link.rsplit("=", 1)[1] not in logged.out + logged.err


def test_a_link_expires_after_five_minutes(
    site: tuple[Vault, TestClient], clock: FrozenClock
) -> None:
    vault, client = site
    link = link_for(vault)
    clock.advance(minutes=5)
    assert client.get(link).status_code == 400
    assert client.get("/console/requests", follow_redirects=False).status_code == 303


def test_only_staff_roles_get_a_link(vault: Vault) -> None:
    """data_subject and ingest_service (or any other role) are refused."""
    for role in ("data_subject", "ingest_service", "support_agent"):
        with pytest.raises(InvalidInput), vault.unit(AccessContext.system("t")) as s:
            vault.page_sessions.issue_link(s, "someone", role)


def test_the_cli_prints_a_link_and_refuses_other_roles(
    tmp_path: Path, database_url: tuple[str, str | None]
) -> None:
    env = cli_env(tmp_path, database_url)
    runner = CliRunner()
    assert runner.invoke(cli, ["init"], env=env).exit_code == 0
    printed = runner.invoke(
        cli, ["console", "link", "--role", "compliance_officer", "--sub", "ann"], env=env
    )
    refused = runner.invoke(
        cli, ["console", "link", "--role", "data_subject", "--sub", "ann"], env=env
    )
    assert printed.exit_code == 0
    assert re.fullmatch(
        r"http://127\.0\.0\.1:8000/console/link\?t=[A-Za-z0-9_-]{43}\n", printed.stdout
    )
    assert refused.exit_code == 2


def test_an_admin_acts_with_the_administration_purpose(site: tuple[Vault, TestClient]) -> None:
    vault, client = site
    console(vault, client, role="admin")
    signed = [e for e in audit(vault) if e["detail"].get("step") == "signed_in"]
    assert [(e["role"], e["purpose"]) for e in signed] == [("admin", "administration")]


# -- the requests queue ------------------------------------------------------------------


def test_the_queue_filters_sorts_by_due_date_and_exports_csv(
    site: tuple[Vault, TestClient], clock: FrozenClock
) -> None:
    vault, client = site
    ann = make_customer(vault)
    bob = make_customer(vault, email="bob@example.com", phone="+66812345679")
    late = file_request(vault, ann, DsrType.ACCESS)
    clock.advance(days=3)
    fresh = file_request(vault, bob, DsrType.RESTRICTION)
    clock.advance(days=30)  # the first is now overdue, the second not
    console(vault, client)
    page = client.get("/console/requests").text
    rows = _ids(page)
    assert rows == [str(late), str(fresh)]
    assert 'class="overdue"' in page
    overdue = re.findall(
        r'data-request="([0-9a-f-]+)"', client.get("/console/requests?overdue=yes").text
    )
    by_type = re.findall(
        r'data-request="([0-9a-f-]+)"', client.get("/console/requests?type=restriction").text
    )
    assert (overdue, by_type) == ([str(late)], [str(fresh)])
    assert client.get("/console/requests?status=nonsense").status_code == 400
    exported = client.get("/console/requests.csv")
    table = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["id"], r["type"], r["overdue"], r["days_left"]) for r in table] == [
        (str(late), "access", "yes", "-3"),
        (str(fresh), "restriction", "no", "0"),
    ]


def test_approve_then_process_a_page_filed_erasure(
    site: tuple[Vault, TestClient], mailbox: Mailbox
) -> None:
    """The customer asks for erasure on /privacy; the officer approves and processes it in
    the console; the customer then reads as erased and can no longer sign in."""
    vault, client = site
    customer_id = make_customer(vault)
    customer = TestClient(client.app)
    sign_in(customer, mailbox)
    confirm = customer.get("/privacy/erasure").text
    customer.post("/privacy/erasure", data={"csrf": csrf_of(confirm), "confirm": "yes"})
    console(vault, client)
    page = client.get("/console/requests").text
    (request_id,) = re.findall(r'data-request="([0-9a-f-]+)" data-state="awaiting_approval"', page)
    token = csrf_of(page)
    refused = client.post(f"/console/requests/{request_id}/process", data={"csrf": token})
    assert refused.status_code == 400  # it awaits approval
    approved = client.post(f"/console/requests/{request_id}/approve", data={"csrf": token})
    assert f'data-request="{request_id}" data-state="verified"' in approved.text
    done = client.post(f"/console/requests/{request_id}/process", data={"csrf": token})
    assert f'data-request="{request_id}" data-state="completed"' in done.text
    with vault.db.transaction() as s:
        status = s.scalar(
            select(DsrRequestRow.status).where(DsrRequestRow.id == uuid.UUID(request_id))
        )
    assert status == "completed"
    told = customer.get("/privacy/data", follow_redirects=False)
    assert (told.status_code, "Your data is erased" in told.text) == (200, True)
    with vault.unit(AccessContext.system("t")) as s:
        seen = vault.customers.get(s, customer_id)
    assert (seen.status, seen.email, seen.first_name) == (CustomerStatus.ERASED, None, None)
    start = customer.get("/privacy").text
    customer.post(
        "/privacy/sign-in",
        data={"csrf": csrf_of(start), "channel": "email", "contact": ANN["email"]},
    )
    assert len(mailbox.messages) == 1  # no new code: the erased contact is not on record
    steps = [
        (e["customer"], e["detail"].get("step"), e["detail"].get("status"))
        for e in audit(vault)
        if e["action"] == "dsr.change" and e["actor"] == OFFICER
    ]
    assert steps == [
        (str(customer_id), "approved", "verified"),
        (str(customer_id), None, "in_progress"),
        (str(customer_id), None, "completed"),
    ]


def test_reject_and_extend_need_a_reason_and_extend_works_once(
    site: tuple[Vault, TestClient],
) -> None:
    vault, client = site
    ann = make_customer(vault)
    first = file_request(vault, ann, DsrType.ACCESS)
    second = file_request(vault, ann, DsrType.RESTRICTION)
    token = csrf_of(console(vault, client))
    extend = f"/console/requests/{first}/extend"
    assert client.post(extend, data={"csrf": token, "months": "1", "reason": ""}).status_code == 400
    ok = client.post(extend, data={"csrf": token, "months": "1", "reason": "complex case"})
    assert ok.status_code == 200
    again = client.post(extend, data={"csrf": token, "months": "1", "reason": "again"})
    assert again.status_code == 400
    rejected = client.post(
        f"/console/requests/{second}/reject", data={"csrf": token, "reason": "not ours"}
    )
    assert f'data-request="{second}" data-state="rejected"' in rejected.text


def test_a_console_post_without_its_csrf_token_is_refused(site: tuple[Vault, TestClient]) -> None:
    """No token, or another browser's token: 403 and nothing changes."""
    vault, client = site
    ann = make_customer(vault)
    request_id = file_request(vault, ann, DsrType.ACCESS)
    console(vault, client)
    other = TestClient(client.app)
    foreign = csrf_of(console(vault, other))
    path = f"/console/requests/{request_id}/reject"
    assert client.post(path, data={"reason": "x"}).status_code == 403
    assert client.post(path, data={"csrf": foreign, "reason": "x"}).status_code == 403
    with vault.db.transaction() as s:
        status = s.scalar(select(DsrRequestRow.status).where(DsrRequestRow.id == request_id))
    assert status == "verified"


def test_a_data_subject_session_cookie_does_not_open_the_console(
    site: tuple[Vault, TestClient], mailbox: Mailbox
) -> None:
    vault, client = site
    make_customer(vault)
    sign_in(client, mailbox)
    client.cookies.set("cvault_console", str(client.cookies.get("cvault_session")))
    assert client.get("/console/requests", follow_redirects=False).status_code == 303


# -- the audit trail -----------------------------------------------------------------------


def test_the_audit_search_finds_the_privacy_pages_reads(
    site: tuple[Vault, TestClient], mailbox: Mailbox
) -> None:
    vault, client = site
    customer_id = make_customer(vault)
    customer = TestClient(client.app)
    sign_in(customer, mailbox)
    customer.get("/privacy/data")
    console(vault, client)
    found = client.get(
        f"/console/audit?customer={customer_id}&action=pii.access&purpose=self&outcome=success"
    )
    assert found.status_code == 200
    assert found.text.count('data-action="pii.access"') >= 1
    none = client.get(
        f"/console/audit?customer={customer_id}&action=pii.access&purpose=marketing_email"
    )
    assert 'data-action="pii.access"' not in none.text
    assert client.get("/console/audit?customer=not-an-id").status_code == 400


def test_an_admin_cannot_search_the_trail(site: tuple[Vault, TestClient]) -> None:
    vault, client = site
    console(vault, client, role="admin")
    assert client.get("/console/audit").status_code == 403
    denied = [e for e in audit(vault) if e["action"] == "access.denied"]
    assert [e["actor"] for e in denied] == [OFFICER]


def test_an_exported_trail_verifies_and_a_tampered_one_is_named(
    site: tuple[Vault, TestClient], mailbox: Mailbox
) -> None:
    vault, client = site
    make_customer(vault)
    page = console(vault, client)
    client.get("/console/requests")
    exported = client.get("/console/audit/export.jsonl")
    assert exported.headers["content-type"].startswith("application/x-ndjson")
    lines = exported.content.splitlines()
    token = csrf_of(client.get("/console/audit/verify").text)
    ok = client.post(
        "/console/audit/verify", data={"csrf": token},
        files={"export": ("audit.jsonl", exported.content, "application/x-ndjson")},
    )  # fmt: skip
    assert (ok.status_code, 'data-verified="ok"' in ok.text) == (200, True)
    entry = json.loads(lines[2])
    entry["entry"]["actor"] = "someone-else"
    tampered = b"\n".join([*lines[:2], json.dumps(entry).encode(), *lines[3:]]) + b"\n"
    bad = client.post(
        "/console/audit/verify", data={"csrf": token},
        files={"export": ("audit.jsonl", tampered, "application/x-ndjson")},
    )  # fmt: skip
    assert (bad.status_code, 'data-verified="failed"' in bad.text) == (422, True)
    assert "First failure at position 1" in bad.text
    no_token = client.post(
        "/console/audit/verify", files={"export": ("audit.jsonl", exported.content, "text/plain")}
    )
    assert no_token.status_code == 403
    assert page


def test_every_console_action_is_audited_and_no_url_carries_pii(
    site: tuple[Vault, TestClient],
) -> None:
    vault, client = site
    ann = make_customer(vault)
    request_id = file_request(vault, ann, DsrType.ACCESS)
    token = csrf_of(console(vault, client))
    before = len(audit(vault))
    client.get("/console/requests")
    client.post(f"/console/requests/{request_id}/process", data={"csrf": token})
    client.get("/console/audit")
    client.get("/console/audit/checkpoints")
    entries = audit(vault)[before:]
    mine = {(e["action"], e["actor"]) for e in entries}
    assert {("dsr.change", OFFICER), ("audit.search", OFFICER)} <= mine
    pages = "".join(client.get(p).text for p in ("/console/requests", "/console/audit"))
    urls = re.findall(r'(?:href|action)="([^"]+)"', pages)
    assert not [u for u in urls if ANN["email"] in u or ANN["phone"] in u or "@" in u]
    assert 'data-request="' in pages


def test_the_queue_shows_a_legal_hold(site: tuple[Vault, TestClient]) -> None:
    vault, client = site
    ann = make_customer(vault)
    file_request(vault, ann, DsrType.ACCESS)
    with vault.unit(AccessContext.system("t", purpose="compliance")) as s:
        Privacy.of(vault).desk.place_hold(s, ann, "litigation")
    console(vault, client)
    table = list(csv.DictReader(io.StringIO(client.get("/console/requests.csv").text)))
    assert [r["legal_hold"] for r in table] == ["yes"]


# -- consent proof and the policy viewer ---------------------------------------------------


def test_the_consent_proof_lists_events_with_verified_receipts(
    site: tuple[Vault, TestClient],
) -> None:
    vault, client = site
    ann = make_customer(vault)
    ledger = Privacy.of(vault).ledger
    with vault.unit(AccessContext.system("t", purpose="compliance")) as s:
        granted = ledger.record(s, ann, ConsentChange("marketing_email", "granted"))
        withdrawn = ledger.record(s, ann, ConsentChange("marketing_email", "withdrawn"))
    console(vault, client)
    before = len(audit(vault))
    page = client.get(f"/console/consent?customer={ann}").text
    shown = re.findall(r'data-event="([0-9a-f-]+)" data-receipt="(\w+)"', page)
    assert shown == [(str(granted.id), "ok"), (str(withdrawn.id), "ok")]
    receipt = client.get(f"/console/consent/{granted.id}/receipt").json()
    assert receipt["receipt"]["consentReceiptID"] == str(granted.id)
    reads = [e for e in audit(vault)[before:] if e["customer"] == str(ann)]
    assert {e["actor"] for e in reads} == {OFFICER}
    assert client.get("/console/consent?customer=nobody").status_code == 400


def test_the_policy_viewer_explains_a_cell(site: tuple[Vault, TestClient]) -> None:
    vault, client = site
    console(vault, client)
    table = client.get("/console/policy?purpose=support").text
    assert 'data-cell="support_agent/email"' in table
    cell = client.get("/console/policy?purpose=support&role=support_agent&field=email").text
    with vault.unit(AccessContext.system("t")) as s:
        expected = vault.authz.explain(s, "support_agent", "email", "support")
    assert 'data-explained="support_agent/email"' in cell
    assert f"<strong>{expected.resolution.value}</strong>" in cell
    assert client.get("/console/policy?purpose=nonsense").status_code == 400


def test_a_link_is_stored_as_a_keyed_digest_and_is_no_session_cookie(
    site: tuple[Vault, TestClient],
) -> None:
    """The database never holds the link's token, and the token presented as a console
    cookie (sealed or not) opens nothing."""
    vault, client = site
    token = link_for(vault).rsplit("=", 1)[1]
    with vault.db.transaction() as s:
        digests = s.scalars(select(PageSessionRow.token_digest)).all()
    assert [token in d for d in digests] == [False]
    client.cookies.set("cvault_console", token)
    assert client.get("/console/requests", follow_redirects=False).status_code == 303


def test_malformed_query_values_get_a_fixed_error_page(site: tuple[Vault, TestClient]) -> None:
    """A bad cursor, id or word is a 400 or 404 page whose message does not repeat it."""
    vault, client = site
    console(vault, client)
    canary = "canary-value-7f3"
    for path in (
        f"/console/requests?after={canary}",
        f"/console/audit?after={canary}",
        f"/console/audit?since={canary}",
        f"/console/requests?type={canary}",
        f"/console/consent/{canary}/receipt",
    ):
        answer = client.get(path)
        main = answer.text.split('<main id="main"', 1)[1].split("</main>", 1)[0]
        assert (answer.status_code in {400, 404}, canary in main) == (True, False), path
    token = csrf_of(client.get("/console/requests").text)
    missing = client.post(f"/console/requests/{uuid.uuid4()}/approve", data={"csrf": token})
    assert missing.status_code == 404
