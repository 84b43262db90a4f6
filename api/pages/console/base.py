"""What every console handler shares: the services, the signed-in staff session, running
domain work in a thread, and turning failures into pages that echo nothing.

A console session (``page_sessions.kind = 'console'``) acts as its staff member: the
subject and role it was opened with, and the role's purpose (``compliance_officer`` ->
``compliance``, ``admin`` -> ``administration``). Every handler opens ``Vault.unit``
with that context and calls the same services as GraphQL and the CLI, so policy and
audit apply unchanged: every console action is an audit entry under that actor.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import RedirectResponse, Response

from api.pages.console.settings import OidcConfig
from api.pages.privacy.base import request_id
from api.pages.rendering import PageContext, Renderer
from api.pages.security import cookie_header, read_form, secure_cookies
from consent import Privacy
from policies import AccessDenied
from vault.authorization.context import AccessContext
from vault.errors import CustomerNotFound, InvalidInput, ProcessingRefused, VaultError
from vault.logs import get_logger
from vault.runtime import Vault
from vault.sign_in import STAFF_PURPOSES, PageSession, SessionInvalid

__all__ = ["CONSOLE_COOKIE", "ConsoleBase", "ConsoleHandlers", "Staff", "console_handler"]

CONSOLE_COOKIE: Final = "cvault_console"
log = get_logger("api.pages.console")
T = TypeVar("T")
H = TypeVar("H", bound="ConsoleHandlers")


class SignedOut(Exception):
    """No valid console session: the handler answers with the sign-in page."""


@dataclass(frozen=True, slots=True)
class Staff:
    """A signed-in console request: its session and page context (CSRF bound to it)."""

    session: PageSession
    page: PageContext

    @property
    def purpose(self) -> str:
        return STAFF_PURPOSES[self.session.role]

    def context(self) -> AccessContext:
        return self.session.context(self.purpose, request_id())


class ConsoleBase:
    def __init__(
        self,
        vault: Vault,
        privacy: Privacy,
        renderer: Renderer,
        oidc: OidcConfig | None = None,
    ) -> None:
        self.vault = vault
        self.oidc = oidc  # None: OpenID Connect sign-in is off
        self.privacy = privacy
        self.renderer = renderer

    def __repr__(self) -> str:
        return "ConsoleBase()"

    async def run(self, work: Callable[[], T]) -> T:
        """Domain work (blocking database calls) off the event loop."""
        return await run_in_threadpool(work)

    def client(self, connection: HTTPConnection) -> str | None:
        host = connection.client.host if connection.client else None
        if host is None:
            return None
        return self.vault.keyring.blind_indexer.pseudonym("audit.client", host)

    async def current(self, request: Request) -> PageSession | None:
        cookie = request.cookies.get(CONSOLE_COOKIE)
        if not cookie:
            return None
        client = self.client(request)

        def resume() -> PageSession:
            with self.vault.db.transaction() as s:
                return self.vault.page_sessions.resume(s, cookie, "console", client=client)

        try:
            found = await self.run(resume)
        except SessionInvalid:
            return None
        return found if found.role in STAFF_PURPOSES else None

    async def staff(self, request: Request) -> Staff:
        found = await self.current(request)
        if found is None:
            raise SignedOut
        return Staff(found, self.renderer.context(request, str(found.id)))

    async def form(self, request: Request, staff: Staff) -> dict[str, str]:
        """The POSTed form after its CSRF token verified (403 otherwise): text fields only."""
        form = await read_form(request, self.vault.page_secrets, str(staff.session.id))
        return {k: v for k, v in form.items() if isinstance(v, str)}

    def session_cookie(self, request: Request, value: str, *, clear: bool = False) -> str:
        secure = secure_cookies(request, production=self.vault.settings.production)
        if clear:
            return cookie_header(CONSOLE_COOKIE, "", secure=secure, max_age=0)
        return cookie_header(CONSOLE_COOKIE, value, secure=secure)


class ConsoleHandlers:
    """Base of the handler groups: each holds the shared :class:`ConsoleBase`."""

    def __init__(self, base: ConsoleBase) -> None:
        self.base = base
        self.vault = base.vault
        self.renderer = base.renderer

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


_STATUS: Final = [
    (InvalidInput, 400),
    (CustomerNotFound, 404),
    (ProcessingRefused, 403),
]


def console_handler(
    handler: Callable[[H, Request], Awaitable[Response]],
) -> Callable[[H, Request], Awaitable[Response]]:
    """Signed-out requests go to the console's sign-in page; HTTP errors and domain
    refusals become error pages with a fixed sentence; anything else is a 500."""

    @functools.wraps(handler)
    async def wrapped(self: H, request: Request) -> Response:
        try:
            return await handler(self, request)
        except SignedOut:
            response = RedirectResponse("/console", status_code=303)
            if request.cookies.get(CONSOLE_COOKIE):
                response.headers.append(
                    "set-cookie", self.base.session_cookie(request, "", clear=True)
                )
            return response
        except HTTPException as exc:
            status = exc.status_code
        except AccessDenied:
            status = 403
        except VaultError as exc:
            status = next((code for kind, code in _STATUS if isinstance(exc, kind)), 400)
            if getattr(exc, "code", "") == "NOT_FOUND":
                status = 404
        except Exception as exc:  # noqa: BLE001 - the page says sorry; the log names the class
            log.error("console page failed", error=type(exc).__name__, path=request.url.path)  # noqa: TRY400
            status = 500
        return self.renderer.error(self.renderer.context(request), status)

    return wrapped
