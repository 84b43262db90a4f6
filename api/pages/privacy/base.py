"""What every privacy-page handler shares: the services, the signed-in session, running
domain work in a thread, and turning failures into pages that echo nothing.

A signed-in request acts as the data subject with purpose ``self``
(``AccessContext(Actor("privacy:<session id>", "data_subject", customer id), "self")``)
through the same services as GraphQL, inside ``Vault.unit``: every read is audited and
shows in the customer's access history.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Final

import structlog
from starlette.requests import Request

from api.pages.handlers import SectionBase, SectionHandlers, SignedOut, section_handler
from api.pages.rendering import PageContext, Renderer
from consent import Privacy
from vault.authorization.context import AccessContext
from vault.errors import CustomerNotFound, InvalidInput, ProcessingRefused
from vault.runtime import Vault
from vault.sign_in import DeliveryQueue, PageSession, SignInLimited

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


class PrivacyBase(SectionBase):
    cookie = SESSION_COOKIE
    kind = "privacy"

    def __init__(
        self, vault: Vault, privacy: Privacy, renderer: Renderer, queue: DeliveryQueue | None
    ) -> None:
        super().__init__(vault, privacy, renderer)
        self.queue = queue

    async def signed_in(self, request: Request) -> Signed:
        found = await self.current(request)
        if found is None:
            raise SignedOut
        return Signed(found, self.renderer.context(request, str(found.id)))


class PrivacyHandlers(SectionHandlers[PrivacyBase]):
    """Base of the handler groups: each holds the shared :class:`PrivacyBase`."""


_STATUS: Final = [
    (SignInLimited, 429),
    (InvalidInput, 400),
    (CustomerNotFound, 404),
    (ProcessingRefused, 403),
]


page_handler = section_handler(home="/privacy", statuses=_STATUS, name="privacy")
