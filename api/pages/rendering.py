"""Rendering pages: one Jinja2 environment (autoescaped, strict about undefined names,
gettext through Babel catalogs) and the page context every template shares.

Templates live in ``api/pages/templates`` (``base.html`` and one folder per page:
``privacy/``, later ``console/``). Messages are marked ``{{ _("...") }}`` or
``{% trans %}``; the request's language is active while a template renders, so the
catalogs decide every word. Error pages say what happened in a fixed sentence and
never repeat what the request carried.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import HTTPConnection
from starlette.responses import HTMLResponse

from api.pages.i18n import LANGUAGE_COOKIE, LANGUAGES, Language, choose_language, translations
from api.pages.security import browser_id, csrf_token
from vault.crypto.pages import PageSecrets

__all__ = [
    "ERRORS",
    "TEMPLATES",
    "PageContext",
    "Renderer",
    "gettext",
    "language_of",
    "using_language",
]

TEMPLATES: Final = Path(__file__).resolve().parent / "templates"
_ACTIVE: contextvars.ContextVar[Language] = contextvars.ContextVar("cvault_page_language")


def _(message: str) -> str:
    """Marks a message for extraction; translated where it is shown."""
    return message


# The fixed sentence of each error page: nothing of the request goes into it.
ERRORS: Final = {
    400: _("The request could not be understood."),
    403: _(
        "This form has expired or was not sent from this page. "
        "Please go back, reload the page and try again."
    ),
    404: _("There is nothing here."),
    405: _("This address does not accept that kind of request."),
    413: _("What was sent is too large."),
    429: _("Too many attempts. Please wait a few minutes and try again."),
    500: _("Something went wrong on our side. Please try again later."),
    503: _("This service is not available right now."),
}


def gettext(message: str, **variables: Any) -> str:  # noqa: ANN401 - any format value
    """The message in the active language, ``%(name)s`` variables filled in."""
    active = _ACTIVE.get(LANGUAGES["en"])
    text = translations(active.code).ugettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables: Any) -> str:  # noqa: ANN401
    active = _ACTIVE.get(LANGUAGES["en"])
    text = translations(active.code).ungettext(singular, plural, n)
    return text % {"num": n, **variables}


@contextmanager
def using_language(language: Language) -> Iterator[None]:
    token = _ACTIVE.set(language)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def language_of(connection: HTTPConnection) -> Language:
    return choose_language(
        connection.cookies.get(LANGUAGE_COOKIE), connection.headers.get("accept-language")
    )


@dataclass(frozen=True, slots=True)
class PageContext:
    """Per request: the language, the CSRF token of its forms, and the page session id
    (when signed in) the token is bound to."""

    language: Language
    csrf: str = field(repr=False)
    session_id: str | None = None
    path: str = "/"


class Renderer:
    def __init__(self, secrets: PageSecrets) -> None:
        self._secrets = secrets
        env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
        env.globals["languages"] = list(LANGUAGES.values())
        self.env = env

    def __repr__(self) -> str:
        return "Renderer()"

    def context(self, connection: HTTPConnection, session_id: str | None = None) -> PageContext:
        return PageContext(
            language=language_of(connection),
            csrf=csrf_token(self._secrets, browser_id(connection), session_id),
            session_id=session_id,
            path=connection.url.path,
        )

    def render(
        self,
        page: PageContext,
        template: str,
        values: Mapping[str, Any] | None = None,
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        with using_language(page.language):
            html = self.env.get_template(template).render(
                page=page, lang=page.language, **(values or {})
            )
        return HTMLResponse(html, status_code=status, headers=dict(headers or {}))

    def error(self, page: PageContext, status: int) -> HTMLResponse:
        """An error page with a fixed sentence. Its language links lead back to the
        section's home, never to the path asked for (which may carry anything)."""
        known = status if status in ERRORS else 500
        home = "/console" if page.path.startswith("/console") else "/privacy"
        return self.render(
            replace(page, path=home),
            "error.html",
            {"status": known, "message": ERRORS[known]},
            status=known,
        )
