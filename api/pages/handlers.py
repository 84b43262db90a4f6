"""What the privacy page and the console share in their handlers: the signed-out signal,
the session cookie, the base of handler groups, and the decorator that turns refusals
into error pages with a fixed sentence (nothing of the request echoed)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from api.pages.rendering import Renderer
from api.pages.security import cookie_header, secure_cookies
from policies import AccessDenied
from vault.errors import VaultError
from vault.logs import get_logger
from vault.runtime import Vault

__all__ = ["SectionBase", "SectionHandlers", "SignedOut", "section_cookie", "section_handler"]

log = get_logger("api.pages")


class SignedOut(Exception):
    """No valid session: the handler answers with the section's sign-in page."""


class SectionBase(Protocol):
    """What a section's shared state offers its handlers."""

    vault: Vault
    renderer: Renderer

    def session_cookie(self, request: Request, value: str, *, clear: bool = False) -> str: ...


B = TypeVar("B", bound=SectionBase)


class SectionHandlers(Generic[B]):
    """Base of a section's handler groups: each holds the section's shared state."""

    def __init__(self, base: B) -> None:
        self.base = base
        self.vault = base.vault
        self.renderer = base.renderer

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


H = TypeVar("H", bound=SectionHandlers[Any])
Handler = Callable[[H, Request], Awaitable[Response]]


def section_cookie(
    request: Request, vault: Vault, name: str, value: str, *, clear: bool = False
) -> str:
    """The section's session cookie (Secure over TLS and in production), or its removal."""
    secure = secure_cookies(request, production=vault.settings.production)
    if clear:
        return cookie_header(name, "", secure=secure, max_age=0)
    return cookie_header(name, value, secure=secure)


def section_handler(
    *, home: str, cookie: str, statuses: Sequence[tuple[type[Exception], int]], name: str
) -> Callable[[Handler[H]], Handler[H]]:
    """A decorator for the section at ``home``: signed-out requests go to its sign-in page
    (the stale ``cookie`` cleared); HTTP errors and domain refusals become error pages with
    a fixed sentence (``statuses`` maps refusals to codes); anything else is logged by
    class and is a 500."""

    def decorate(handler: Handler[H]) -> Handler[H]:
        @functools.wraps(handler)
        async def wrapped(self: H, request: Request) -> Response:
            try:
                return await handler(self, request)
            except SignedOut:
                response = RedirectResponse(home, status_code=303)
                if request.cookies.get(cookie):
                    response.headers.append(
                        "set-cookie", self.base.session_cookie(request, "", clear=True)
                    )
                return response
            except HTTPException as exc:
                status = exc.status_code
            except AccessDenied:
                status = 403
            except VaultError as exc:
                status = next((code for kind, code in statuses if isinstance(exc, kind)), 400)
                if getattr(exc, "code", "") == "NOT_FOUND":
                    status = 404
            except Exception as exc:  # noqa: BLE001 - the page says sorry; the log names the class
                log.error(f"{name} page failed", error=type(exc).__name__, path=request.url.path)  # noqa: TRY400
                status = 500
            return self.renderer.error(self.renderer.context(request), status)

        return wrapped

    return decorate
