"""What every privacy-page handler shares: the services, the signed-in session, running
domain work in a thread, and turning failures into pages that echo nothing.

A signed-in request acts as the data subject with purpose ``self``
(``AccessContext(Actor("privacy:<session id>", "data_subject", customer id), "self")``)
through the same services as GraphQL, inside ``Vault.unit``: every read is audited and
shows in the customer's access history.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, TypeVar

import structlog
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import RedirectResponse, Response

from api.pages.rendering import PageContext, Renderer
from api.pages.security import cookie_header, secure_cookies
from consent import Privacy
from policies import AccessDenied
from vault.authorization.context import AccessContext
from vault.errors import CustomerNotFound, InvalidInput, ProcessingRefused, VaultError
from vault.logs import get_logger
from vault.runtime import Vault
from vault.sign_in import DeliveryQueue, PageSession, SessionInvalid, SignInLimited

__all__ = [
    "SESSION_COOKIE",
    "PrivacyBase",
    "PrivacyHandlers",
    "Signed",
    "SignedOut",
    "page_handler",
    "request_id",
]

SESSION_COOKIE: Final = "cvault_session"
PURPOSE: Final = "self"
log = get_logger("api.pages.privacy")
T = TypeVar("T")
H = TypeVar("H", bound="PrivacyHandlers")


@dataclass(frozen=True, slots=True)
class Signed:
    """A signed-in request: its session and its page context (CSRF bound to the session)."""

    session: PageSession
    page: PageContext

    @property
    def customer_id(self) -> uuid.UUID:
        """The customer the session acts for (a privacy session always names one)."""
        if self.session.customer_id is None:
            raise SignedOut
        return self.session.customer_id

    def context(self, request: Request) -> AccessContext:
        del request  # the request id comes from the log context the middleware bound
        return self.session.context(PURPOSE, request_id())


def request_id() -> str:
    """The request id the request-id middleware bound (a fresh one outside a request)."""
    bound = structlog.contextvars.get_contextvars().get("request_id")
    return str(bound) if bound else uuid.uuid4().hex


class SignedOut(Exception):
    """No valid session: the handler answers with the sign-in page."""


class PrivacyBase:
    def __init__(
        self, vault: Vault, privacy: Privacy, renderer: Renderer, queue: DeliveryQueue | None
    ) -> None:
        self.vault = vault
        self.privacy = privacy
        self.renderer = renderer
        self.queue = queue
        self._pseudonyms: dict[str, str] = {}

    def __repr__(self) -> str:
        return "PrivacyBase()"

    async def run(self, work: Callable[[], T]) -> T:
        """Domain work (blocking database calls) off the event loop."""
        return await run_in_threadpool(work)

    def client(self, connection: HTTPConnection) -> str | None:
        """The client address as the audit trail records it: a keyed pseudonym."""
        host = connection.client.host if connection.client else None
        if host is None:
            return None
        known = self._pseudonyms.get(host)
        if known is None:
            known = self.vault.keyring.blind_indexer.pseudonym("audit.client", host)
            if len(self._pseudonyms) > 4096:
                self._pseudonyms.clear()
            self._pseudonyms[host] = known
        return known

    async def current(self, request: Request) -> PageSession | None:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        client = self.client(request)

        def resume() -> PageSession:
            with self.vault.db.transaction() as s:
                return self.vault.page_sessions.resume(s, cookie, "privacy", client=client)

        try:
            return await self.run(resume)
        except SessionInvalid:
            return None

    async def signed_in(self, request: Request) -> Signed:
        found = await self.current(request)
        if found is None:
            raise SignedOut
        return Signed(found, self.renderer.context(request, str(found.id)))

    def session_cookie(self, request: Request, value: str, *, clear: bool = False) -> str:
        secure = secure_cookies(request, production=self.vault.settings.production)
        if clear:
            return cookie_header(SESSION_COOKIE, "", secure=secure, max_age=0)
        return cookie_header(SESSION_COOKIE, value, secure=secure)


class PrivacyHandlers:
    """Base of the handler groups: each holds the shared :class:`PrivacyBase`."""

    def __init__(self, base: PrivacyBase) -> None:
        self.base = base
        self.vault = base.vault
        self.renderer = base.renderer

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


_STATUS: Final = [
    (SignInLimited, 429),
    (InvalidInput, 400),
    (CustomerNotFound, 404),
    (ProcessingRefused, 403),
]


def page_handler(
    handler: Callable[[H, Request], Awaitable[Response]],
) -> Callable[[H, Request], Awaitable[Response]]:
    """Signed-out requests go to the sign-in page; HTTP errors and domain refusals become
    error pages with a fixed sentence; anything else is logged by class and is a 500."""

    @functools.wraps(handler)
    async def wrapped(self: H, request: Request) -> Response:
        try:
            return await handler(self, request)
        except SignedOut:
            response = RedirectResponse("/privacy", status_code=303)
            if request.cookies.get(SESSION_COOKIE):
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
            log.error("privacy page failed", error=type(exc).__name__, path=request.url.path)  # noqa: TRY400
            status = 500
        return self.renderer.error(self.renderer.context(request), status)

    return wrapped
