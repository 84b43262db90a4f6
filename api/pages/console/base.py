"""What every console handler shares: the services, the signed-in staff session, running
domain work in a thread, and turning failures into pages that echo nothing.

A console session (``page_sessions.kind = 'console'``) acts as its staff member: the
subject and role it was opened with, and the role's purpose (``compliance_officer`` ->
``compliance``, ``admin`` -> ``administration``). Every handler opens ``Vault.unit``
with that context and calls the same services as GraphQL and the CLI, so policy and
audit apply unchanged: every console action is an audit entry under that actor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request

from api.pages.console.settings import OidcConfig
from api.pages.handlers import SectionHandlers, SignedOut, section_cookie, section_handler
from api.pages.privacy.base import request_id
from api.pages.rendering import PageContext, Renderer
from api.pages.security import read_form
from consent import Privacy
from vault.authorization.context import AccessContext
from vault.errors import CustomerNotFound, InvalidInput, ProcessingRefused
from vault.logs import get_logger
from vault.runtime import Vault
from vault.sign_in import STAFF_PURPOSES, PageSession, SessionInvalid

__all__ = ["CONSOLE_COOKIE", "ConsoleBase", "ConsoleHandlers", "Staff", "console_handler"]

CONSOLE_COOKIE: Final = "cvault_console"
log = get_logger("api.pages.console")
T = TypeVar("T")
H = TypeVar("H", bound="ConsoleHandlers")


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
        return section_cookie(request, self.vault, CONSOLE_COOKIE, value, clear=clear)


class ConsoleHandlers(SectionHandlers[ConsoleBase]):
    """Base of the handler groups: each holds the shared :class:`ConsoleBase`."""


_STATUS: Final = [
    (InvalidInput, 400),
    (CustomerNotFound, 404),
    (ProcessingRefused, 403),
]


console_handler = section_handler(
    home="/console", cookie=CONSOLE_COOKIE, statuses=_STATUS, name="console"
)
