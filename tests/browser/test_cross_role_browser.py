"""Both pages, both roles, one story, in a real browser against a real server, a real SMTP
server and a real OpenID Connect provider on loopback:

a customer signs in with the code the SMTP server received, withdraws a consent, asks for
a copy; an officer signs in through the identity provider and processes it; the customer
downloads the copy and asks for erasure; the officer approves and processes the erasure;
the customer's page then says the data is erased, and the erased address gets no code any
more; the officer's audit search finds the customer's page reads; an export of the trail
uploaded to the console verifies, and a tampered one is named with its position."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from oidc_provider_mock import User, run_server_in_thread
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, expect
from sqlalchemy import func, select

from api.app import create_app
from consent import Privacy
from tests.browser.conftest import Served
from tests.conftest import CTX
from tests.pages import ANN, Mailbox, code_of, mailing_vault, make_customer, smtp_server
from vault.authorization.context import AccessContext, Actor
from vault.runtime import Vault
from vault.storage.models import SignInCodeRow

# oidc-provider-mock 0.3 still uses a hook that Authlib 1.9 warns about (in the provider).
pytestmark = pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning")

OFFICER_SUB = "officer-mira"
OFFICER = AccessContext(Actor(OFFICER_SUB, "compliance_officer"), "compliance")


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as box:
        yield box


@pytest.fixture
def provider() -> Iterator[str]:
    users = [User(sub=OFFICER_SUB, claims={"groups": ["privacy-team"]})]
    with run_server_in_thread(user_claims=users) as server:
        yield f"http://127.0.0.1:{server.server_port}"


@pytest.fixture
def site(
    vault: Vault, mailbox: Mailbox, provider: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Vault, Served]]:
    monkeypatch.setenv("CVAULT_OIDC_ISSUER", provider)
    monkeypatch.setenv("CVAULT_OIDC_CLIENT_ID", "customer-vault")
    monkeypatch.setenv("CVAULT_OIDC_CLIENT_SECRET", "test-secret")
    monkeypatch.setenv("CVAULT_OIDC_ROLES", "privacy-team=compliance_officer")
    mailing = mailing_vault(vault, mailbox)
    with Served(create_app(mailing, webhook_every=None, sequence_every=60)) as served:
        yield mailing, served


_REFUSED_UPLOAD = "the server responded with a status of 422"  # the tampered export's answer


def _own_errors(page: Page, origin: str) -> list[str]:
    """Console errors of the vault's own pages (a CSP violation or a missing asset is
    one); the identity provider's page is not ours to judge, and the 422 that answers the
    tampered upload is expected."""
    errors: list[str] = []

    def keep(message: ConsoleMessage) -> None:
        if message.type != "error" or not page.url.startswith(origin):
            return
        if _REFUSED_UPLOAD not in message.text:
            errors.append(message.text)

    page.on("console", keep)
    return errors


def _customer_signs_in(page: Page, url: str, mailbox: Mailbox) -> None:
    page.goto(f"{url}/privacy")
    page.get_by_label("E-mail address").fill(ANN["email"])
    page.get_by_role("button", name="Send me a code").first.click()
    expect(page).to_have_url(f"{url}/privacy/code")
    page.locator("#code").fill(code_of(mailbox.wait()))
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{url}/privacy/data")


def _officer_signs_in(context: BrowserContext, url: str) -> Page:
    page = context.new_page()
    page.goto(f"{url}/console")
    page.get_by_role("link", name="Sign in with your organisation's account").click()
    # The provider's own page: the officer picks their account there.
    page.get_by_role("button", name=OFFICER_SUB).click()
    expect(page).to_have_url(f"{url}/console")
    expect(page.locator(f"[data-actor='{OFFICER_SUB}']")).to_be_visible()
    return page


def _officer_acts(page: Page, url: str, kind: str, action: str) -> None:
    """The officer finds the customer's one open request of ``kind`` and acts on it."""
    page.goto(f"{url}/console/requests")
    row = page.locator("tr[data-request]", has_text=kind)
    row.get_by_role("button", name=action, exact=True).click()
    expect(page.locator("main")).to_be_visible()


def _tamper(exported: Path, tampered: Path) -> int:
    """A copy of the export with one entry's action changed; returns its position."""
    lines = exported.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        record = json.loads(line)
        entry = record.get("entry")
        if isinstance(entry, dict) and entry.get("action") == "pii.access":
            entry["action"] = "consent.read"
            lines[index] = json.dumps(record, separators=(",", ":"))
            tampered.write_text("\n".join(lines) + "\n", encoding="utf-8")
            return int(record["position"])
    raise AssertionError("the export holds no page read to tamper with")


def test_a_customer_and_an_officer_carry_an_erasure_through_both_pages(
    browser: Browser, site: tuple[Vault, Served], mailbox: Mailbox, tmp_path: Path
) -> None:
    vault, served = site
    url = served.url
    customer_id = make_customer(vault)
    ledger = Privacy.of(vault).ledger
    with vault.unit(CTX) as s:
        ledger.grant(s, customer_id, "marketing_email")

    # The customer: sign in, withdraw a consent, ask for a copy.
    customer_context = browser.new_context(locale="en-GB", accept_downloads=True)
    customer = customer_context.new_page()
    customer_errors = _own_errors(customer, url)
    _customer_signs_in(customer, url, mailbox)
    customer.get_by_role("link", name="Consents").click()
    card = customer.locator("li.card", has_text="Marketing e-mail")
    card.get_by_role("button", name="Withdraw consent").click()
    expect(customer.locator("li.card", has_text="Marketing e-mail")).to_contain_text("Withdrawn")
    customer.get_by_role("link", name="Requests").click()
    customer.get_by_role("button", name="Ask for a copy", exact=True).click()
    expect(customer.locator("td.status").first).to_have_attribute("data-state", "verified")

    # The officer: sign in through the identity provider, process the copy.
    officer_context = browser.new_context(locale="en-GB", accept_downloads=True)
    officer = _officer_signs_in(officer_context, url)
    officer_errors = _own_errors(officer, url)
    _officer_acts(officer, url, "Access", "Process")

    # The customer downloads the copy, then asks for erasure.
    customer.reload()
    with customer.expect_download() as download:
        customer.get_by_role("link", name="Download your data").click()
    with zipfile.ZipFile(io.BytesIO(download.value.path().read_bytes())) as archive:
        bundle = json.loads(archive.read("bundle.json"))
    assert (bundle["profile"]["email"], bundle["profile"]["first_name"]) == (
        ANN["email"],
        ANN["first_name"],
    )
    customer.get_by_role("link", name="Ask for erasure").click()
    customer.get_by_role("button", name="Yes, erase my data").click()
    erasure = customer.locator("tr", has_text="Erasure").locator("td.status")
    expect(erasure).to_have_attribute("data-state", "awaiting_approval")

    # The officer approves and processes it.
    _officer_acts(officer, url, "Erasure", "Approve")
    _officer_acts(officer, url, "Erasure", "Process")

    # The customer's page says it is done; the erased address gets no code any more.
    customer.reload()
    expect(customer.locator("h1")).to_have_text("Your data is erased")
    customer.goto(f"{url}/privacy")
    customer.get_by_label("E-mail address").fill(ANN["email"])
    customer.get_by_role("button", name="Send me a code").first.click()
    expect(customer).to_have_url(f"{url}/privacy/code")  # the same answer as for anyone
    with vault.db.transaction() as s:
        codes = s.scalar(select(func.count()).select_from(SignInCodeRow))
    assert (codes, len(mailbox.messages)) == (0, 1)
    with vault.unit(OFFICER) as s:
        states = {c.state for c in ledger.status(s, customer_id)}
    assert states == {None}  # the consent states went with the rest of the record

    # The officer's audit search finds the page reads: the data subject reading, purpose self.
    officer.goto(f"{url}/console/audit?customer={customer_id}&action=pii.access&purpose=self")
    reads = officer.locator("tr[data-action='pii.access']")
    expect(reads.first).to_be_visible()
    assert {"data_subject"} == set(reads.locator("td:nth-child(4)").all_inner_texts())

    # An export verifies once uploaded; a tampered one is named with its position.
    officer.goto(f"{url}/console/audit")
    with officer.expect_download() as exported_download:
        officer.get_by_role("link", name="Export the whole trail (JSON lines)").click()
    exported = tmp_path / "audit.jsonl"
    exported_download.value.save_as(exported)
    officer.goto(f"{url}/console/audit/verify")
    officer.get_by_label("Export file").set_input_files(exported)
    officer.get_by_role("button", name="Verify").click()
    expect(officer.locator("[data-verified='ok']")).to_be_visible()
    tampered = tmp_path / "tampered.jsonl"
    position = _tamper(exported, tampered)
    officer.get_by_label("Export file").set_input_files(tampered)
    officer.get_by_role("button", name="Verify").click()
    failed = officer.locator("[data-verified='failed']")
    expect(failed).to_contain_text(f"First failure at position {position}.")

    customer_context.close()
    officer_context.close()
    assert (customer_errors, officer_errors) == ([], [])
