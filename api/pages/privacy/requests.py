"""The customer's requests (GDPR Art. 15-21) on the privacy page: file one (verified by the
signed-in session), follow each with its status and due date, confirm an erasure, and
download a processed copy through a link that expires.

A download link is ``/privacy/requests/<id>/bundle?until=<unix time>&sig=<MAC>``: the MAC
binds the request, the expiry and the page session, so the link works for 15 minutes,
in this session only; the request id is a pseudonymous id and nothing else is in it.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, Final

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from api.pages.privacy.base import PrivacyHandlers, Signed, page_handler
from api.pages.security import read_form
from api.pages.words import Words
from consent.dsr.desk import DsrInput, DsrView
from consent.dsr.export import ExportBundle
from policies import AccessDenied
from policies.purposes import DIRECT_MARKETING, registry
from vault.crypto.pages import SignatureInvalid
from vault.errors import InvalidInput, VaultError
from vault.logs import get_logger
from vault.pagination import MAX_PAGE
from vault.types import DsrStatus, DsrType

__all__ = ["RequestHandlers", "request_state"]

log = get_logger("api.pages.privacy")
LINK_LIFETIME: Final = timedelta(minutes=15)
_SIMPLE: Final = {"access", "portability", "restriction", "objection", "rectification"}
_EXPORTS: Final = (DsrType.ACCESS, DsrType.PORTABILITY)
_RECTIFY: Final = ("first_name", "last_name", "email", "phone", "birth_date")
_ADDRESS: Final = ("street", "city", "region", "postal_code", "country")
_MAX_VALUE: Final = 1000


def request_state(view: DsrView) -> str:
    """The word the page shows for where a request stands (an erasure filed here waits
    for approval while verified)."""
    if view.status is DsrStatus.VERIFIED and view.result.get("approval") == "pending":
        return "awaiting_approval"
    return view.status.value


def objection_scopes() -> list[str]:
    """Direct marketing as a whole, then each purpose that can be objected to on its own."""
    return [DIRECT_MARKETING, *(p.value for p, info in registry().items() if info.objectable)]


class RequestHandlers(PrivacyHandlers):
    def _link(self, signed: Signed, request_id: uuid.UUID, now: datetime) -> str:
        until = int((now + LINK_LIFETIME).timestamp())
        sig = self.vault.page_secrets.mac(
            "bundle-link", f"{request_id}|{until}|{signed.session.id}"
        )
        return f"/privacy/requests/{request_id}/bundle?until={until}&sig={sig}"

    @page_handler
    async def list(self, request: Request) -> Response:
        signed = await self.base.signed_in(request)
        context = signed.context(request)
        desk = self.base.privacy.desk

        def read() -> list[DsrView]:
            with self.vault.unit(context) as s:
                return desk.list(s, first=MAX_PAGE).items

        views = await self.base.run(read)
        now = self.vault.clock()
        links = {
            v.id: self._link(signed, v.id, now)
            for v in views
            if v.type in _EXPORTS and v.status is DsrStatus.COMPLETED
        }
        values = {
            "requests": sorted(views, key=lambda v: v.received_at, reverse=True),
            "links": links,
            "state": request_state,
            "words": Words,
            "scopes": objection_scopes(),
            "rectify": _RECTIFY,
            "address_parts": _ADDRESS,
            "filed": request.query_params.get("filed") == "1",
            "invalid": request.query_params.get("error") == "invalid",
        }
        return self.renderer.render(signed.page, "privacy/requests.html", values)

    @page_handler
    async def file(self, request: Request) -> Response:
        signed = await self.base.signed_in(request)
        form = await read_form(request, self.vault.page_secrets, str(signed.session.id))
        kind = str(form.get("type", ""))
        if kind not in _SIMPLE:
            raise HTTPException(400)
        try:
            await self._file(signed, request, kind, _details(kind, form))
        except InvalidInput:  # the rule is shown as one translated sentence, no value
            return RedirectResponse("/privacy/requests?error=invalid", status_code=303)
        return RedirectResponse("/privacy/requests?filed=1", status_code=303)

    async def _file(
        self, signed: Signed, request: Request, kind: str, details: dict[str, Any] | None
    ) -> DsrView:
        customer_id = signed.customer_id
        context = signed.context(request)
        desk = self.base.privacy.desk
        automatic = self.vault.settings.erasure_approval == "automatic"

        def file() -> DsrView:
            with self.vault.unit(context) as s:
                view = desk.file_verified(s, DsrInput(kind, customer_id, details))
            if kind != DsrType.ERASURE.value or not automatic:
                return view
            try:  # a unit of its own: a legal hold refuses it, the request stays filed
                with self.vault.unit(context) as s:
                    return desk.process(s, view.id).request
            except (VaultError, AccessDenied) as exc:
                log.info("erasure left to the desk", request=str(view.id), error=type(exc).__name__)
                return view

        return await self.base.run(file)

    @page_handler
    async def erasure_form(self, request: Request) -> Response:
        signed = await self.base.signed_in(request)
        values = {"automatic": self.vault.settings.erasure_approval == "automatic"}
        return self.renderer.render(signed.page, "privacy/erasure.html", values)

    @page_handler
    async def erase(self, request: Request) -> Response:
        signed = await self.base.signed_in(request)
        form = await read_form(request, self.vault.page_secrets, str(signed.session.id))
        if form.get("confirm") != "yes":
            raise HTTPException(400)
        view = await self._file(signed, request, DsrType.ERASURE.value, None)
        if view.status is DsrStatus.COMPLETED:  # erased at once: the session went with it
            page = self.renderer.context(request)
            response = self.renderer.render(page, "privacy/erased.html")
            response.headers.append("set-cookie", self.base.session_cookie(request, "", clear=True))
            return response
        return RedirectResponse("/privacy/requests?filed=1", status_code=303)

    @page_handler
    async def bundle(self, request: Request) -> Response:
        signed = await self.base.signed_in(request)
        try:
            request_id = uuid.UUID(request.path_params["request_id"])
            until = int(request.query_params.get("until", ""))
        except ValueError:
            raise HTTPException(404) from None
        try:
            self.vault.page_secrets.check(
                "bundle-link",
                f"{request_id}|{until}|{signed.session.id}",
                request.query_params.get("sig", ""),
            )
        except SignatureInvalid:
            raise HTTPException(404) from None
        if self.vault.clock().timestamp() >= until:
            raise HTTPException(404)
        context = signed.context(request)
        desk = self.base.privacy.desk

        def build() -> ExportBundle:
            with self.vault.unit(context) as s:
                return desk.bundle(s, request_id)

        bundle = await self.base.run(build)
        return Response(
            bundle.to_zip(),
            media_type="application/zip",
            headers={"content-disposition": f'attachment; filename="my-data-{request_id}.zip"'},
        )


def _details(kind: str, form: FormData) -> dict[str, Any] | None:
    """What a request asks for, from the form: an objection's scope, a correction's new
    values (only the fields filled in; an address in parts)."""
    if kind == DsrType.OBJECTION.value:
        scope = str(form.get("scope", ""))
        if scope not in objection_scopes():
            raise InvalidInput("scope", "is not a purpose that can be objected to")
        return {"scope": scope}
    if kind != DsrType.RECTIFICATION.value:
        return None
    changes: dict[str, Any] = {}
    for name in _RECTIFY:
        value = str(form.get(name, "")).strip()
        if value:
            changes[name] = value[:_MAX_VALUE]
    address = {p: str(form.get(f"address_{p}", "")).strip()[:_MAX_VALUE] for p in _ADDRESS}
    if any(address.values()):
        changes["address"] = {k: v for k, v in address.items() if v}
    if not changes:
        raise InvalidInput("details", "a correction names at least one field")
    return changes
