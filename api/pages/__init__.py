"""Pages for people: server-rendered HTML next to GraphQL, one more edge over the same
domain services (policy, consent and audit apply unchanged).

* ``security``: headers (CSP without ``'unsafe-inline'``, ``frame-ancestors 'none'``,
  ``no-store``), the browser id cookie, CSRF tokens bound to the session;
* ``i18n``: the four catalogs (en, fa, th, zh_Hans; compiled in memory at start-up),
  the choice of language, Babel formats; ``catalogs``: extracting and updating them;
* ``rendering``: the Jinja2 environment and error pages that echo nothing;
* ``words``: the vocabulary shown for enum words, marked for translation;
* ``privacy/``: the customers' page ``/privacy``; ``console/``: the staff's ``/console``.

Static files (``static/``: one hand-written style sheet, a little plain JavaScript,
vendored GraphiQL) are served by the vault itself; nothing is loaded from another host.
:class:`Pages` builds the routes and owns what must be closed at shutdown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from api.pages.console import ConsoleBase, OidcConfig, console_routes
from api.pages.i18n import LANGUAGE_COOKIE, LANGUAGES
from api.pages.privacy import PrivacyBase, privacy_routes
from api.pages.rendering import Renderer
from api.pages.security import PAGE_PREFIXES, PageSecurityMiddleware, cookie_header, secure_cookies
from consent import Privacy
from vault.runtime import Vault
from vault.sign_in import DeliveryQueue, sender_for

__all__ = ["STATIC", "PageSecurityMiddleware", "Pages"]

STATIC: Final = Path(__file__).resolve().parent / "static"
_YEAR: Final = 365 * 24 * 3600


class Pages:
    """The pages of one vault: routes, the delivery queue of sign-in messages."""

    def __init__(self, vault: Vault, privacy: Privacy | None = None) -> None:
        self.vault = vault
        sender = sender_for(vault.settings)
        self.queue = DeliveryQueue(sender) if sender is not None else None
        self.renderer = Renderer(vault.page_secrets)
        services = privacy or Privacy.of(vault)
        self.privacy = PrivacyBase(vault, services, self.renderer, self.queue)
        self.console = ConsoleBase(vault, services, self.renderer, OidcConfig.from_env())

    def __repr__(self) -> str:
        return f"Pages(queue={self.queue!r})"

    def routes(self) -> list[BaseRoute]:
        return [
            *privacy_routes(self.privacy),
            *console_routes(self.console),
            Route("/lang/{code}", self.switch_language, methods=["GET"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]

    async def switch_language(self, request: Request) -> Response:
        """The language switcher: a cookie for a year, then back to the page it was on
        (only a path of the pages; anything else goes to ``/privacy``)."""
        code = request.path_params["code"]
        back = request.query_params.get("next", "/privacy")
        parts = urlsplit(back)
        if parts.scheme or parts.netloc or not back.startswith(PAGE_PREFIXES) or "\\" in back:
            back = "/privacy"
        response = RedirectResponse(back, status_code=303)
        if code in LANGUAGES:
            secure = secure_cookies(request, production=self.vault.settings.production)
            response.headers.append(
                "set-cookie",
                cookie_header(LANGUAGE_COOKIE, code, secure=secure, max_age=_YEAR, same_site="Lax"),
            )
        return response

    def close(self) -> None:
        if self.queue is not None:
            self.queue.close()
