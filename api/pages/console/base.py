"""What every console handler shares: the services, the signed-in staff session, running
domain work in a thread, and turning failures into pages that echo nothing.

A console session (``page_sessions.kind = 'console'``) acts as its staff member: the
subject and role it was opened with, and the role's purpose (``compliance_officer`` ->
``compliance``, ``admin`` -> ``administration``). Every handler opens ``Vault.unit``
with that context and calls the same services as GraphQL and the CLI, so policy and
audit apply unchanged: every console action is an audit entry under that actor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from starlette.requests import Request

from api.pages.console.settings import OidcConfig
from api.pages.handlers import SectionBase, SectionHandlers, SignedOut, section_handler
from api.pages.privacy.base import request_id
from api.pages.rendering import PageContext, Renderer
from api.pages.security import read_form
from consent import Privacy
from vault.authorization.context import AccessContext
from vault.errors import CustomerNotFound, InvalidInput, ProcessingRefused
from vault.runtime import Vault
from vault.sign_in import STAFF_PURPOSES, PageSession

__all__ = ["CONSOLE_COOKIE", "ConsoleBase", "ConsoleHandlers", "Staff", "console_handler"]

CONSOLE_COOKIE: Final = "cvault_console"


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


class ConsoleBase(SectionBase):
    cookie = CONSOLE_COOKIE
    kind = "console"

    def __init__(
        self,
        vault: Vault,
        privacy: Privacy,
        renderer: Renderer,
        oidc: OidcConfig | None = None,
    ) -> None:
        super().__init__(vault, privacy, renderer)
        self.oidc = oidc  # None: OpenID Connect sign-in is off

    async def current(self, request: Request) -> PageSession | None:
        """The console session, if valid and held by a staff role."""
        found = await super().current(request)
        return found if found is not None and found.role in STAFF_PURPOSES else None

    async def staff(self, request: Request) -> Staff:
        found = await self.current(request)
        if found is None:
            raise SignedOut
        return Staff(found, self.renderer.context(request, str(found.id)))

    async def form(self, request: Request, staff: Staff) -> dict[str, str]:
        """The POSTed form after its CSRF token verified (403 otherwise): text fields only."""
        form = await read_form(request, self.vault.page_secrets, str(staff.session.id))
        return {k: v for k, v in form.items() if isinstance(v, str)}


class ConsoleHandlers(SectionHandlers[ConsoleBase]):
    """Base of the handler groups: each holds the shared :class:`ConsoleBase`."""


_STATUS: Final = [
    (InvalidInput, 400),
    (CustomerNotFound, 404),
    (ProcessingRefused, 403),
]


console_handler = section_handler(home="/console", statuses=_STATUS, name="console")
