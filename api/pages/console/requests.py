"""The data subject requests queue: filters (status, type, overdue), sorted by due date,
the legal holds of each customer, the desk's actions (approve, reject with a reason,
extend once with a reason, process) and a CSV export of the queue.

Everything goes through :class:`consent.DsrDesk` as the signed-in staff member: the desk
checks the policy grant, writes the request's history and the audit entries.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import datetime
from typing import Final

from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from api.pages.console.base import ConsoleHandlers, Staff, console_handler
from api.pages.privacy.requests import request_state as awaits_state
from consent.dsr.desk import DsrView
from vault.errors import InvalidInput, VaultError
from vault.pagination import MAX_PAGE
from vault.types import DsrStatus, DsrType

__all__ = ["QueueFilter", "RequestHandlers"]

_PAGE: Final = 50
_ACTIONS: Final = ("approve", "reject", "extend", "process")
_CSV_COLUMNS: Final = (
    "id", "type", "status", "received_at", "due_at", "days_left", "overdue", "extended",
    "legal_hold", "customer_id",
)  # fmt: skip


class QueueFilter:
    """The queue's filters from the query string; a value that is not one of the words
    is refused (400) without being repeated."""

    def __init__(self, request: Request) -> None:
        query = request.query_params
        self.status = query.get("status") or None
        self.type = query.get("type") or None
        self.overdue = {"yes": True, "no": False}.get(query.get("overdue", ""))
        self.after = query.get("after") or None
        if self.status is not None and self.status not in {s.value for s in DsrStatus}:
            raise HTTPException(400)
        if self.type is not None and self.type not in {t.value for t in DsrType}:
            raise HTTPException(400)

    def __repr__(self) -> str:
        return f"QueueFilter(status={self.status!r}, type={self.type!r})"

    def query(self, *, after: str | None = None) -> str:
        parts = [
            f"{name}={value}"
            for name, value in (
                ("status", self.status),
                ("type", self.type),
                ("overdue", None if self.overdue is None else ("yes" if self.overdue else "no")),
                ("after", after),
            )
            if value
        ]
        return "&".join(parts)


def days_left(view: DsrView, now: datetime) -> int:
    """Whole days until the due date (negative when overdue)."""
    return (view.due_at - now).days


class RequestHandlers(ConsoleHandlers):
    def _holds(self, s: Session, views: list[DsrView]) -> set[uuid.UUID]:
        desk = self.base.privacy.desk
        held: set[uuid.UUID] = set()
        for customer_id in dict.fromkeys(v.customer_id for v in views):
            try:
                if any(h.active for h in desk.holds(s, customer_id)):
                    held.add(customer_id)
            except VaultError:  # an erased customer's holds are gone with it
                continue
        return held

    @console_handler
    async def queue(self, request: Request) -> Response:
        staff = await self.base.staff(request)
        filters = QueueFilter(request)
        desk = self.base.privacy.desk
        context = staff.context()

        def load() -> tuple[list[DsrView], str | None, set[uuid.UUID], datetime]:
            with self.vault.unit(context) as s:
                page = desk.list(
                    s, status=filters.status, overdue=filters.overdue,
                    request_type=filters.type, first=_PAGE, after=filters.after,
                )  # fmt: skip
                held = self._holds(s, page.items)
            following = page.end_cursor if page.has_next_page else None
            return page.items, following, held, self.vault.clock()

        try:
            views, following, held, now = await self.base.run(load)
        except InvalidInput:
            raise HTTPException(400) from None
        values = {
            "staff": staff.session,
            "requests": views,
            "held": held,
            "now": now,
            "days_left": days_left,
            "awaits": awaits_state,
            "filters": filters,
            "next_query": filters.query(after=following) if following else None,
            "statuses": [s.value for s in DsrStatus],
            "types": [t.value for t in DsrType],
            "done": request.query_params.get("done"),
        }
        return self.renderer.render(staff.page, "console/requests.html", values)

    @console_handler
    async def export_csv(self, request: Request) -> Response:
        """The whole queue (with the page's filters) as CSV: ids, words and dates only."""
        staff = await self.base.staff(request)
        filters = QueueFilter(request)
        desk = self.base.privacy.desk
        context = staff.context()

        def load() -> str:
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\r\n")
            writer.writerow(_CSV_COLUMNS)
            with self.vault.unit(context) as s:
                now = self.vault.clock()
                after = None
                while True:
                    page = desk.list(
                        s, status=filters.status, overdue=filters.overdue,
                        request_type=filters.type, first=MAX_PAGE, after=after,
                    )  # fmt: skip
                    held = self._holds(s, page.items)
                    writer.writerows(_csv_row(v, now, held) for v in page.items)
                    if not page.has_next_page:
                        break
                    after = page.end_cursor
            return out.getvalue()

        try:
            text = await self.base.run(load)
        except InvalidInput:
            raise HTTPException(400) from None
        return Response(
            text,
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": 'attachment; filename="requests.csv"'},
        )

    @console_handler
    async def act(self, request: Request) -> Response:
        """One of the desk's actions on one request, from a form with the CSRF token."""
        staff = await self.base.staff(request)
        form = await self.base.form(request, staff)
        action = request.path_params["action"]
        try:
            request_id = uuid.UUID(request.path_params["request_id"])
        except ValueError:
            raise HTTPException(404) from None
        if action not in _ACTIONS:
            raise HTTPException(404)
        await self.base.run(lambda: self._act(staff, action, request_id, form))
        return RedirectResponse(f"/console/requests?done={action}", status_code=303)

    def _act(self, staff: Staff, action: str, request_id: uuid.UUID, form: dict[str, str]) -> None:
        desk = self.base.privacy.desk
        with self.vault.unit(staff.context()) as s:
            if action == "approve":
                desk.approve(s, request_id)
            elif action == "reject":
                desk.reject(s, request_id, reason=form.get("reason", ""))
            elif action == "extend":
                months = form.get("months", "")
                if months not in {"1", "2"}:
                    raise InvalidInput("months", "must be 1 or 2")
                desk.extend(s, request_id, months=int(months), reason=form.get("reason", ""))
            else:
                desk.process(s, request_id)


def _csv_row(view: DsrView, now: datetime, held: set[uuid.UUID]) -> list[str]:
    return [
        str(view.id), view.type.value, awaits_state(view), view.received_at.isoformat(),
        view.due_at.isoformat(), str(days_left(view, now)), "yes" if view.overdue else "no",
        "yes" if view.extended_at else "no", "yes" if view.customer_id in held else "no",
        str(view.customer_id),
    ]  # fmt: skip
