"""Signing in to the console and out of it.

``GET /console/link?t=TOKEN`` redeems a one-time link printed by ``cvault console link``
(5 minutes, once): the link's digest is swapped for a new session's, a console cookie
(signed, HttpOnly, SameSite=Strict) is set, and the browser goes to ``/console``. The
token is a random secret, never personal data; the page answers the same for an unknown,
spent or expired link. The token rides in the query string, which the request log
does not record (it logs the path only; uvicorn's access log is off), so it never
reaches a log line.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from api.pages.console.base import ConsoleHandlers, console_handler
from audit.entries import AuditAction
from vault.authorization.context import buffer_of
from vault.sign_in import STAFF_PURPOSES, SessionInvalid, sign_in_context

__all__ = ["SignInHandlers"]


class SignInHandlers(ConsoleHandlers):
    @console_handler
    async def home(self, request: Request) -> Response:
        """Signed in: the overview; otherwise how to sign in."""
        found = await self.base.current(request)
        if found is None:
            page = self.renderer.context(request)
            return self.renderer.render(page, "console/sign_in.html", self._values(False))
        staff = await self.base.staff(request)
        return self.renderer.render(staff.page, "console/home.html", {"staff": staff.session})

    @console_handler
    async def redeem(self, request: Request) -> Response:
        token = request.query_params.get("t", "")
        client = self.base.client(request)

        def redeem() -> str:
            with self.vault.db.transaction() as s:
                opened = self.vault.page_sessions.redeem_link(s, token, client=client)
            staff = opened.session
            with self.vault.unit(staff.context(STAFF_PURPOSES[staff.role])) as s:
                buffer_of(s).add(
                    AuditAction.SIGN_IN, detail={"step": "signed_in", "kind": "console"}
                )
            return opened.cookie

        try:
            cookie = await self.base.run(redeem)
        except SessionInvalid:
            await self.base.run(lambda: self._failed(client))
            page = self.renderer.context(request)
            values = self._values(True)
            return self.renderer.render(page, "console/sign_in.html", values, status=400)
        response = RedirectResponse("/console", status_code=303)
        response.headers.append("set-cookie", self.base.session_cookie(request, cookie))
        return response

    def _values(self, failed: bool) -> dict[str, bool]:
        return {"failed": failed, "refused": False, "oidc": self.base.oidc is not None}

    def _failed(self, client: str | None) -> None:
        with self.vault.unit(sign_in_context(client)) as s:
            buffer_of(s).add(
                AuditAction.SIGN_IN, detail={"step": "failed", "kind": "console", "reason": "link"}
            )

    @console_handler
    async def sign_out(self, request: Request) -> Response:
        staff = await self.base.staff(request)
        await self.base.form(request, staff)
        session = staff.session
        context = staff.context()

        def revoke() -> None:
            with self.vault.unit(context) as s:
                self.vault.page_sessions.revoke(s, session)

        await self.base.run(revoke)
        response = RedirectResponse("/console", status_code=303)
        response.headers.append("set-cookie", self.base.session_cookie(request, "", clear=True))
        return response
