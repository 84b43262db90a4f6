"""What every page response carries, and the CSRF check of every form.

:class:`PageSecurityMiddleware` acts on the pages' paths only (``/privacy``, ``/console``,
``/static``, ``/lang``, GraphiQL's page):

* ``Content-Security-Policy`` with no ``'unsafe-inline'`` anywhere: the pages have no
  inline script or style at all (every script and style is a file under ``/static``),
  so no nonce is needed; ``frame-ancestors 'none'``, ``form-action 'self'``,
  ``base-uri 'none'``, nothing from another host;
* ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``,
  ``X-Frame-Options: DENY``, ``Cross-Origin-Opener-Policy: same-origin``;
* ``Cache-Control: no-store`` on every page (pages show personal data; static files
  are cacheable);
* a browser id cookie (``cvault_browser``: random, HttpOnly, SameSite=Lax) made on the
  first visit: sign-in codes are bound to it, and so is the CSRF token.

CSRF: a token bound to the session. Every form carries ``csrf`` =
``MAC("csrf", browser id | page session id)`` (:mod:`vault.crypto.pages`); a POST whose
token does not verify is refused with 403 before anything else is read. The MAC is
keyed by the vault, so a site that can plant a cookie still cannot mint a token, and
signing in or out changes the token. Cookies are ``Secure`` when the request came over
TLS (the scheme uvicorn reports, ``--proxy-headers`` behind a proxy) and always in
production.
"""

from __future__ import annotations

import re
from typing import Final

from starlette.datastructures import FormData, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vault.crypto.pages import PageSecrets, SignatureInvalid

__all__ = [
    "BROWSER_COOKIE",
    "CSP",
    "PAGE_PREFIXES",
    "PageSecurityMiddleware",
    "browser_id",
    "cookie_header",
    "csrf_token",
    "read_form",
    "secure_cookies",
]

BROWSER_COOKIE: Final = "cvault_browser"
PAGE_PREFIXES: Final = ("/privacy", "/console", "/static/", "/lang")
CSP: Final = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
_HEADERS: Final = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}
_BROWSER_ID: Final = re.compile(r"^[A-Za-z0-9_-]{43}$")
_STATE_KEY: Final = "cvault.browser"
_MAX_FORM_FIELDS: Final = 64
_MAX_FORM_BYTES: Final = 64 * 1024


def secure_cookies(connection: HTTPConnection, *, production: bool) -> bool:
    return production or connection.url.scheme == "https"


def cookie_header(
    name: str,
    value: str,
    *,
    secure: bool,
    max_age: int | None = None,
    same_site: str = "Strict",
) -> str:
    """A ``Set-Cookie`` value: HttpOnly, Path=/, SameSite, Secure when asked."""
    parts = [f"{name}={value}", "Path=/", "HttpOnly", f"SameSite={same_site}"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def browser_id(connection: HTTPConnection) -> str:
    """The request's browser id (made by the middleware on a first visit)."""
    return str(connection.scope["state"][_STATE_KEY])


def csrf_token(secrets: PageSecrets, browser: str, session_id: str | None) -> str:
    return secrets.mac("csrf", f"{browser}|{session_id or ''}")


async def read_form(request: Request, secrets: PageSecrets, session_id: str | None) -> FormData:
    """The POSTed form after its CSRF token verified; 403 otherwise, 413 when too big.
    No field value is ever repeated in an error."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > _MAX_FORM_BYTES:
        raise HTTPException(413)
    form = await request.form(max_files=0, max_fields=_MAX_FORM_FIELDS, max_part_size=8192)
    given = form.get("csrf")
    if not isinstance(given, str):
        raise HTTPException(403)
    try:
        secrets.check("csrf", f"{browser_id(request)}|{session_id or ''}", given)
    except SignatureInvalid:
        raise HTTPException(403) from None
    return form


class PageSecurityMiddleware:
    """Security headers, ``no-store`` and the browser id cookie, on the pages' paths."""

    def __init__(self, app: ASGIApp, *, production: bool = False) -> None:
        self.app = app
        self.production = production

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith(PAGE_PREFIXES):
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        current = connection.cookies.get(BROWSER_COOKIE, "")
        fresh = None if _BROWSER_ID.match(current) else PageSecrets.new_token()
        scope.setdefault("state", {})[_STATE_KEY] = fresh or current
        static = path.startswith("/static/")
        secure = secure_cookies(connection, production=self.production)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _HEADERS.items():
                    headers[name] = value
                if not static:
                    headers["cache-control"] = "no-store"
                if fresh is not None and not static:
                    headers.append(
                        "set-cookie",
                        cookie_header(BROWSER_COOKIE, fresh, secure=secure, same_site="Lax"),
                    )
            await send(message)

        await self.app(scope, receive, send_with_headers)
