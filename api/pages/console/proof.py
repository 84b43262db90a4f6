"""Consent proof and the policy viewer.

``/console/consent?customer=ID``: the customer's consent ledger, oldest first, each
event with its signed receipt (checked here against the vault's key, downloadable as
JSON), read through :class:`consent.ConsentLedger` as the officer (audited as a read of
the customer's consent).

``/console/policy``: the policy in force as a table, one row per role and one column per
field, for the purpose chosen; a cell links to its explanation (the deciding policy line
and why, :meth:`vault.authorization.authorizer.Authorizer.explain`).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, Final

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from api.pages.console.base import ConsoleHandlers, console_handler
from consent.ledger import ConsentRecord
from consent.receipts import ReceiptError, verify_receipt
from policies import Purpose, Resource, Role
from policies.enforcer import Explanation
from vault.crypto.signing import ed25519_verify

__all__ = ["ProofHandlers"]

_ROLES: Final = [r.value for r in Role]
_FIELDS: Final = [r.value for r in Resource]
_PURPOSES: Final = [p.value for p in Purpose]


@dataclass(frozen=True, slots=True)
class ProvenEvent:
    """One consent event and whether its receipt's signature verifies with the vault's key."""

    record: ConsentRecord
    verifies: bool


class ProofHandlers(ConsoleHandlers):
    @console_handler
    async def consent(self, request: Request) -> Response:
        staff = await self.base.staff(request)
        given = request.query_params.get("customer", "").strip()
        try:
            customer_id = uuid.UUID(given) if given else None
        except ValueError:
            raise HTTPException(400) from None
        ledger = self.base.privacy.ledger
        context = staff.context()
        key = self.vault.audit.public_vkey

        def load() -> list[ProvenEvent]:
            if customer_id is None:
                return []
            with self.vault.unit(context) as s:
                records = ledger.history(s, customer_id)
            return [ProvenEvent(r, _verifies(r.receipt, key)) for r in records]

        events = await self.base.run(load)
        values = {"staff": staff.session, "customer": customer_id, "events": events}
        return self.renderer.render(staff.page, "console/consent.html", values)

    @console_handler
    async def receipt(self, request: Request) -> Response:
        staff = await self.base.staff(request)
        try:
            event_id = uuid.UUID(request.path_params["event_id"])
        except ValueError:
            raise HTTPException(404) from None
        ledger = self.base.privacy.ledger
        context = staff.context()

        def load() -> dict[str, Any]:
            with self.vault.unit(context) as s:
                return ledger.receipt(s, event_id)

        document = await self.base.run(load)
        return Response(
            json.dumps(document, ensure_ascii=False, indent=2),
            media_type="application/json",
            headers={"content-disposition": f'attachment; filename="receipt-{event_id}.json"'},
        )

    @console_handler
    async def policy(self, request: Request) -> Response:
        staff = await self.base.staff(request)
        query = request.query_params
        purpose = query.get("purpose") or staff.purpose
        role, field = query.get("role"), query.get("field")
        if purpose not in _PURPOSES:
            raise HTTPException(400)
        if (role is None) != (field is None) or (
            role is not None and (role not in _ROLES or field not in _FIELDS)
        ):
            raise HTTPException(400)
        authz = self.vault.authz
        context = staff.context()

        def load() -> tuple[dict[str, dict[str, Explanation]], Explanation | None]:
            with self.vault.unit(context) as s:
                table = {r: {f: authz.explain(s, r, f, purpose) for f in _FIELDS} for r in _ROLES}
                chosen = None if role is None or field is None else table[role][field]
            return table, chosen

        table, chosen = await self.base.run(load)
        values = {
            "staff": staff.session, "purpose": purpose, "purposes": _PURPOSES, "roles": _ROLES,
            "fields": _FIELDS, "table": table, "chosen": chosen, "role": role, "field": field,
        }  # fmt: skip
        return self.renderer.render(staff.page, "console/policy.html", values)


def _verifies(document: dict[str, Any], key: str) -> bool:
    try:
        verify_receipt(document, ed25519_verify, trusted_key=key)
    except ReceiptError:
        return False
    return True
