"""What the signed-in customer sees and changes: their data, their consents, who accessed
their data. Every read goes through the domain services as the data subject (purpose
``self``) and is audited like any GraphQL read.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, Final

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from api.pages.privacy.base import PrivacyHandlers, page_handler
from api.pages.security import read_form
from api.pages.words import Words
from consent import ConsentChange, ConsentRecord, ConsentStatus
from policies.purposes import PurposeInfo, registry
from vault.audit_trail.queries import AuditRecord
from vault.customers import Customer
from vault.interactions import Interaction
from vault.pagination import Page
from vault.types import ConsentChannel, ConsentMethod, ConsentState

__all__ = ["AccountHandlers"]

TIMELINE_PAGE: Final = 20
ACCESS_PAGE: Final = 25
_CURSOR_CHARS: Final = 200
_CHANGES: Final = {"grant": ConsentState.GRANTED.value, "withdraw": ConsentState.WITHDRAWN.value}


def cursor(request: Request) -> str | None:
    """The ``after`` cursor of a page link (opaque, not personal); a bad one is a 400."""
    after = request.query_params.get("after")
    if after is not None and (not after or len(after) > _CURSOR_CHARS):
        raise HTTPException(400)
    return after


@dataclass(frozen=True, slots=True)
class PurposeRow:
    """One purpose as the consents page lists it."""

    name: str
    info: PurposeInfo
    status: ConsentStatus | None


class AccountHandlers(PrivacyHandlers):
    @page_handler
    async def data(self, request: Request) -> Response:
        signed = await self.base.signed_in(request)
        customer_id = signed.customer_id
        after = cursor(request)
        context = signed.context(request)

        def read() -> tuple[Customer, Page[Interaction]]:
            with self.vault.unit(context) as s:
                customer = self.vault.customers.get(s, customer_id)
                timeline = self.vault.interactions.timeline(
                    s, customer_id, first=TIMELINE_PAGE, after=after
                )
            return customer, timeline

        customer, timeline = await self.base.run(read)
        values = {
            "customer": customer,
            "timeline": timeline,
            "words": Words,
            "payload": _payload,
            "first_page": after is None,
        }
        return self.renderer.render(signed.page, "privacy/data.html", values)

    @page_handler
    async def consents(self, request: Request) -> Response:
        signed = await self.base.signed_in(request)
        customer_id = signed.customer_id
        context = signed.context(request)
        ledger = self.base.privacy.ledger

        def read() -> tuple[list[ConsentStatus], list[ConsentRecord]]:
            with self.vault.unit(context) as s:
                return ledger.status(s, customer_id), ledger.history(s, customer_id)

        states, history = await self.base.run(read)
        by_purpose = {state.purpose.value: state for state in states}
        purposes = [
            PurposeRow(name.value, info, by_purpose.get(name.value))
            for name, info in registry().items()
            if name.value not in ("self", "administration")
        ]
        values = {
            "purposes": purposes,
            "history": list(reversed(history)),
            "words": Words,
            "changed": request.query_params.get("changed") == "1",
        }
        return self.renderer.render(signed.page, "privacy/consents.html", values)

    @page_handler
    async def change_consent(self, request: Request) -> Response:
        signed = await self.base.signed_in(request)
        customer_id = signed.customer_id
        form = await read_form(request, self.vault.page_secrets, str(signed.session.id))
        state = _CHANGES.get(str(form.get("change", "")))
        if state is None:
            raise HTTPException(400)
        change = ConsentChange(
            purpose=str(form.get("purpose", "")),
            state=state,
            source_channel=ConsentChannel.WEB.value,
            notice_version=str(form.get("notice", "")) or None,
            method=ConsentMethod.FORM.value,
            user_agent=request.headers.get("user-agent"),
            client_address=request.client.host if request.client else None,
        )
        context = signed.context(request)

        def record() -> None:
            with self.vault.unit(context) as s:
                self.base.privacy.ledger.record(s, customer_id, change)

        await self.base.run(record)
        return RedirectResponse("/privacy/consents?changed=1", status_code=303)

    @page_handler
    async def receipt(self, request: Request) -> Response:
        signed = await self.base.signed_in(request)
        try:
            event_id = uuid.UUID(request.path_params["event_id"])
        except ValueError:
            raise HTTPException(404) from None
        context = signed.context(request)

        def read() -> dict[str, Any]:
            with self.vault.unit(context) as s:
                return self.base.privacy.ledger.receipt(s, event_id)

        receipt = await self.base.run(read)
        body = json.dumps(receipt, ensure_ascii=False, indent=2, sort_keys=True)
        return Response(
            body.encode("utf-8"),
            media_type="application/json",
            headers={
                "content-disposition": f'attachment; filename="consent-receipt-{event_id}.json"'
            },
        )

    @page_handler
    async def access(self, request: Request) -> Response:
        signed = await self.base.signed_in(request)
        customer_id = signed.customer_id
        after = cursor(request)
        context = signed.context(request)

        def read() -> Page[AuditRecord]:
            with self.vault.unit(context) as s:
                return self.vault.trail.access_history(
                    s, customer_id, first=ACCESS_PAGE, after=after
                )

        history = await self.base.run(read)
        values = {"history": history, "words": Words, "first_page": after is None}
        return self.renderer.render(signed.page, "privacy/access.html", values)


def _payload(interaction: Interaction) -> list[tuple[str, str]]:
    """An interaction's payload as (key, value) lines to show; nested values as JSON."""
    if not interaction.payload:
        return []
    out = []
    for key, value in sorted(interaction.payload.items()):
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        out.append((str(key), shown))
    return out
