"""Signing in to the console through OpenID Connect (authorization code with PKCE),
with Authlib's Starlette client and discovery from ``CVAULT_OIDC_ISSUER``.

Configuration (environment): ``CVAULT_OIDC_ISSUER`` (turns it on), ``CVAULT_OIDC_CLIENT_ID``,
``CVAULT_OIDC_CLIENT_SECRET``, ``CVAULT_OIDC_ROLE_CLAIM`` (default ``groups``) and
``CVAULT_OIDC_ROLES`` (``group=role,group=role``: identity-provider groups to vault roles;
empty means the claim names vault roles itself). Only staff roles open a session; a
person whose claim maps to no staff role, or to two different ones, is refused (the
refusal is audited).

Authlib keeps the state, nonce and PKCE verifier in ``request.session``; here that is a
short-lived signed cookie (``cvault_oidc``, SameSite=Lax so that it comes back with the
identity provider's redirect, 10 minutes), not a server-wide session middleware.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any, Final

from authlib.integrations.starlette_client import OAuth, OAuthError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from api.pages.console.base import ConsoleHandlers, console_handler
from api.pages.console.settings import OidcConfig, role_from_claims
from api.pages.security import cookie_header, secure_cookies
from audit.entries import AuditAction
from vault.authorization.context import buffer_of
from vault.crypto.pages import SignatureInvalid
from vault.sign_in import STAFF_PURPOSES, sign_in_context

__all__ = ["OidcHandlers"]

_STATE_COOKIE: Final = "cvault_oidc"
_STATE_LABEL: Final = "oidc-state"
_STATE_LIFETIME: Final = 600


class OidcHandlers(ConsoleHandlers):
    def configure(self, config: OidcConfig | None) -> None:
        self.config = config
        self.oauth = OAuth()
        if config is not None:
            self.oauth.register(
                "vault",
                client_id=config.client_id,
                client_secret=config.client_secret,
                server_metadata_url=f"{config.issuer}/.well-known/openid-configuration",
                client_kwargs={"scope": "openid profile", "code_challenge_method": "S256"},
            )

    @console_handler
    async def login(self, request: Request) -> Response:
        if self.config is None:
            return self.renderer.error(self.renderer.context(request), 404)
        request.scope["session"] = {}
        callback = str(request.url_for("console_oidc_callback"))
        response: Response = await self.oauth.vault.authorize_redirect(request, callback)
        state = {"at": int(time.time()), "data": request.scope["session"]}
        encoded = base64.urlsafe_b64encode(json.dumps(state).encode()).decode().rstrip("=")
        secure = secure_cookies(request, production=self.vault.settings.production)
        response.headers.append(
            "set-cookie",
            cookie_header(
                _STATE_COOKIE, self.vault.page_secrets.seal(_STATE_LABEL, encoded),
                secure=secure, max_age=_STATE_LIFETIME, same_site="Lax",
            ),
        )  # fmt: skip
        return response

    @console_handler
    async def callback(self, request: Request) -> Response:
        if self.config is None:
            return self.renderer.error(self.renderer.context(request), 404)
        request.scope["session"] = self._state(request)
        try:
            token = await self.oauth.vault.authorize_access_token(request)
        except (OAuthError, KeyError, ValueError):
            return await self._refused(request, "oidc_failed")
        claims = token.get("userinfo") or {}
        subject = str(claims.get("sub", ""))
        role = role_from_claims(self.config, claims)
        if not subject or role is None or len(subject) > 128:
            return await self._refused(request, "no_staff_role")
        client = self.base.client(request)

        def open_session() -> str:
            with self.vault.db.transaction() as s:
                opened = self.vault.page_sessions.open_for_staff(s, subject, role, client=client)
            with self.vault.unit(opened.session.context(STAFF_PURPOSES[role])) as s:
                buffer_of(s).add(AuditAction.SIGN_IN, detail={"step": "signed_in", "kind": "oidc"})
            return opened.cookie

        cookie = await self.base.run(open_session)
        response = RedirectResponse("/console", status_code=303)
        response.headers.append("set-cookie", self.base.session_cookie(request, cookie))
        response.headers.append("set-cookie", self._clear(request))
        return response

    def _state(self, request: Request) -> dict[str, Any]:
        sealed = request.cookies.get(_STATE_COOKIE, "")
        try:
            encoded = self.vault.page_secrets.unseal(_STATE_LABEL, sealed)
            state = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
        except (SignatureInvalid, ValueError):
            return {}
        if not isinstance(state, dict) or time.time() - state.get("at", 0) > _STATE_LIFETIME:
            return {}
        data = state.get("data")
        return data if isinstance(data, dict) else {}

    def _clear(self, request: Request) -> str:
        secure = secure_cookies(request, production=self.vault.settings.production)
        return cookie_header(_STATE_COOKIE, "", secure=secure, max_age=0, same_site="Lax")

    async def _refused(self, request: Request, reason: str) -> Response:
        client = self.base.client(request)

        def record() -> None:
            with self.vault.unit(sign_in_context(client)) as s:
                buffer_of(s).add(
                    AuditAction.SIGN_IN,
                    detail={"step": "failed", "kind": "oidc", "reason": reason},
                )

        await self.base.run(record)
        page = self.renderer.context(request)
        values = {"failed": False, "refused": True, "oidc": self.config is not None}
        response = self.renderer.render(page, "console/sign_in.html", values, status=403)
        response.headers.append("set-cookie", self._clear(request))
        return response
