"""The privacy page in a real browser, against a real server: a customer signs in with the
code the SMTP server received, sees the data, withdraws a consent, downloads a copy once
the desk processed it, asks for erasure and sees it wait for approval. Persian renders
right to left. No page breaks its own Content-Security-Policy."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from api.app import create_app
from consent import Privacy
from tests.browser.conftest import Served
from tests.conftest import CTX
from tests.pages import ANN, Mailbox, code_of, mailing_vault, make_customer, smtp_server
from vault.authorization.context import AccessContext, Actor
from vault.runtime import Vault
from vault.types import ConsentState

OFFICER = AccessContext(Actor("officer-1", "compliance_officer"), "compliance")
_PASTE = """([selector, text]) => {
  const data = new DataTransfer();
  data.setData("text", text);
  document.querySelector(selector).dispatchEvent(
    new ClipboardEvent("paste", {clipboardData: data, bubbles: true, cancelable: true}));
}"""


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as box:
        yield box


@pytest.fixture
def site(vault: Vault, mailbox: Mailbox) -> Iterator[tuple[Vault, Served]]:
    mailing = mailing_vault(vault, mailbox)
    with Served(create_app(mailing, webhook_every=None, sequence_every=60)) as served:
        yield mailing, served


def _watch(page: Page) -> list[str]:
    """Console errors (a CSP violation is one) collected while the page is used."""
    errors: list[str] = []

    def keep(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", keep)
    return errors


def test_a_customer_uses_the_privacy_page_end_to_end(
    browser: Browser, site: tuple[Vault, Served], mailbox: Mailbox
) -> None:
    vault, served = site
    cid = make_customer(vault)
    with vault.unit(CTX) as s:
        Privacy.of(vault).ledger.grant(s, cid, "marketing_email")
    context = browser.new_context(locale="en-GB", accept_downloads=True)
    page = context.new_page()
    errors = _watch(page)

    page.goto(f"{served.url}/privacy")
    page.get_by_label("E-mail address").fill(ANN["email"])
    page.get_by_role("button", name="Send me a code").first.click()
    expect(page).to_have_url(f"{served.url}/privacy/code")
    code = code_of(mailbox.wait())
    page.evaluate(_PASTE, ["#code", f"{code[:4]} {code[4:]}"])
    expect(page.locator("#code")).to_have_value(code)
    page.get_by_role("button", name="Sign in").click()

    expect(page).to_have_url(f"{served.url}/privacy/data")
    expect(page.locator("main")).to_contain_text(ANN["email"])
    expect(page.locator("main")).to_contain_text("Bangkok")

    page.get_by_role("link", name="Consents").click()
    card = page.locator("li.card", has_text="Marketing e-mail")
    card.get_by_role("button", name="Withdraw consent").click()
    expect(page.locator("li.card", has_text="Marketing e-mail")).to_contain_text("Withdrawn")
    with vault.unit(OFFICER) as s:
        states = {c.purpose.value: c.state for c in Privacy.of(vault).ledger.status(s, cid)}
    assert states["marketing_email"] is ConsentState.WITHDRAWN

    page.get_by_role("link", name="Requests").click()
    page.get_by_role("button", name="Ask for a copy", exact=True).click()
    expect(page.locator("td.status").first).to_have_attribute("data-state", "verified")
    desk = Privacy.of(vault).desk
    with vault.unit(OFFICER) as s:
        (request,) = desk.list(s).items
        desk.process(s, request.id)
    page.reload()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download your data").click()
    with zipfile.ZipFile(io.BytesIO(download.value.path().read_bytes())) as archive:
        assert json.loads(archive.read("bundle.json"))["profile"]["email"] == ANN["email"]

    page.get_by_role("link", name="Ask for erasure").click()
    expect(page.locator("main")).to_contain_text("What we keep, because the law requires it")
    page.get_by_role("button", name="Yes, erase my data").click()
    erasure = page.locator("tr", has_text="Erasure").locator("td.status")
    expect(erasure).to_have_attribute("data-state", "awaiting_approval")
    expect(erasure).to_contain_text("Waiting for approval by our privacy team")
    context.close()
    assert errors == []


def test_the_persian_page_is_right_to_left_and_keyboard_reachable(
    browser: Browser, site: tuple[Vault, Served]
) -> None:
    """fa-IR gets <html lang="fa" dir="rtl">, laid out right to left; the first Tab lands on
    the skip link, which shows up when focused."""
    _vault, served = site
    context = browser.new_context(locale="fa-IR")
    page = context.new_page()
    errors = _watch(page)
    page.goto(f"{served.url}/privacy")
    html = page.locator("html")
    expect(html).to_have_attribute("dir", "rtl")
    expect(html).to_have_attribute("lang", "fa")
    assert page.evaluate("getComputedStyle(document.body).direction") == "rtl"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    context.close()
    assert errors == []
