"""Screenshots of the privacy page and the compliance console, in English and Persian.

    make screenshots
    PYTHONPATH=. .venv/bin/python docs/screenshots/make.py [--out docs/screenshots]
        [--languages en fa] [--customers 20]

A vault of its own in a temporary folder (SQLite, development settings, a clock frozen at
2026-11-23, so the dates shown stay the same from run to run), demo data loaded as ``cvault
demo`` does, then the stops of ``tests/browser/tour.py``: the same pages in the same states
the accessibility test visits. A demo customer (the first Persian one) signs in with the
code from the development outbox, an officer with a console link. Each page is taken whole
at 1000 CSS pixels wide (at most 2400 high) by Debian's Chromium and written as
``NAME-LANG.png``, reduced to 256 colours with Pillow when it is installed. Thai and
Chinese names in the language switcher need fonts for them (Debian: ``fonts-thai-tlwg``,
``fonts-wqy-microhei``).
"""

from __future__ import annotations

import argparse
import io
import logging
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from playwright.sync_api import FloatRect, Page, sync_playwright

from consent import Privacy
from consent.demo import grant_demo_consents
from tests.browser.conftest import CHROMIUM
from tests.browser.tour import STOPS, Tour, furnish
from tests.conftest import FrozenClock
from vault.authorization.context import AccessContext
from vault.bootstrap import initialise
from vault.config import Environment, Settings
from vault.demo.plan import plan_demo
from vault.demo.service import load_demo
from vault.logs import configure_logging
from vault.runtime import Vault

HERE: Final = Path(__file__).resolve().parent
# One picture per page: the other states of a page (an error notice, a filter) look alike.
PAGES: Final = (
    "privacy-signin",
    "privacy-code",
    "privacy-data",
    "privacy-consents",
    "privacy-access",
    "privacy-requests",
    "privacy-erasure",
    "privacy-erased",
    "privacy-error-404",
    "console-signin",
    "console-home",
    "console-requests",
    "console-audit",
    "console-verify-ok",
    "console-checkpoints",
    "console-consent",
    "console-policy",
)
WIDTH: Final = 1000
MAX_HEIGHT: Final = 2400  # a long page (the audit trail) is cut: its top tells enough
SEED: Final = 7


def shrink(png: bytes) -> bytes:
    """The picture in 256 colours (Pillow, when installed), else as it is."""
    try:
        from PIL import Image  # noqa: PLC0415 - optional: only to make files smaller
    except ImportError:
        return png
    with Image.open(io.BytesIO(png)) as image:
        reduced = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        out = io.BytesIO()
        reduced.save(out, format="PNG", optimize=True)
    return out.getvalue() if out.tell() < len(png) else png


def _picture(page: Page) -> bytes:
    """The whole page, cut at :data:`MAX_HEIGHT`."""
    height = min(int(page.evaluate("document.documentElement.scrollHeight")), MAX_HEIGHT)
    box: FloatRect = {"x": 0, "y": 0, "width": WIDTH, "height": height}
    return page.screenshot(full_page=True, clip=box, animations="disabled")


def _demo_vault(root: Path, customers: int) -> tuple[Vault, FrozenClock, str]:
    """A development vault with demo data; the e-mail address of the customer who signs in."""
    settings = Settings(
        data_dir=root,
        database_url=f"sqlite:///{root / 'vault.db'}",
        keyring_path=root / "keys" / "keyring.json",
        environment=Environment.DEVELOPMENT,
    )
    initialise(settings)
    clock = FrozenClock()
    vault = Vault.open(settings, clock=clock)
    load_demo(vault, customers=customers, seed=SEED)
    grant_demo_consents(vault, Privacy.of(vault).ledger, seed=SEED)
    planned = list(plan_demo(customers, SEED, clock()))
    chosen = next((p for p in planned if p.data.locale == "fa-IR"), planned[0])
    if chosen.data.email is None:
        raise SystemExit("the chosen demo customer has no e-mail address")
    return vault, clock, chosen.data.email


def make(out: Path, languages: Sequence[str], customers: int) -> list[Path]:
    written: list[Path] = []
    stops = [stop for stop in STOPS if stop.name in PAGES]
    with tempfile.TemporaryDirectory(prefix="cvault-screens-") as folder:
        vault, clock, address = _demo_vault(Path(folder), customers)
        with vault.unit(AccessContext.system("screenshots")) as s:
            (customer,) = vault.customers.find_by_email(s, address)
        furnished = furnish(vault, clock, customer.id, address)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
            )
            with Tour(vault, browser, furnished) as tour:
                for language in languages:
                    for stop in stops:
                        with tour.page(stop.who, language) as page:
                            page.set_viewport_size({"width": WIDTH, "height": 700})
                            stop.visit(page, tour)
                            png = _picture(page)
                        path = out / f"{stop.name}-{language}.png"
                        path.write_bytes(shrink(png))
                        written.append(path)
            browser.close()
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--languages", nargs="+", default=["en", "fa"])
    parser.add_argument("--customers", type=int, default=20)
    args = parser.parse_args(argv)
    configure_logging("warning")
    logging.getLogger("casbin").setLevel(logging.ERROR)  # a refused check is no news here
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is missing (apt-get install chromium)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    for path in make(args.out, args.languages, args.customers):
        print(f"{path.stat().st_size // 1024:5d} KiB  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
