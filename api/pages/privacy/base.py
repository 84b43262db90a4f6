"""What every privacy-page handler shares: the services, the signed-in session, running
domain work in a thread, and turning failures into pages that echo nothing.

A signed-in request acts as the data subject with purpose ``self``
(``AccessContext(Actor("privacy:<session id>", "data_subject", customer id), "self")``)
through the same services as GraphQL, inside ``Vault.unit``: every read is audited and
shows in the customer's access history.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar

import structlog
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request

from api.pages.handlers import SectionHandlers, SignedOut, section_cookie, section_handler
from api.pages.rendering import PageContext, Renderer
from consent import Privacy
from vault.authorization.context import AccessContext
from vault.errors import CustomerNotFound, InvalidInput, ProcessingRefused
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
        return section_cookie(request, self.vault, SESSION_COOKIE, value, clear=clear)


class PrivacyHandlers(SectionHandlers[PrivacyBase]):
    """Base of the handler groups: each holds the shared :class:`PrivacyBase`."""


_STATUS: Final = [
    (SignInLimited, 429),
    (InvalidInput, 400),
    (CustomerNotFound, 404),
    (ProcessingRefused, 403),
]


page_handler = section_handler(
    home="/privacy", cookie=SESSION_COOKIE, statuses=_STATUS, name="privacy"
)
