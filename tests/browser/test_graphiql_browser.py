"""GraphiQL in a real browser, offline: it renders its editor from the vault's own files, asks
no other host for anything, and breaks none of its Content-Security-Policy."""

from __future__ import annotations

import dataclasses

from playwright.sync_api import Browser, ConsoleMessage, Request, expect

from api.app import create_app
from tests.browser.conftest import Served
from vault.config import Environment
from vault.runtime import Vault


def test_graphiql_renders_from_local_files_under_its_csp(browser: Browser, vault: Vault) -> None:
    development = Vault.open(
        dataclasses.replace(vault.settings, environment=Environment.DEVELOPMENT),
        keyring=vault.keyring, database=vault.db, signer=vault.audit.signer, clock=vault.clock,
    )  # fmt: skip
    with Served(create_app(development, webhook_every=None, sequence_every=60)) as served:
        context = browser.new_context()
        page = context.new_page()
        errors: list[str] = []
        hosts: set[str] = set()

        def keep(message: ConsoleMessage) -> None:
            if message.type == "error":
                errors.append(message.text)

        def note(request: Request) -> None:
            hosts.add(request.url.split("/")[2] if "://" in request.url else request.url[:5])

        page.on("console", keep)
        page.on("request", note)
        page.goto(f"{served.url}/graphql")
        expect(page.locator(".graphiql-editors")).to_be_visible(timeout=15_000)
        expect(page.locator(".graphiql-query-editor")).to_contain_text("customers")
        context.close()
    # Introspection without a token answers 401: the only error a fresh GraphiQL may show.
    others = [e for e in errors if "401 (Unauthorized)" not in e]
    assert (others, hosts - {f"127.0.0.1:{served.port}", "data:"}) == ([], set())
