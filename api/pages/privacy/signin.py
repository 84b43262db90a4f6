"""Signing in to the privacy page with a one-time code, and signing out.

``POST /privacy/sign-in`` answers the same way whether or not the address is on record:
a redirect to the code form, which says a code was sent *if* the address is on record.
The message is composed in the page's language and handed to the delivery queue, so
sending takes no time of the request. ``POST /privacy/code`` checks the code (bound to
this browser) and opens the session: a signed, HttpOnly, SameSite=Strict cookie.
"""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from api.pages.i18n import Language
from api.pages.privacy.base import PrivacyHandlers, SignedOut, page_handler
from api.pages.rendering import gettext, using_language
from api.pages.security import browser_id, read_form
from vault.errors import InvalidInput
from vault.sign_in import (
    CODE_LIFETIME,
    IssuedCode,
    OutgoingMessage,
    SignInFailed,
    SignInLimited,
    sign_in_context,
)

__all__ = ["SignInHandlers", "sign_in_message"]

_MINUTES: Final = int(CODE_LIFETIME.total_seconds() // 60)


def sign_in_message(issued: IssuedCode, language: Language) -> OutgoingMessage:
    """The code's message in the customer's language: an e-mail or a text message."""
    with using_language(language):
        subject = gettext("Your sign-in code")
        if issued.channel == "phone":
            body = gettext(
                "Your privacy page code: %(code)s (valid %(minutes)s minutes).",
                code=issued.code,
                minutes=language.number(_MINUTES),
            )
        else:
            body = gettext(
                "Your code to sign in to your privacy page is %(code)s.\n\nIt is valid for "
                "%(minutes)s minutes and works once. If you did not ask for it, ignore this "
                "message: nobody can sign in without the code.",
                code=issued.code,
                minutes=language.number(_MINUTES),
            )
    return OutgoingMessage(
        channel=issued.channel, to=issued.address, subject=subject, body=body,
        language=language.code,
    )  # fmt: skip


class SignInHandlers(PrivacyHandlers):
    def channels(self) -> list[str]:
        queue = self.base.queue
        return sorted(queue.sender.channels) if queue is not None else []

    @page_handler
    async def home(self, request: Request) -> Response:
        """Signed in: the overview; otherwise the sign-in form."""
        if await self.base.current(request) is not None:
            return RedirectResponse("/privacy/data", status_code=303)
        return self._form(request)

    def _form(self, request: Request, *, error: str | None = None, status: int = 200) -> Response:
        page = self.renderer.context(request)
        values = {"channels": self.channels(), "error": error}
        return self.renderer.render(page, "privacy/sign_in.html", values, status=status)

    @page_handler
    async def request_code(self, request: Request) -> Response:
        form = await read_form(request, self.vault.page_secrets, None)
        channel = str(form.get("channel", ""))
        contact = str(form.get("contact", ""))
        if channel not in self.channels():
            return self._form(request, error="unavailable", status=503)
        client = self.base.client(request)
        browser = browser_id(request)
        language = self.renderer.context(request).language

        def issue() -> IssuedCode | None:
            with self.vault.unit(sign_in_context(client)) as s:
                return self.vault.sign_in.request(s, channel, contact, browser=browser)

        try:
            issued = await self.base.run(issue)
        except SignInLimited:
            return self._form(request, error="limited", status=429)
        except InvalidInput:
            return self._form(request, error=f"invalid_{channel}", status=400)
        if issued is not None and self.base.queue is not None:
            self.base.queue.submit(sign_in_message(issued, language))
        return RedirectResponse("/privacy/code", status_code=303)

    @page_handler
    async def code_form(self, request: Request) -> Response:
        return self._code_page(request)

    def _code_page(
        self, request: Request, *, error: str | None = None, status: int = 200
    ) -> Response:
        page = self.renderer.context(request)
        values = {"error": error, "minutes": _MINUTES}
        return self.renderer.render(page, "privacy/code.html", values, status=status)

    @page_handler
    async def check_code(self, request: Request) -> Response:
        form = await read_form(request, self.vault.page_secrets, None)
        typed = str(form.get("code", ""))
        client = self.base.client(request)
        browser = browser_id(request)

        def verify() -> str:
            with self.vault.unit(sign_in_context(client)) as s:
                customer_id = self.vault.sign_in.verify(s, typed, browser=browser)
                opened = self.vault.page_sessions.open_for_customer(s, customer_id, client=client)
            return opened.cookie

        try:
            cookie = await self.base.run(verify)
        except SignInLimited:
            return self._code_page(request, error="limited", status=429)
        except SignInFailed:
            return self._code_page(request, error="wrong", status=400)
        response = RedirectResponse("/privacy/data", status_code=303)
        response.headers.append("set-cookie", self.base.session_cookie(request, cookie))
        return response

    @page_handler
    async def sign_out(self, request: Request) -> Response:
        signed = await self.base.current(request)
        if signed is None:
            raise SignedOut
        await read_form(request, self.vault.page_secrets, str(signed.id))
        context = signed.context("self")

        def revoke() -> None:
            with self.vault.unit(context) as s:
                self.vault.page_sessions.revoke(s, signed)

        await self.base.run(revoke)
        response = RedirectResponse("/privacy", status_code=303)
        response.headers.append("set-cookie", self.base.session_cookie(request, "", clear=True))
        return response
