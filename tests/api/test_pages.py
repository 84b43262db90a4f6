"""What every page shares: security headers, CSRF, errors that echo nothing, languages
(catalogs complete, right-to-left Persian, Babel formats), the development outbox."""

from __future__ import annotations

import dataclasses
import re
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from starlette.testclient import TestClient

from api.app import create_app
from api.pages.catalogs import untranslated
from api.pages.i18n import LANGUAGES, catalog_path, choose_language
from api.pages.rendering import TEMPLATES
from api.pages.security import csrf_token
from api.pages.words import Words
from policies.purposes import Role, registry
from tests.pages import ANN, code_of, csrf_of, make_customer
from vault.audit_trail.queries import ACCESS_ACTIONS
from vault.config import Environment
from vault.runtime import Vault
from vault.segments.delivery import WebhookEventType
from vault.types import Channel, ConsentState, DsrStatus, DsrType, InteractionType

STATIC = Path(TEMPLATES).parent / "static"


@pytest.fixture
def client(vault: Vault) -> Iterator[TestClient]:
    with TestClient(create_app(vault, webhook_every=None, sequence_every=60)) as client:
        yield client


def test_pages_carry_a_strict_policy_and_are_not_cached(client: TestClient) -> None:
    """A page: CSP without unsafe-inline and with frame-ancestors 'none', nosniff,
    no-referrer, no-store, and a browser cookie that scripts cannot read. A static file:
    the same headers but cacheable."""
    page = client.get("/privacy")
    csp = page.headers["content-security-policy"]
    assert ("unsafe-inline" in csp, "frame-ancestors 'none'" in csp) == (False, True)
    assert "default-src 'none'" in csp
    names = ("x-content-type-options", "referrer-policy", "cache-control")
    assert [page.headers[name] for name in names] == ["nosniff", "no-referrer", "no-store"]
    browser = page.headers["set-cookie"]
    assert ("HttpOnly" in browser, "SameSite=Lax" in browser) == (True, True)
    css = client.get("/static/css/pages.css")
    assert (css.status_code, css.headers["x-content-type-options"]) == (200, "nosniff")
    assert "no-store" not in css.headers.get("cache-control", "")
    assert "default-src 'none'" in css.headers["content-security-policy"]


def test_no_template_has_inline_script_style_or_handlers() -> None:
    """Every script and style is a file under /static: no inline <script>, <style>,
    style= attribute or on...= handler anywhere, so the CSP needs no 'unsafe-inline'."""
    offenders = []
    for template in sorted(Path(TEMPLATES).rglob("*.html")):
        html = template.read_text(encoding="utf-8")
        inline_script = re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
        if inline_script or "<style" in html or re.search(r"\s(style|on[a-z]+)=", html):
            offenders.append(template.name)
    assert offenders == []


def test_errors_never_repeat_what_the_request_carried(client: TestClient) -> None:
    """A bad cursor, a forged form, an unknown receipt id: fixed sentences only."""
    probe = "<script>alert(1)</script>"
    answers = [
        client.get("/privacy/data", params={"after": probe}, follow_redirects=False),
        client.post("/privacy/sign-in", data={"csrf": probe, "contact": probe}),
        client.post("/privacy/code", data={"csrf": probe, "code": probe}),
    ]
    assert [a.status_code for a in answers] == [303, 403, 403]
    assert [probe in a.text or "alert(1)" in a.text for a in answers] == [False] * 3


def test_the_language_follows_accept_language_and_the_switcher() -> None:
    """Accept-Language picks the best of our four by weight; Chinese in simplified script
    maps to zh_Hans (traditional has no catalog); the switcher's cookie wins."""
    cases = {
        ("", "fa-IR,fa;q=0.9,en;q=0.5"): "fa",
        ("", "de-DE, th;q=0.8, en;q=0.7"): "th",
        ("", "zh-CN"): "zh_Hans",
        ("", "zh-Hans-SG;q=0.9"): "zh_Hans",
        ("", "zh-TW, en;q=0.1"): "en",
        ("", "*;q=0.5, fa;q=0"): "en",
        ("", ""): "en",
        ("th", "fa"): "th",
        ("klingon", "fa"): "fa",
    }
    chosen = {key: choose_language(*key).code for key in cases}
    assert chosen == cases


def test_persian_pages_are_right_to_left_and_the_switcher_changes_language(
    client: TestClient,
) -> None:
    """Persian renders <html lang="fa" dir="rtl">; the switcher sets a cookie, goes back to
    the page it was on, and never leaves the pages (no open redirect)."""
    persian = client.get("/privacy", headers={"accept-language": "fa"}).text
    assert '<html lang="fa" dir="rtl">' in persian
    assert "\u0648\u0631\u0648\u062f" in persian  # "ورود": sign in
    switched = client.get("/lang/th", params={"next": "/privacy/code"}, follow_redirects=False)
    assert (switched.status_code, switched.headers["location"]) == (303, "/privacy/code")
    assert "cvault_lang=th" in switched.headers["set-cookie"]
    thai = client.get("/privacy", headers={"accept-language": "fa"}).text
    assert '<html lang="th" dir="ltr">' in thai
    for target in ("https://evil.example/", "//evil.example/privacy", "/graphql"):
        away = client.get("/lang/en", params={"next": target}, follow_redirects=False)
        assert away.headers["location"] == "/privacy"


def test_dates_and_numbers_are_formatted_by_babel_in_the_pages_language(
    client: TestClient,
) -> None:
    """Dates take each language's month names and order, numbers its separators; the code
    page states its 10 minutes in the page's language."""
    when = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    shown = {
        code: (lang.date(when), lang.number(Decimal("1234.5"))) for code, lang in LANGUAGES.items()
    }
    assert shown == {
        "en": ("January 2, 2026", "1,234.5"),
        "fa": ("2 \u0698\u0627\u0646\u0648\u06cc\u0647 2026", "1\u066c234\u066b5"),
        "th": ("2 \u0e21\u0e01\u0e23\u0e32\u0e04\u0e21 \u0e04.\u0e28. 2026", "1,234.5"),
        "zh_Hans": ("2026\u5e741\u67082\u65e5", "1,234.5"),
    }
    thai = client.get("/privacy/code", headers={"accept-language": "th"}).text
    assert "10 \u0e19\u0e32\u0e17\u0e35" in thai  # "10 นาที"


def test_every_message_is_translated_in_the_four_catalogs() -> None:
    """Every message of the templates, the code and the purpose registry is present and
    non-empty in en, fa, th and zh_Hans; placeholders are kept."""
    assert untranslated() == {code: [] for code in LANGUAGES}
    broken = []
    for code in LANGUAGES:
        with catalog_path(code).open("rb") as source:
            catalog = read_po(source, locale=code)
        for message in catalog:
            wanted = set(re.findall(r"%\((\w+)\)s", str(message.id)))
            if message.id and wanted != set(re.findall(r"%\((\w+)\)s", str(message.string))):
                broken.append((code, message.id))
    assert broken == []


def test_every_vault_word_a_page_shows_has_a_label() -> None:
    """Channels, interaction types, request types and states, consent states, purposes,
    legal bases, roles, the actions an access history lists and webhook events: each value
    of the vault's vocabularies has a label to translate."""
    missing = {
        "channels": {c.value for c in Channel} - set(Words.CHANNELS),
        "interactions": {t.value for t in InteractionType} - set(Words.INTERACTIONS),
        "request types": {t.value for t in DsrType} - set(Words.REQUEST_TYPES),
        "request states": {s.value for s in DsrStatus} - set(Words.REQUEST_STATES),
        "consent states": {s.value for s in ConsentState} - set(Words.CONSENT_STATES),
        "purposes": {p.value for p in registry()} - set(Words.PURPOSES),
        "legal bases": {i.legal_basis.value for i in registry().values()} - set(Words.LEGAL_BASES),
        "roles": {r.value for r in Role} - set(Words.ROLES),
        "access history": set(ACCESS_ACTIONS) - set(Words.ACTIONS),
        "webhook events": {e.value for e in WebhookEventType} - set(Words.WEBHOOK_EVENTS),
    }
    assert missing == {name: set() for name in missing}


def test_cookies_are_secure_over_tls(client: TestClient) -> None:
    """Served over https (the scheme uvicorn reports), every cookie is Secure."""
    tls = TestClient(client.app, base_url="https://testserver")
    page = tls.get("/privacy")
    answer = tls.get("/lang/fa", follow_redirects=False)
    assert ("Secure" in answer.headers["set-cookie"], "Secure" in page.headers["set-cookie"]) == (
        True,
        True,
    )


def test_the_development_outbox_holds_codes_for_phone_and_email(vault: Vault) -> None:
    """Without SMTP, outside production, codes go to one file per message under the data
    directory (directory 0700, files 0600); phone sign-in works through it too."""
    make_customer(vault)
    app = create_app(vault, webhook_every=None)
    with TestClient(app) as client:
        page = client.get("/privacy").text
        assert 'type="tel"' in page
        client.post(
            "/privacy/sign-in",
            data={"csrf": csrf_of(page), "channel": "phone", "contact": ANN["phone"]},
        )
        app.state.pages.queue.close()  # wait for the worker to write the file
        outbox = vault.settings.outbox_dir
        (written,) = outbox.glob("*.eml")
        modes = (stat.S_IMODE(outbox.stat().st_mode), stat.S_IMODE(written.stat().st_mode))
        assert modes == (0o700, 0o600)
        import email  # noqa: PLC0415
        import email.policy  # noqa: PLC0415

        message = email.message_from_bytes(written.read_bytes(), policy=email.policy.default)
        assert (message["To"], message["X-CVault-Channel"]) == (ANN["phone"], "phone")
        code = code_of(message)
        form = client.get("/privacy/code").text
        done = client.post("/privacy/code", data={"csrf": csrf_of(form), "code": code})
        assert ANN["email"] in done.text


def test_production_without_smtp_offers_no_sign_in(vault: Vault) -> None:
    """In production with no SMTP server configured, no code is written anywhere: the page
    says sign-in is unavailable and a posted request answers 503."""
    production = Vault.open(
        dataclasses.replace(vault.settings, environment=Environment.PRODUCTION),
        keyring=vault.keyring, database=vault.db, signer=vault.audit.signer, clock=vault.clock,
    )  # fmt: skip
    with TestClient(create_app(production, webhook_every=None), base_url="https://t") as client:
        page = client.get("/privacy")
        assert ('name="contact"' in page.text, "Secure" in page.headers["set-cookie"]) == (
            False,
            True,
        )
        token = csrf_token(production.page_secrets, client.cookies["cvault_browser"], None)
        answer = client.post(
            "/privacy/sign-in", data={"csrf": token, "channel": "email", "contact": ANN["email"]}
        )
        assert answer.status_code == 503
    assert not production.settings.outbox_dir.exists()
