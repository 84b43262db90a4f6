"""The privacy page (/privacy) through the real app: sign-in with a code received by a real
SMTP server on loopback, the session, and what a customer can see and do."""

from __future__ import annotations

import io
import json
import re
import uuid
import zipfile

from sqlalchemy import select
from starlette.testclient import TestClient

from consent import Privacy
from consent.receipts import verify_receipt
from policies.purposes import purpose_info
from tests.conftest import FrozenClock
from tests.pages import (
    ANN,
    Mailbox,
    code_of,
    csrf_of,
    make_customer,
    sign_in,
)
from vault.authorization.context import AccessContext, Actor
from vault.crypto.signing import ed25519_verify
from vault.runtime import Vault
from vault.storage.models import AuditEntryRow
from vault.types import ConsentState

OFFICER = AccessContext(Actor("officer-1", "compliance_officer"), "compliance")


def _audit(vault: Vault) -> list[dict[str, object]]:
    with vault.db.transaction() as s:
        rows = s.scalars(select(AuditEntryRow.canonical).order_by(AuditEntryRow.id)).all()
    return [json.loads(raw) for raw in rows]


def test_the_answer_is_the_same_whether_or_not_the_contact_is_on_record(
    site: tuple[Vault, TestClient], mailbox: Mailbox
) -> None:
    """Known and unknown addresses get the same redirect and the same code page; only the
    known one receives a message, in the page's language (Thai here)."""
    vault, client = site
    make_customer(vault)
    client.cookies.set("cvault_lang", "th")
    answers = []
    for contact in ("nobody@example.com", ANN["email"]):
        form = client.get("/privacy")
        posted = client.post(
            "/privacy/sign-in",
            data={"csrf": csrf_of(form.text), "channel": "email", "contact": contact},
            follow_redirects=False,
        )
        code_page = client.get("/privacy/code")
        answers.append((posted.status_code, posted.headers["location"], code_page.text))
    assert answers[0] == answers[1]
    message = mailbox.wait(1)
    assert (message["To"], message["Content-Language"]) == (ANN["email"], "th")
    assert message["Subject"] != "Your sign-in code"  # translated
    assert len(code_of(message)) == 8
    assert len(mailbox.messages) == 1


def test_a_customer_signs_in_with_the_code_from_the_mail(
    site: tuple[Vault, TestClient], mailbox: Mailbox
) -> None:
    """The code from the message opens a session: an HttpOnly, SameSite=Strict cookie (not
    Secure over plain HTTP), and the data page shows every field in clear."""
    vault, client = site
    make_customer(vault)
    page = client.get("/privacy")
    client.post(
        "/privacy/sign-in",
        data={"csrf": csrf_of(page.text), "channel": "email", "contact": ANN["email"]},
    )
    code = code_of(mailbox.wait())
    form = client.get("/privacy/code")
    assert 'autocomplete="one-time-code"' in form.text
    answer = client.post(
        "/privacy/code",
        data={"csrf": csrf_of(form.text), "code": f"{code[:4]}-{code[4:]}"},  # pasted with a dash
        follow_redirects=False,
    )
    cookie = next(c for c in answer.headers.get_list("set-cookie") if "cvault_session=" in c)
    flags = {part.strip() for part in cookie.split(";")[1:]}
    assert (answer.headers["location"], flags) == (
        "/privacy/data",
        {"Path=/", "HttpOnly", "SameSite=Strict"},
    )
    data = client.get("/privacy/data").text
    for value in (ANN["email"], ANN["phone"], ANN["first_name"], "Bangkok", "12 Sukhumvit Rd"):
        assert value in data


def test_a_wrong_code_is_refused_without_repeating_it(
    site: tuple[Vault, TestClient], mailbox: Mailbox
) -> None:
    """A wrong code answers 400 with a fixed sentence; nothing typed is echoed back."""
    vault, client = site
    make_customer(vault)
    page = client.get("/privacy")
    client.post(
        "/privacy/sign-in",
        data={"csrf": csrf_of(page.text), "channel": "email", "contact": ANN["email"]},
    )
    mailbox.wait()
    form = client.get("/privacy/code")
    answer = client.post(
        "/privacy/code", data={"csrf": csrf_of(form.text), "code": "<b>99887766</b>"}
    )
    assert answer.status_code == 400
    assert ("99887766" in answer.text, "&lt;b&gt;" in answer.text) == (False, False)
    assert "cvault_session" not in answer.headers.get("set-cookie", "")


def test_every_page_read_is_audited_and_in_the_access_history(
    site: tuple[Vault, TestClient], mailbox: Mailbox
) -> None:
    """The session acts as the data subject with purpose self: its reads are audit entries
    of role data_subject, actor privacy:<session>, and the access history page lists them."""
    vault, client = site
    cid = make_customer(vault)
    sign_in(client, mailbox)
    reads = [
        (e["role"], e["purpose"], e["action"], str(e["actor"]).startswith("privacy:"))
        for e in _audit(vault)
        if e["customer"] == str(cid) and e["action"] in ("pii.access", "interactions.read")
    ]
    assert reads == [("data_subject", "self", "pii.access", True)]  # details and activity
    history = client.get("/privacy/access").text
    assert history.count("<tr>") >= 2  # a header row and the read
    client.get("/privacy/consents")
    page = client.get("/privacy/requests").text
    client.post("/privacy/requests", data={"csrf": csrf_of(page), "type": "access"})
    read_fields = {
        name
        for e in _audit(vault)
        if e["customer"] == str(cid) and e["action"] == "pii.access" and e["role"] == "data_subject"
        for name in e["fields"]  # type: ignore[attr-defined]
    }
    assert {"email", "consent", "data_requests", "access_history"} <= read_fields
    listed = client.get("/privacy/access").text
    for label in ("Consents", "Requests", "Access history"):
        assert label in listed


def test_withdrawing_a_consent_is_one_action_like_granting_it(
    site: tuple[Vault, TestClient], mailbox: Mailbox
) -> None:
    """Each consent purpose shows its legal basis and description; one button grants, one
    withdraws; the history offers the signed receipt of each change."""
    vault, client = site
    cid = make_customer(vault)
    sign_in(client, mailbox)
    page = client.get("/privacy/consents").text
    assert "Send marketing e-mail: newsletters, offers, abandoned-cart reminders." in page
    for change in ("grant", "withdraw"):
        page = client.get("/privacy/consents").text
        done = client.post(
            "/privacy/consents",
            data={"csrf": csrf_of(page), "purpose": "marketing_email", "change": change},
        )
        assert done.status_code == 200
    with vault.unit(OFFICER) as s:
        states = {c.purpose.value: c.state for c in Privacy.of(vault).ledger.status(s, cid)}
    assert states["marketing_email"] is ConsentState.WITHDRAWN
    link = re.search(r'href="(/privacy/consents/[0-9a-f-]+/receipt)"', done.text)
    assert link is not None
    receipt = client.get(link.group(1))
    assert receipt.headers["content-type"].startswith("application/json")
    body = verify_receipt(receipt.json(), ed25519_verify, trusted_key=vault.audit.public_vkey)
    assert (body["state"], body["piiPrincipalId"]) == ("withdrawn", str(cid))


def test_the_consent_form_records_the_notice_version_it_showed(
    site: tuple[Vault, TestClient], mailbox: Mailbox
) -> None:
    """Each consent form carries its purpose's current notice version; the change records
    the version the form carried (that is what the customer saw), else the current one."""
    vault, client = site
    cid = make_customer(vault)
    sign_in(client, mailbox)
    page = client.get("/privacy/consents").text
    current = purpose_info("marketing_sms").notice_version
    assert f'<input type="hidden" name="notice" value="{current}">' in page
    client.post(
        "/privacy/consents",
        data={"csrf": csrf_of(page), "purpose": "marketing_sms", "change": "grant",
              "notice": "2025-06"},
    )  # fmt: skip
    page = client.get("/privacy/consents").text
    client.post(
        "/privacy/consents",
        data={"csrf": csrf_of(page), "purpose": "marketing_sms", "change": "withdraw"},
    )
    with vault.unit(OFFICER) as s:
        history = Privacy.of(vault).ledger.history(s, cid)
    assert [r.notice_version for r in history] == ["2025-06", current]


def test_a_copy_is_downloadable_once_processed_by_a_link_that_expires(
    site: tuple[Vault, TestClient], mailbox: Mailbox, clock: FrozenClock
) -> None:
    """The page files an access request already verified; once the desk processed it the
    page offers a link that works for 15 minutes, in this session only."""
    vault, client = site
    make_customer(vault)
    sign_in(client, mailbox)
    page = client.get("/privacy/requests").text
    filed = client.post("/privacy/requests", data={"csrf": csrf_of(page), "type": "access"})
    assert 'data-state="verified"' in filed.text
    desk = Privacy.of(vault).desk
    with vault.unit(OFFICER) as s:
        (request,) = desk.list(s).items
        desk.process(s, request.id)
    page = client.get("/privacy/requests").text
    link = re.search(r'href="(/privacy/requests/[0-9a-f-]+/bundle\?[^"]+)"', page)
    assert link is not None
    url = link.group(1).replace("&amp;", "&")
    bundle = client.get(url)
    assert bundle.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(bundle.content)) as archive:
        assert json.loads(archive.read("bundle.json"))["profile"]["email"] == ANN["email"]
    assert client.get(url[:-3] + "AAA").status_code == 404  # a changed signature
    clock.advance(minutes=10)
    client.get("/privacy/data")  # the session stays alive
    clock.advance(minutes=6)
    assert client.get(url).status_code == 404  # the link expired


def test_an_erasure_waits_for_approval_and_the_page_shows_its_state(
    site: tuple[Vault, TestClient], mailbox: Mailbox
) -> None:
    """The confirmation page says what happens and what is kept; the request then waits for
    the desk's approval; once approved and processed the session ends, the browser that
    held it is told once that the data is erased, and the address no longer gets a code."""
    vault, client = site
    make_customer(vault)
    sign_in(client, mailbox)
    confirm = client.get("/privacy/erasure").text
    assert "What we keep, because the law requires it" in confirm
    requests = client.post("/privacy/erasure", data={"csrf": csrf_of(confirm), "confirm": "yes"})
    assert 'data-state="awaiting_approval"' in requests.text
    desk = Privacy.of(vault).desk
    with vault.unit(OFFICER) as s:
        (request,) = desk.list(s).items
        desk.approve(s, request.id)
        desk.process(s, request.id)
    after = client.get("/privacy/requests", follow_redirects=False)
    assert (after.status_code, "Your data is erased" in after.text) == (200, True)
    assert "cvault_session" not in client.cookies  # told once: the cookie is cleared
    page = client.get("/privacy")
    assert "Your data is erased" not in page.text
    client.post(
        "/privacy/sign-in",
        data={"csrf": csrf_of(page.text), "channel": "email", "contact": ANN["email"]},
    )
    assert len(mailbox.messages) == 1  # no code was made, so none is queued


def test_signing_out_revokes_the_session_for_good(
    site: tuple[Vault, TestClient], mailbox: Mailbox
) -> None:
    """After sign-out, the old cookie replayed no longer reaches any page."""
    vault, client = site
    make_customer(vault)
    sign_in(client, mailbox)
    cookie = client.cookies.get("cvault_session")
    page = client.get("/privacy/data").text
    client.post("/privacy/sign-out", data={"csrf": csrf_of(page)})
    client.cookies.set("cvault_session", str(cookie))
    replay = client.get("/privacy/data", follow_redirects=False)
    assert (replay.status_code, replay.headers["location"]) == (303, "/privacy")


def test_the_session_ends_after_fifteen_idle_minutes(
    site: tuple[Vault, TestClient], mailbox: Mailbox, clock: FrozenClock
) -> None:
    vault, client = site
    make_customer(vault)
    sign_in(client, mailbox)
    clock.advance(minutes=15, seconds=1)
    assert client.get("/privacy/data", follow_redirects=False).status_code == 303


def test_a_form_without_its_sessions_csrf_token_is_refused(
    site: tuple[Vault, TestClient], mailbox: Mailbox
) -> None:
    """No token, another browser's token, or the token from before signing in: 403."""
    vault, client = site
    make_customer(vault)
    before = csrf_of(client.get("/privacy").text)
    assert client.post("/privacy/sign-in", data={"channel": "email"}).status_code == 403
    other = TestClient(client.app)
    foreign = csrf_of(other.get("/privacy").text)
    refused = client.post(
        "/privacy/sign-in", data={"csrf": foreign, "channel": "email", "contact": ANN["email"]}
    )
    assert refused.status_code == 403
    sign_in(client, mailbox)
    stale = client.post(
        "/privacy/consents", data={"csrf": before, "purpose": "analytics", "change": "grant"}
    )
    assert stale.status_code == 403


def test_no_personal_value_is_ever_in_a_url(
    site: tuple[Vault, TestClient], mailbox: Mailbox
) -> None:
    """Every link and form target of every page holds ids and words only."""
    vault, client = site
    make_customer(vault)
    sign_in(client, mailbox)
    targets: list[str] = []
    for path in ("/privacy/data", "/privacy/consents", "/privacy/access", "/privacy/requests"):
        html = client.get(path).text
        targets += re.findall(r'(?:href|action|src)="([^"]*)"', html)
    leaked = [t for t in targets for v in (*ANN.values(), "Bangkok") if v in t]
    assert (len(targets) > 20, leaked) == (True, [])


def test_a_request_id_that_is_not_the_customers_is_not_found(
    site: tuple[Vault, TestClient], mailbox: Mailbox
) -> None:
    """A made-up receipt id, or one that is not a UUID, answers a plain 404 page."""
    vault, client = site
    make_customer(vault)
    sign_in(client, mailbox)
    for path in (f"/privacy/consents/{uuid.uuid4()}/receipt", "/privacy/consents/<x>/receipt"):
        answer = client.get(path)
        assert (answer.status_code, "<x>" in answer.text) == (404, False)


def test_an_error_page_does_not_carry_the_path_asked_for(
    site: tuple[Vault, TestClient], mailbox: Mailbox
) -> None:
    """A 404 for a made-up path keeps nothing of it, not even in its language links: they
    lead back to the section's home."""
    vault, client = site
    make_customer(vault)
    sign_in(client, mailbox)
    answer = client.get("/privacy/consents/zzprobezz/receipt")
    links = re.findall(r'href="(/lang/[^"]*)"', answer.text)
    assert (answer.status_code, "zzprobezz" in answer.text) == (404, False)
    assert links == [f"/lang/{code}?next=/privacy" for code in ("en", "fa", "th", "zh_Hans")]


def test_no_log_line_holds_the_contact_or_the_code(
    site: tuple[Vault, TestClient], mailbox: Mailbox
) -> None:
    """Signing in, reading and failing: the log lines name paths, statuses and classes,
    never the address typed, a code or a personal value."""
    import structlog  # noqa: PLC0415

    vault, client = site
    make_customer(vault)
    with structlog.testing.capture_logs() as logs:
        sign_in(client, mailbox)
        client.get("/privacy/data")
        form = client.get("/privacy/code").text
        client.post("/privacy/code", data={"csrf": csrf_of(form), "code": "12345678"})
    code = code_of(mailbox.wait())
    text = json.dumps(logs, default=str)
    assert len(logs) >= 5  # one line per request at least
    assert [v for v in (*ANN.values(), code, "Bangkok") if v in text] == []
