"""The compliance console in a real browser, against a real server: an officer signs in with
a one-time link, processes a request from the queue, searches the audit trail, exports it
(JSON lines, and what the search matched as CSV) and verifies the export by uploading it.
Persian renders right to left. No page breaks its own Content-Security-Policy."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from api.app import create_app
from consent import Privacy
from consent.dsr.requests import DsrInput
from tests.browser.conftest import Served
from tests.pages import make_customer
from vault.authorization.context import AccessContext
from vault.runtime import Vault
from vault.types import DsrType


@pytest.fixture
def site(vault: Vault) -> Iterator[tuple[Vault, Served]]:
    with Served(create_app(vault, webhook_every=None, sequence_every=60)) as served:
        yield vault, served


def _watch(page: Page) -> list[str]:
    errors: list[str] = []

    def keep(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", keep)
    return errors


def _link(vault: Vault) -> str:
    with vault.unit(AccessContext.system("console-link")) as s:
        return vault.page_sessions.issue_link(s, "officer-ann", "compliance_officer")


def test_an_officer_works_the_queue_and_verifies_an_export(
    browser: Browser, site: tuple[Vault, Served], tmp_path: Path
) -> None:
    vault, served = site
    customer_id = make_customer(vault)
    desk = Privacy.of(vault).desk
    with vault.unit(AccessContext.system("t", purpose="compliance")) as s:
        filed = desk.create(s, DsrInput(type=DsrType.ACCESS.value, customer_id=customer_id))
        desk.verify(s, filed.request.id, filed.verification_token)
    context = browser.new_context(locale="en-GB", accept_downloads=True)
    page = context.new_page()
    errors = _watch(page)
    page.goto(f"{served.url}/console/link?t={_link(vault)}")
    expect(page.locator("[data-actor='officer-ann']")).to_be_visible()
    page.get_by_role("link", name="Data subject requests").first.click()
    row = page.locator(f"tr[data-request='{filed.request.id}']")
    row.get_by_role("button", name="Process").click()
    expect(page.locator(f"tr[data-request='{filed.request.id}']")).to_have_attribute(
        "data-state", "completed"
    )
    page.goto(f"{served.url}/console/audit?customer={customer_id}")
    expect(page.locator("tr[data-action='dsr.change']").first).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("link", name="Export the whole trail (JSON lines)").click()
    exported = tmp_path / "audit.jsonl"
    download.value.save_as(exported)
    with page.expect_download() as csv_download:
        page.get_by_role("link", name="Export the entries this search matches (CSV)").click()
    table = tmp_path / "audit.csv"
    csv_download.value.save_as(table)
    with table.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows
    assert {str(customer_id)} == {r["customer_id"] for r in rows}
    assert "dsr.change" in {r["action"] for r in rows}
    page.goto(f"{served.url}/console/audit/verify")
    page.get_by_label("Export file").set_input_files(exported)
    page.get_by_role("button", name="Verify").click()
    expect(page.locator("[data-verified='ok']")).to_be_visible()
    context.close()
    assert errors == []


def test_the_persian_console_is_right_to_left(browser: Browser, site: tuple[Vault, Served]) -> None:
    vault, served = site
    context = browser.new_context(locale="fa-IR")
    page = context.new_page()
    errors = _watch(page)
    page.goto(f"{served.url}/console/link?t={_link(vault)}")
    html = page.locator("html")
    expect(html).to_have_attribute("dir", "rtl")
    page.goto(f"{served.url}/console/requests")
    expect(page.locator("h1")).to_have_text("درخواست‌های صاحبان داده")
    context.close()
    assert errors == []
