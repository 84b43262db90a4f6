"""The audit trail in the console: search (time range, actor, action, customer id,
purpose, outcome; newest first, paginated), the streamed JSONL export (the format of
``cvault audit export``), the streamed CSV export of what a search matches (oldest first,
:mod:`api.pages.console.trail_csv`), verifying an uploaded export against the vault's
public key, and the checkpoint history.

Search reads through :class:`vault.audit_trail.queries.AuditQueries` as the signed-in
officer (compliance officers only; each page shown is one ``audit.search`` entry with its
filters, the downloads are ``audit.export``). Purpose and outcome are
not columns of the trail, so they filter the entries of a bounded scan: a page holds
the matches among the next few hundred entries, and its "older" link goes on from there.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, TextIO
from urllib.parse import urlencode

from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from api.pages.console.base import ConsoleHandlers, Staff, console_handler
from api.pages.console.trail_csv import TrailCsv
from api.pages.security import browser_id
from audit.entries import AuditAction, Outcome
from audit.verify import VerificationError, verify_lines
from vault.audit_trail.export import export_audit
from vault.audit_trail.log import AuditFilter, CheckpointInfo
from vault.audit_trail.queries import AuditRecord
from vault.authorization.context import buffer_of
from vault.crypto.pages import SignatureInvalid
from vault.crypto.signing import ed25519_verify
from vault.errors import InvalidInput
from vault.pagination import MAX_PAGE

__all__ = ["AuditHandlers", "SearchFilter"]

_PAGE: Final = 25
_SCAN_PAGES: Final = 5  # at most 500 entries looked at per page shown
_MAX_UPLOAD: Final = 64 * 1024 * 1024
_CHUNK: Final = 64 * 1024
_Outcome = tuple[dict[str, object] | None, dict[str, object] | None]
_OUTCOMES: Final = frozenset(o.value for o in Outcome)


@dataclass(frozen=True, slots=True)
class SearchFilter:
    """The search form's values; a malformed one is refused (400) without repeating it."""

    since: str = ""
    until: str = ""
    actor: str = ""
    action: str = ""
    customer: str = ""
    purpose: str = ""
    outcome: str = ""

    @classmethod
    def of(cls, request: Request) -> SearchFilter:
        query = request.query_params
        values = {name: query.get(name, "").strip()[:128] for name in cls.__slots__}
        return cls(**values)

    def audit_filter(self) -> AuditFilter:
        try:
            return AuditFilter(
                since=_time(self.since),
                until=_time(self.until),
                actor=self.actor or None,
                customer_id=uuid.UUID(self.customer) if self.customer else None,
                action=AuditAction(self.action) if self.action else None,
            )
        except ValueError:
            raise HTTPException(400) from None

    def audited(self, found: list[AuditRecord]) -> dict[str, object]:
        """The filters as the ``audit.search`` entry records them: times, action, customer
        id and outcome as parsed (an outcome outside the vocabulary as ``other``); the
        actor and purpose, free text, only when an entry shown carries the value (so the
        log learns no word it did not hold: a mistyped email never enters it), else
        ``<name>_unmatched``. Always the number of entries shown."""
        parsed = self.audit_filter()
        detail: dict[str, object] = {"kind": "console", "entries": len(found)}
        if parsed.since is not None:
            detail["since"] = parsed.since.isoformat()
        if parsed.until is not None:
            detail["until"] = parsed.until.isoformat()
        if parsed.action is not None:
            detail["action"] = parsed.action.value
        if parsed.customer_id is not None:
            detail["customer"] = str(parsed.customer_id)
        if self.outcome:
            detail["outcome"] = self.outcome if self.outcome in _OUTCOMES else "other"
        for name in ("actor", "purpose"):
            wanted = getattr(self, name)
            if wanted and any(getattr(r, name) == wanted for r in found):
                detail[name] = wanted
            elif wanted:
                detail[f"{name}_unmatched"] = True
        return detail

    def keeps(self, record: AuditRecord) -> bool:
        return (not self.purpose or record.purpose == self.purpose) and (
            not self.outcome or record.outcome == self.outcome
        )

    def query(self, after: str | None = None) -> str:
        """The filters (and a cursor) as a query string, values percent-encoded."""
        pairs = [(n, getattr(self, n)) for n in self.__slots__ if getattr(self, n)]
        return urlencode([*pairs, ("after", after)] if after else pairs)


def _time(value: str) -> datetime | None:
    """A date or time from the form (``datetime-local`` gives no zone: read as UTC)."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class AuditHandlers(ConsoleHandlers):
    @console_handler
    async def search(self, request: Request) -> Response:
        staff = await self.base.staff(request)
        wanted = SearchFilter.of(request)
        filter_ = wanted.audit_filter()
        after = request.query_params.get("after") or None
        context = staff.context()
        trail = self.vault.trail

        def load() -> tuple[list[AuditRecord], str | None, CheckpointInfo | None]:
            found: list[AuditRecord] = []
            cursor = after
            more = False
            with self.vault.read_unit(context) as s:  # lag tolerated: the replica
                for _ in range(_SCAN_PAGES):
                    page = trail.page(
                        s, first=MAX_PAGE, after=cursor, filter_=filter_, audited=False
                    )
                    for n, record in enumerate(page.items):
                        cursor = page.cursor(n)
                        if wanted.keeps(record):
                            found.append(record)
                            if len(found) == _PAGE:
                                break
                    more = page.has_next_page or len(found) == _PAGE
                    if len(found) == _PAGE or not page.has_next_page:
                        break
                latest = trail.checkpoint(s)
                # One entry per page shown, however many pages of the trail it scanned.
                buffer_of(s).add(
                    AuditAction.AUDIT_SEARCH,
                    customer_id=filter_.customer_id,
                    detail=wanted.audited(found),
                )
            return found, (cursor if more and cursor else None), latest

        try:
            records, following, latest = await self.base.run(load)
        except InvalidInput:
            raise HTTPException(400) from None
        values = {
            "staff": staff.session,
            "records": records,
            "wanted": wanted,
            "next_query": wanted.query(following) if following else None,
            "actions": [a.value for a in AuditAction],
            "outcomes": [o.value for o in Outcome],
            "latest": latest,
            "csv_query": wanted.query(),
        }
        return self.renderer.render(staff.page, "console/audit.html", values)

    @console_handler
    async def export(self, request: Request) -> Response:
        """The trail (with the search's filters) as JSON lines, exactly what ``cvault audit
        export`` writes; made into a private temporary file, then streamed and deleted."""
        staff = await self.base.staff(request)
        filter_ = SearchFilter.of(request).audit_filter()
        self._require_officer(staff)
        context = staff.context()

        def write(fh: TextIO) -> None:
            export_audit(self.vault, fh, context=context, filter_=filter_)

        path = await self.base.run(lambda: _spool(".jsonl", write))
        return StreamingResponse(
            _stream(path),
            media_type="application/x-ndjson",
            headers={"content-disposition": 'attachment; filename="audit.jsonl"'},
        )

    @console_handler
    async def export_csv(self, request: Request) -> Response:
        """The entries the search's filters match (purpose and outcome included), oldest
        first, one CSV row each. Written to a private temporary file inside the unit of work
        that audits the export (so the entry is committed before a byte leaves), then
        streamed and deleted: constant memory, no transaction held open while the browser
        downloads. A role without the audit grant is refused (403, audited)."""
        staff = await self.base.staff(request)
        wanted = SearchFilter.of(request)
        filter_ = wanted.audit_filter()
        context = staff.context()

        def write(fh: TextIO) -> None:
            table = TrailCsv(fh)

            def sink(record: AuditRecord, entry_hash: bytes) -> bool:
                if not wanted.keeps(record):
                    return False
                table.row(record, entry_hash)
                return True

            with self.vault.read_unit(context) as s:  # lag tolerated: the replica
                self.vault.trail.export(s, sink, filter_=filter_, kind="console-csv")

        path = await self.base.run(lambda: _spool(".csv", write, newline=""))
        return StreamingResponse(
            _stream(path),
            media_type="text/csv; charset=utf-8",
            headers={
                "content-disposition": 'attachment; filename="audit.csv"',
                "cache-control": "no-store",
            },
        )

    @console_handler
    async def checkpoints(self, request: Request) -> Response:
        staff = await self.base.staff(request)
        self._require_officer(staff)
        context = staff.context()

        def load() -> list[CheckpointInfo]:
            with self.vault.unit(context) as s:
                self.vault.trail.checkpoint(s)  # the policy check, audited when refused
                return list(self.vault.audit.checkpoints(s, every=1))[::-1]

        found = await self.base.run(load)
        values = {"staff": staff.session, "checkpoints": found[:200]}
        return self.renderer.render(staff.page, "console/checkpoints.html", values)

    @console_handler
    async def verify_form(self, request: Request) -> Response:
        staff = await self.base.staff(request)
        values = {"staff": staff.session, "report": None, "failure": None}
        return self.renderer.render(staff.page, "console/verify.html", values)

    @console_handler
    async def verify(self, request: Request) -> Response:
        """An uploaded export checked against this vault's public key: OK with its counts,
        or the position(s) and reason of the first failure."""
        staff = await self.base.staff(request)
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > _MAX_UPLOAD:
            raise HTTPException(413)
        form = await request.form(max_files=1, max_fields=4, max_part_size=8192)
        try:
            return await self._verify(request, staff, form)
        finally:
            await form.close()

    async def _verify(self, request: Request, staff: Staff, form: FormData) -> Response:
        given = form.get("csrf")
        upload = form.get("export")
        if not isinstance(given, str):
            raise HTTPException(403)
        try:
            self.vault.page_secrets.check(
                "csrf", f"{browser_id(request)}|{staff.session.id}", given
            )
        except SignatureInvalid:
            raise HTTPException(403) from None
        if not isinstance(upload, UploadFile):
            raise HTTPException(400)
        vkey = self.vault.audit.public_vkey
        context = staff.context()

        def check() -> _Outcome:
            upload.file.seek(0)
            try:
                report = verify_lines(upload.file, trusted_vkey=vkey, verify=ed25519_verify)
            except VerificationError as exc:
                failure: dict[str, object] = {
                    "reason": str(exc),
                    "position": exc.position,
                    "positions": exc.positions,
                }
                outcome: _Outcome = (None, failure)
            except UnicodeDecodeError:
                outcome = (None, {"reason": "the file is not UTF-8 text", "position": None,
                                  "positions": None})  # fmt: skip
            else:
                counts = {"entries": report.entries, "tree_size": report.tree_size}
                outcome = ({**counts, "full": report.full}, None)
            with self.vault.unit(context) as s:
                buffer_of(s).add(
                    AuditAction.AUDIT_EXPORT,
                    detail={"kind": "console-verify", "ok": outcome[1] is None},
                )
            return outcome

        report, failure = await self.base.run(check)
        values = {"staff": staff.session, "report": report, "failure": failure}
        status = 200 if failure is None else 422
        return self.renderer.render(staff.page, "console/verify.html", values, status=status)

    def _require_officer(self, staff: Staff) -> None:
        if staff.session.role != "compliance_officer":
            raise HTTPException(403)


def _spool(suffix: str, write: Callable[[TextIO], None], *, newline: str = "\n") -> Path:
    """What ``write`` writes, in a temporary file only this process's user can read
    (removed again when writing fails)."""
    fd, name = tempfile.mkstemp(prefix="cvault-audit-", suffix=suffix)
    path = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as fh:
            write(fh)
    except BaseException:
        path.unlink()
        raise
    return path


def _stream(path: Path) -> Iterator[bytes]:
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                yield chunk
    finally:
        path.unlink()
