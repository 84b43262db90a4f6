"""Accessibility of the privacy page and the console, in a real browser: on every page, in
every state the tour reaches (sign-in, code, each signed-in section, request forms, erasure
and its confirmation, error pages; the console's sign-in, queue, audit search, verification,
checkpoints, consent proof, policy table) and in each of the four languages, axe-core finds
no violation of impact serious or critical. The sign-in form is reached with Tab, in order,
and what has the focus shows it.

One vault (SQLite: what is checked is the markup, which no backend changes; the page tests
run on both), one browser, two signed-in sessions for the whole module.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, ConsoleMessage, Page

from api.pages.i18n import LANGUAGES
from tests.browser.tour import STOPS, Stop, Tour, furnish
from tests.conftest import FrozenClock
from tests.pages import ANN, make_customer
from vault.config import Environment, Settings
from vault.crypto import Keyring
from vault.crypto.signing import Ed25519Signer
from vault.runtime import Vault
from vault.storage.db import Database, make_engine
from vault.storage.models import Base

GRAVE: Final = frozenset({"serious", "critical"})
# An error page answers 4xx: the browser logs that, and it is no policy violation.
_ERROR_STATUS: Final = "Failed to load resource: the server responded with a status of 4"
_AXE: Final = Axe()


@dataclass(frozen=True, slots=True)
class Violation:
    """One axe rule broken on a page: the rule, its impact, what it asks, where."""

    rule: str
    impact: str
    help: str
    targets: tuple[str, ...]

    def __str__(self) -> str:
        where = "".join(f"\n    {target}" for target in self.targets)
        return f"{self.rule} ({self.impact}): {self.help}{where}"


def grave_violations(page: Page) -> list[Violation]:
    """What axe-core finds on the page, keeping impacts serious and critical."""
    response: dict[str, Any] = _AXE.run(page).response
    return [
        Violation(
            rule=found["id"],
            impact=found["impact"],
            help=found["help"],
            targets=tuple(" ".join(map(str, node["target"])) for node in found["nodes"]),
        )
        for found in response["violations"]
        if found["impact"] in GRAVE
    ]


@pytest.fixture(scope="module")
def vault(
    tmp_path_factory: pytest.TempPathFactory, session_keyring: Keyring, audit_signer: Ed25519Signer
) -> Iterator[Vault]:
    """The module's own vault on SQLite (the function-scoped fixture would serve each
    check a new one)."""
    root = tmp_path_factory.mktemp("a11y")
    settings = Settings(
        data_dir=root,
        database_url=f"sqlite:///{root / 'vault.db'}",
        keyring_path=root / "keys" / "keyring.json",
        environment=Environment.TEST,
        audit_origin="customer-vault/test",
    )
    engine = make_engine(settings.database_url)
    Base.metadata.create_all(engine)
    opened = Vault.open(
        settings, keyring=session_keyring, database=Database(engine), signer=audit_signer,
        clock=FrozenClock(),
    )  # fmt: skip
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def tour(vault: Vault, browser: Browser) -> Iterator[Tour]:
    assert isinstance(vault.clock, FrozenClock)
    furnished = furnish(vault, vault.clock, make_customer(vault), ANN["email"])
    with Tour(vault, browser, furnished) as started:
        yield started


def _watch(page: Page) -> list[str]:
    """Console errors (a Content-Security-Policy violation is one)."""
    errors: list[str] = []

    def keep(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", keep)
    return errors


_SIDEWAYS: Final = """() => {
  const width = document.documentElement.clientWidth;
  const out = [...document.querySelectorAll("main *, header *, nav *")].filter(e => {
    const box = e.getBoundingClientRect();
    return (box.right > width + 1 || box.left < -1) && !e.closest(".scroll, .skip");
  }).map(e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") +
              (e.className ? "." + e.className : ""));
  return document.documentElement.scrollWidth > width ? out.slice(0, 5) : [];
}"""
WIDTHS: Final = (1000, 320)


@pytest.mark.parametrize("language", list(LANGUAGES))
@pytest.mark.parametrize("stop", STOPS, ids=[stop.name for stop in STOPS])
def test_no_page_has_a_serious_or_critical_violation_or_scrolls_sideways(
    tour: Tour, stop: Stop, language: str
) -> None:
    """axe-core on the page, in the language: nothing serious or critical. The page is in
    the language asked for, breaks none of its own policy, and needs no sideways scrolling
    at 1000 nor at 320 CSS pixels (WCAG 1.4.10; a wide table scrolls in its own region)."""
    with tour.page(stop.who, language) as page:
        errors = _watch(page)
        stop.visit(page, tour)
        assert LANGUAGES[language].tag == page.locator("html").get_attribute("lang")
        serious_or_critical = grave_violations(page)
        report = "\n".join(f"  {v}" for v in serious_or_critical)
        assert serious_or_critical == [], f"{stop.name} [{language}] {page.url}:\n{report}"
        sideways = {}
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 800})
            sideways[width] = page.evaluate(_SIDEWAYS)
        assert {width: [] for width in WIDTHS} == sideways
        assert [e for e in errors if not e.startswith(_ERROR_STATUS)] == []


_FOCUS_RING: Final = """element => {
  const style = getComputedStyle(element);
  return {outline: style.outlineStyle, width: style.outlineWidth, shadow: style.boxShadow,
          visible: element.matches(":focus-visible")};
}"""


def _focused(page: Page) -> str:
    """The focused element, as ``tag#id`` or ``tag.class`` or ``tag[type]``."""
    return str(
        page.evaluate(
            """() => { const e = document.activeElement;
              const tag = e.tagName.toLowerCase();
              if (e.id) return tag + "#" + e.id;
              if (e.getAttribute("lang")) return tag + "[lang=" + e.getAttribute("lang") + "]";
              if (e.className) return tag + "." + e.className;
              return tag + "[" + (e.getAttribute("type") || "") + "]"; }"""
        )
    )


@pytest.mark.parametrize("language", ["en", "fa"])
def test_tab_reaches_the_sign_in_form_in_order_with_a_visible_focus(
    tour: Tour, language: str
) -> None:
    """From the top of the sign-in page, Tab goes: skip link, the four languages, the
    e-mail field and its button, the phone field and its button; each shows a focus ring
    (an outline and a box shadow) while it has the focus, right to left too."""
    with tour.page("guest", language) as page:
        page.goto(f"{tour.url}/privacy")
        order, rings = [], []
        for _ in range(9):
            page.keyboard.press("Tab")
            order.append(_focused(page))
            rings.append(page.evaluate(f"({_FOCUS_RING})(document.activeElement)"))
        expected = [
            "a.skip",
            "a[lang=en]",
            "a[lang=fa]",
            "a[lang=th]",
            "a[lang=zh-Hans]",
            "input#contact-email",
            "button[submit]",
            "input#contact-phone",
            "button[submit]",
        ]
        assert expected == order
        unseen = [
            (name, ring)
            for name, ring in zip(order, rings, strict=True)
            if not ring["visible"] or ring["outline"] == "none" or ring["shadow"] == "none"
        ]
        assert unseen == []


def test_the_code_field_takes_the_focus_and_the_skip_link_leads_to_main(tour: Tour) -> None:
    """The code page puts the focus in the code field, visibly; the skip link leads to
    the main content."""
    with tour.page("guest", "en") as page:
        page.goto(f"{tour.url}/privacy/code")
        assert _focused(page) == "input#code"
        ring = page.evaluate(f"({_FOCUS_RING})(document.activeElement)")
        assert (ring["visible"], ring["outline"]) == (True, "solid")
        page.goto(f"{tour.url}/privacy")
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        assert _focused(page) == "main#main"
