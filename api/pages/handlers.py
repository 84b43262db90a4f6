"""What the privacy page and the console share in their handlers: the section's state
(its session cookie, the client's pseudonym, resuming a page session, running domain work
off the event loop), the signed-out signal, the base of handler groups, and the decorator
that turns refusals into error pages with a fixed sentence (nothing of the request
echoed)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import RedirectResponse, Response

from api.clients import ClientPseudonyms
from api.pages.rendering import Renderer
from api.pages.security import cookie_header, secure_cookies
from consent import Privacy
from policies import AccessDenied
from vault.errors import VaultError
from vault.logs import get_logger
from vault.runtime import Vault
from vault.sign_in import PageSession, SessionErased, SessionInvalid

__all__ = ["SectionBase", "SectionHandlers", "SignedOut", "section_handler"]

log = get_logger("api.pages")


class SignedOut(Exception):
    """No valid session: the handler answers with the section's sign-in page, or, when the
    session ended because its customer was erased, with the page saying so (once)."""

    def __init__(self, *, erased: bool = False) -> None:
        super().__init__("signed out")
        self.erased = erased


class SectionBase:
    """A section's shared state (``/privacy``, ``/console``): its session cookie and kind."""

    cookie: ClassVar[str]
    kind: ClassVar[str]  # the page_sessions kind its cookie resumes

    def __init__(self, vault: Vault, privacy: Privacy, renderer: Renderer) -> None:
        self.vault = vault
        self.privacy = privacy
        self.renderer = renderer
        self._clients = ClientPseudonyms(vault.keyring.blind_indexer)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    async def run(self, work: Callable[[], T]) -> T:
        """Domain work (blocking database calls) off the event loop."""
        return await run_in_threadpool(work)

    def client(self, connection: HTTPConnection) -> str | None:
        """The client address as the audit trail records it: a keyed pseudonym."""
        return self._clients.of(connection)

    async def current(self, request: Request) -> PageSession | None:
        """The page session the section's cookie names, if it is still valid; a session
        its customer's erasure ended raises :class:`SignedOut` (``erased``)."""
        cookie = request.cookies.get(self.cookie)
        if not cookie:
            return None
        client = self.client(request)

        def resume() -> PageSession:
            with self.vault.db.transaction() as s:
                return self.vault.page_sessions.resume(s, cookie, self.kind, client=client)

        try:
            return await self.run(resume)
        except SessionErased:
            raise SignedOut(erased=True) from None
        except SessionInvalid:
            return None

    def session_cookie(self, request: Request, value: str, *, clear: bool = False) -> str:
        """The section's session cookie (Secure over TLS and in production), or its removal."""
        secure = secure_cookies(request, production=self.vault.settings.production)
        if clear:
            return cookie_header(self.cookie, "", secure=secure, max_age=0)
        return cookie_header(self.cookie, value, secure=secure)


T = TypeVar("T")
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


def section_handler(
    *, home: str, statuses: Sequence[tuple[type[Exception], int]], name: str
) -> Callable[[Handler[H]], Handler[H]]:
    """A decorator for the section at ``home``: signed-out requests go to its sign-in page
    (a stale session cookie cleared); HTTP errors and domain refusals become error pages with
    a fixed sentence (``statuses`` maps refusals to codes); anything else is logged by
    class and is a 500."""

    def decorate(handler: Handler[H]) -> Handler[H]:
        @functools.wraps(handler)
        async def wrapped(self: H, request: Request) -> Response:
            try:
                return await handler(self, request)
            except SignedOut as out:
                response: Response = (
                    self.renderer.render(self.renderer.context(request), f"{name}/erased.html")
                    if out.erased
                    else RedirectResponse(home, status_code=303)
                )
                if request.cookies.get(self.base.cookie):
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
