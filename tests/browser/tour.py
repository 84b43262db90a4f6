"""A tour of every page of ``/privacy`` and ``/console``, one stop at a time.

:func:`furnish` gives a vault what makes every part of every page show: a customer with
interactions, consents given and withdrawn, an access history, and a request in each state
(completed with a download, rejected with a reason, extended, overdue, awaiting approval,
under a legal hold), and a signed checkpoint. :class:`Tour` serves the vault twice (erasure
approved by the desk, as shipped; and automatic, for the page an erased customer sees),
signs a customer in through the form with the code from the development outbox, an officer
in with a console link, and keeps two browser contexts: a guest's and a member's (signed in
to both sections). Each :class:`Stop` says how a browser reaches one page in one state.

``tests/browser/test_accessibility.py`` visits every stop in the four languages;
``docs/screenshots/make.py`` photographs them in English and Persian.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path
from typing import Final, Literal

from playwright.sync_api import Browser, BrowserContext, Page, expect

from api.app import create_app
from api.pages.i18n import LANGUAGE_COOKIE
from api.pages.privacy.base import SESSION_COOKIE
from consent import Privacy
from consent.dsr.requests import DsrInput
from tests.browser.conftest import Served
from tests.conftest import FrozenClock
from tests.pages import code_of
from vault.authorization.context import AccessContext, Actor
from vault.customers import CustomerInput
from vault.customers.addresses import PostalAddress
from vault.interactions.models import InteractionInput
from vault.runtime import Vault
from vault.types import DsrType

__all__ = ["STOPS", "Furnished", "Stop", "Tour", "furnish"]

OFFICER: Final = AccessContext(Actor("officer-ann", "compliance_officer"), "compliance")
SUPPORT: Final = AccessContext(Actor("agent-7", "support_agent"), "support")
SYSTEM: Final = AccessContext.system("tour")
Who = Literal["guest", "member", "leaving"]


@dataclass(frozen=True, slots=True)
class Furnished:
    """What :func:`furnish` made: the customer who signs in, by id and e-mail address."""

    customer_id: uuid.UUID
    email: str


def _interactions(vault: Vault, customer_id: uuid.UUID, now: datetime) -> None:
    def ago(days: int) -> datetime:
        return now - timedelta(days=days, hours=3)

    items = [
        InteractionInput("web", "page_view", ago(9), customer_id, payload={"path": "/shoes"}),
        InteractionInput("email", "email_open", ago(6), customer_id),
        InteractionInput(
            "store",
            "purchase",
            ago(2),
            customer_id,
            amount=Decimal("1290.50"),
            currency="THB",
            payload={"store": "Siam"},
        ),
    ]
    with vault.unit(SYSTEM) as s:
        vault.interactions.record_many(s, items)


def furnish(vault: Vault, clock: FrozenClock, customer_id: uuid.UUID, email: str) -> Furnished:
    """Consents, interactions, an access by support, requests in every state (one of them
    overdue: the clock moves 40 days), a legal hold, and a signed checkpoint."""
    privacy = Privacy.of(vault)
    desk, ledger = privacy.desk, privacy.ledger
    with vault.unit(OFFICER) as s:  # due in a month: overdue once the clock moves
        desk.create(s, DsrInput(DsrType.RESTRICTION.value, customer_id))
    clock.advance(days=40)
    _interactions(vault, customer_id, clock())
    with vault.unit(SYSTEM) as s:
        ledger.grant(s, customer_id, "marketing_email")
        ledger.grant(s, customer_id, "personalization")
        ledger.withdraw(s, customer_id, "personalization")
    with vault.unit(SUPPORT) as s:
        vault.customers.get(s, customer_id)
    with vault.unit(OFFICER) as s:
        access = desk.create(s, DsrInput(DsrType.ACCESS.value, customer_id))
        desk.verify(s, access.request.id, access.verification_token)
        desk.process(s, access.request.id)
        objection = desk.create(
            s, DsrInput(DsrType.OBJECTION.value, customer_id, {"scope": "direct_marketing"})
        )
        desk.reject(s, objection.request.id, reason="The objection names no purpose we use.")
        portability = desk.create(s, DsrInput(DsrType.PORTABILITY.value, customer_id))
        desk.verify(s, portability.request.id, portability.verification_token)
        desk.extend(s, portability.request.id, months=1, reason="Archive restore pending.")
        desk.create(
            s, DsrInput(DsrType.RECTIFICATION.value, customer_id, {"last_name": "Lindqvist-Berg"})
        )
        desk.place_hold(s, customer_id, "Open insurance claim.")
    own = AccessContext(Actor(f"privacy:{uuid.uuid4()}", "data_subject", customer_id), "self")
    with vault.unit(own) as s:
        desk.file_verified(s, DsrInput(DsrType.ERASURE.value, customer_id))
    vault.audit.sequence(vault.db)
    return Furnished(customer_id, email)


def leaving_customer(vault: Vault) -> uuid.UUID:
    """A customer of its own for each erasure the tour carries out."""
    with vault.unit(SYSTEM) as s:
        return vault.customers.create(
            s,
            CustomerInput(
                email=f"leaving-{uuid.uuid4().hex[:8]}@example.com",
                first_name="\u0e2a\u0e21\u0e0a\u0e32\u0e22",  # Somchai, in Thai
                last_name="Leaving",
                address=PostalAddress(street="1 Rama IV Rd", city="Bangkok", country="TH"),
            ),
        ).id


class Tour:
    """Two servers over one vault and the browser contexts that visit them."""

    def __init__(self, vault: Vault, browser: Browser, furnished: Furnished) -> None:
        self.vault = vault
        self.browser = browser
        self.furnished = furnished
        self.url = ""
        self.erasing_url = ""
        self.export = b""
        self._stack = ExitStack()
        self._contexts: dict[str, BrowserContext] = {}

    def __repr__(self) -> str:
        return f"Tour(url={self.url!r})"

    def __enter__(self) -> Tour:
        vault = self.vault
        served = self._stack.enter_context(Served(create_app(vault, webhook_every=None)))
        automatic = Vault.open(
            dataclasses.replace(vault.settings, erasure_approval="automatic"),
            keyring=vault.keyring, database=vault.db, signer=vault.audit.signer,
            clock=vault.clock,
        )  # fmt: skip
        erasing = self._stack.enter_context(Served(create_app(automatic, webhook_every=None)))
        self.url, self.erasing_url = served.url, erasing.url
        self._contexts["guest"] = self._context()
        member = self._contexts["member"] = self._context()
        page = member.new_page()
        sign_in_customer(page, self.url, self.vault.settings.outbox_dir, self.furnished.email)
        page.goto(f"{self.url}/console/link?t={console_link(vault)}")
        expect(page.locator("[data-actor='officer-ann']")).to_be_visible()
        self.export = page.context.request.get(f"{self.url}/console/audit/export.jsonl").body()
        page.close()
        return self

    def __exit__(self, *_exc: object) -> None:
        for context in self._contexts.values():
            context.close()
        self._stack.close()

    def _context(self) -> BrowserContext:
        return self.browser.new_context(
            viewport={"width": 1000, "height": 800}, accept_downloads=False
        )

    @contextmanager
    def page(self, who: Who, language: str) -> Iterator[Page]:
        """A page of the guest's or the member's context (or, for ``leaving``, of a fresh
        context), in ``language`` (the switcher's cookie)."""
        context = self._contexts.get(who) or self._context()
        context.add_cookies([{"name": LANGUAGE_COOKIE, "value": language, "url": self.url}])
        page = context.new_page()
        try:
            yield page
        finally:
            page.close()
            if who not in self._contexts:
                context.close()


def console_link(vault: Vault) -> str:
    with vault.unit(AccessContext.system("console-link")) as s:
        return vault.page_sessions.issue_link(s, "officer-ann", "compliance_officer")


def sign_in_customer(page: Page, url: str, outbox: Path, address: str) -> None:
    """Through the form: the address, then the code the development outbox received."""
    before = set(outbox.glob("*.eml")) if outbox.exists() else set()
    page.goto(f"{url}/privacy")
    page.locator("#contact-email").fill(address)
    page.locator("#contact-email").press("Enter")
    expect(page).to_have_url(f"{url}/privacy/code")
    deadline = time.monotonic() + 15
    while not (arrived := set(outbox.glob("*.eml")) - before if outbox.exists() else set()):
        if time.monotonic() > deadline:
            raise AssertionError("no sign-in code reached the outbox")
        time.sleep(0.05)
    (path,) = arrived
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    page.locator("#code").fill(code_of(message))
    page.locator("#code").press("Enter")
    expect(page).to_have_url(f"{url}/privacy/data")


# -- the stops -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stop:
    """One page in one state: its name (``privacy-data``), whose context visits it, and
    how the browser gets there."""

    name: str
    who: Who
    visit: Callable[[Page, Tour], None]


def _goto(path: str) -> Callable[[Page, Tour], None]:
    def visit(page: Page, tour: Tour) -> None:
        page.goto(f"{tour.url}{path}")

    return visit


def _bad_email(page: Page, tour: Tour) -> None:
    page.goto(f"{tour.url}/privacy")
    field = page.locator("#contact-email")
    field.evaluate("input => input.setAttribute('type', 'text')")
    field.fill("not an address")
    field.press("Enter")
    expect(page.locator(".notice.error")).to_be_visible()


def _wrong_code(page: Page, tour: Tour) -> None:
    page.goto(f"{tour.url}/privacy/code")
    page.locator("#code").fill("00000000")
    page.locator("#code").press("Enter")
    expect(page.locator(".notice.error")).to_be_visible()


def _stale_form(page: Page, tour: Tour) -> None:
    """A form whose CSRF token does not match: the 403 error page."""
    page.goto(f"{tour.url}/privacy/consents")
    form = page.locator("form:has(button[name='change'])").first
    form.locator("input[name='csrf']").evaluate("input => { input.value = 'stale'; }")
    form.locator("button[name='change']").click()
    expect(page.locator("h1")).to_be_visible()


def _erase(page: Page, tour: Tour) -> None:
    """A customer of its own confirms erasure on the server that erases at once."""
    vault = tour.vault
    with vault.db.transaction() as s:
        opened = vault.page_sessions.open_for_customer(s, leaving_customer(vault))
    # Cookies name a host, not a port: the language cookie holds for both servers.
    page.context.add_cookies(
        [{"name": SESSION_COOKIE, "value": opened.cookie, "url": tour.erasing_url}]
    )
    page.goto(f"{tour.erasing_url}/privacy/erasure")
    page.locator("form[action='/privacy/erasure'] button[type='submit']").click()
    expect(page.locator("main [role='status']")).to_be_visible()


def _failed_link(page: Page, tour: Tour) -> None:
    page.goto(f"{tour.url}/console/link?t=spent")
    expect(page.locator(".notice.error")).to_be_visible()


def _verify(upload: Callable[[bytes], bytes]) -> Callable[[Page, Tour], None]:
    def visit(page: Page, tour: Tour) -> None:
        page.goto(f"{tour.url}/console/audit/verify")
        page.locator("#export").set_input_files(
            {
                "name": "audit.jsonl",
                "mimeType": "application/x-ndjson",
                "buffer": upload(tour.export),
            }
        )
        page.locator("form[enctype] button[type='submit']").click()
        expect(page.locator("[data-verified]")).to_be_visible()

    return visit


def _tampered(export: bytes) -> bytes:
    """The export with one entry's actor changed: its leaf no longer matches."""
    lines = export.splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if b'"actor":"officer-ann"' in line)
    lines[index] = lines[index].replace(b'"actor":"officer-ann"', b'"actor":"officer-bob"')
    return b"".join(lines)


def _consent_proof(page: Page, tour: Tour) -> None:
    page.goto(f"{tour.url}/console/consent?customer={tour.furnished.customer_id}")


def _audit(page: Page, tour: Tour) -> None:
    page.goto(f"{tour.url}/console/audit?customer={tour.furnished.customer_id}")


STOPS: Final = [
    Stop("privacy-signin", "guest", _goto("/privacy")),
    Stop("privacy-signin-error", "guest", _bad_email),
    Stop("privacy-code", "guest", _goto("/privacy/code")),
    Stop("privacy-code-error", "guest", _wrong_code),
    Stop("privacy-data", "member", _goto("/privacy/data")),
    Stop("privacy-consents", "member", _goto("/privacy/consents")),
    Stop("privacy-access", "member", _goto("/privacy/access")),
    Stop("privacy-requests", "member", _goto("/privacy/requests")),
    Stop("privacy-requests-filed", "member", _goto("/privacy/requests?filed=1")),
    Stop("privacy-requests-invalid", "member", _goto("/privacy/requests?error=invalid")),
    Stop("privacy-erasure", "member", _goto("/privacy/erasure")),
    Stop("privacy-erased", "leaving", _erase),
    Stop("privacy-error-404", "member", _goto("/privacy/requests/nothing/bundle")),
    Stop("privacy-error-403", "member", _stale_form),
    Stop("console-signin", "guest", _goto("/console")),
    Stop("console-signin-failed", "guest", _failed_link),
    Stop("console-home", "member", _goto("/console")),
    Stop("console-requests", "member", _goto("/console/requests")),
    Stop("console-audit", "member", _audit),
    Stop("console-verify", "member", _goto("/console/audit/verify")),
    Stop("console-verify-ok", "member", _verify(lambda export: export)),
    Stop("console-verify-failed", "member", _verify(_tampered)),
    Stop("console-checkpoints", "member", _goto("/console/audit/checkpoints")),
    Stop("console-consent", "member", _consent_proof),
    Stop(
        "console-policy",
        "member",
        _goto("/console/policy?purpose=support&role=support_agent&field=email"),
    ),
    Stop("console-error-400", "member", _goto("/console/consent?customer=not-an-id")),
]
