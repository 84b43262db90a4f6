"""``cvault dsr``: the data subject request desk from the operator's shell.

Every command runs as the operator (``system:dsr``, purpose compliance) through
:class:`consent.dsr.desk.DsrDesk`; exit codes: 0 done, 1 refused or invalid (the
message names ids, fields and rules), 2 a usage error (a bad id, an unreadable
details file, a missing ``--output``).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.table import Table

from api.cli.common import EXIT_REJECTED, EXIT_USAGE, fail, opened, out
from vault.errors import VaultError
from vault.pagination import MAX_PAGE
from vault.types import DsrStatus, DsrType

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from consent.dsr.desk import DsrDesk, DsrView, ProcessOutcome
    from vault.runtime import Vault

__all__ = ["dsr_app"]

dsr_app = typer.Typer(
    help="Data subject requests: file, verify, process, reject, extend.", no_args_is_help=True
)
_EXPORTS = (DsrType.ACCESS, DsrType.PORTABILITY)
_T = TypeVar("_T")

IdArg = Annotated[str, typer.Argument(help="The request's id.")]


def _uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise fail(f"{what} is not a UUID", EXIT_USAGE) from None


def _run(work: Callable[[Vault, DsrDesk], _T]) -> _T:
    """Run ``work(vault, desk)``; a refusal or a domain error exits 1 with its message."""
    from consent import Privacy
    from policies import AccessDenied

    with opened() as vault:
        try:
            return work(vault, Privacy.of(vault).desk)
        except (VaultError, AccessDenied) as exc:
            raise fail(str(exc), EXIT_REJECTED) from None


def _unit(vault: Vault, work: Callable[[Session], _T]) -> _T:
    """One unit of work as the operator (``system:dsr``, purpose compliance)."""
    from vault.authorization.context import AccessContext

    with vault.unit(AccessContext.system("dsr", purpose="compliance")) as session:
        return work(session)


def _show(view: DsrView) -> None:
    rows = [
        ("request", str(view.id)),
        ("type", view.type.value),
        ("status", view.status.value),
        ("customer", str(view.customer_id)),
        ("received", view.received_at.isoformat()),
        ("due", view.due_at.isoformat() + ("  OVERDUE" if view.overdue else "")),
    ]
    if view.extended_at is not None:
        rows.append(("extended", f"{view.extended_at.isoformat()}: {view.extension_reason}"))
    if view.verified_at is not None:
        rows.append(("verified", view.verified_at.isoformat()))
    if view.completed_at is not None:
        rows.append(("closed", view.completed_at.isoformat()))
    if view.rejection_reason is not None:
        rows.append(("rejected", view.rejection_reason))
    rows.append(("filed by", view.requested_by))
    for name, value in rows:
        out.print(f"{name:<10}{value}", markup=False, highlight=False, soft_wrap=True)


def _history(view: DsrView) -> None:
    table = Table("at", "status", "actor", "note")
    for event in view.history:
        table.add_row(event.at.isoformat(), event.status.value, event.actor, event.note or "")
    out.print(table)


@dsr_app.command("create")
def dsr_create(
    kind: Annotated[DsrType, typer.Option("--type", help="The request type.")],
    customer: Annotated[str, typer.Option("--customer", help="The customer's id.")],
    details_file: Annotated[
        Path | None,
        typer.Option(
            "--details-file",
            help='JSON: {"field": "new value"} (rectification) or {"scope": ...} (objection).',
        ),
    ] = None,
) -> None:
    """File a request; prints its id, due date and the one-time verification token."""
    customer_id = _uuid(customer, "--customer")
    details = None
    if details_file is not None:
        try:
            details = json.loads(details_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            raise fail(f"{details_file} is not a readable JSON file", EXIT_USAGE) from None
        if not isinstance(details, dict):
            raise fail(f"{details_file} must hold a JSON object", EXIT_USAGE)
    from consent.dsr.desk import DsrInput

    data = DsrInput(kind.value, customer_id, details)
    filed = _run(lambda vault, desk: _unit(vault, lambda s: desk.create(s, data)))
    _show(filed.request)
    expires = filed.request.verification_expires_at
    out.print(f"token     {filed.verification_token}", markup=False, highlight=False)
    out.print(
        f"          shown once; hand it to the data subject; valid until "
        f"{expires.isoformat() if expires else '-'}",
        markup=False,
        highlight=False,
    )


@dsr_app.command("list")
def dsr_list(
    status: Annotated[DsrStatus | None, typer.Option(help="Only requests in this status.")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only overdue requests.")] = False,
) -> None:
    """Requests by due date, most urgent first."""
    views = _run(lambda vault, desk: list(_all(vault, desk, status, overdue or None)))
    header = f"{'request':<36}  {'type':<13}  {'status':<11}  {'received':<10}  {'due':<10}  "
    out.print(header + "customer", markup=False, highlight=False, soft_wrap=True)
    for view in views:
        line = (
            f"{view.id!s:<36}  {view.type.value:<13}  {view.status.value:<11}  "
            f"{view.received_at.date().isoformat():<10}  {view.due_at.date().isoformat():<10}  "
            f"{view.customer_id}{'  OVERDUE' if view.overdue else ''}"
        )
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    out.print(f"{len(views)} request(s)")


@dsr_app.command("show")
def dsr_show(request: IdArg) -> None:
    """One request with its history and result (ids and counts only)."""
    request_id = _uuid(request, "ID")
    view = _run(lambda vault, desk: _unit(vault, lambda s: desk.get(s, request_id)))
    _show(view)
    _history(view)
    if view.result:
        out.print("result", markup=False)
        typer.echo(json.dumps(view.result, indent=2, sort_keys=True))


@dsr_app.command("verify")
def dsr_verify(
    request: IdArg,
    token: Annotated[str, typer.Option("--token", help="The one-time token from create.")],
) -> None:
    """Check the requester's one-time token; the request becomes verified."""
    request_id = _uuid(request, "ID")
    view = _run(lambda vault, desk: _unit(vault, lambda s: desk.verify(s, request_id, token)))
    out.print(f"request {view.id} verified", markup=False)


@dsr_app.command("process")
def dsr_process(
    request: IdArg,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Access/portability: the zip to write (mode 0600). "
            "Erasure: where to write the signed receipt.",
        ),
    ] = None,
) -> None:  # fmt: skip
    """Carry out a verified request (export, erase, rectify, restrict, object)."""
    request_id = _uuid(request, "ID")

    def work(vault: Vault, desk: DsrDesk) -> ProcessOutcome:
        kind = _unit(vault, lambda s: desk.get(s, request_id)).type
        if kind in _EXPORTS and output is None:
            raise fail(f"{kind.value} requests need --output FILE.zip for the bundle", EXIT_USAGE)
        return _unit(vault, lambda s: desk.process(s, request_id))

    outcome = _run(work)
    view = outcome.request
    if outcome.bundle is not None and output is not None:
        _write_private(output, outcome.bundle.to_zip())
        counts = ", ".join(f"{n} {name}" for name, n in outcome.bundle.counts().items())
        out.print(f"wrote {output} ({counts})", markup=False, highlight=False, soft_wrap=True)
    if outcome.receipt is not None:
        text = json.dumps(outcome.receipt, indent=2, sort_keys=True)
        if output is not None:
            _write_private(output, (text + "\n").encode("utf-8"))
            out.print(f"wrote the signed erasure receipt to {output}", markup=False)
        else:
            typer.echo(text)
    out.print(f"request {view.id} completed ({view.type.value})", markup=False)


@dsr_app.command("reject")
def dsr_reject(
    request: IdArg,
    reason: Annotated[str, typer.Option("--reason", help="Why (told to the requester).")],
) -> None:
    """Reject an open request with a reason."""
    request_id = _uuid(request, "ID")
    view = _run(
        lambda vault, desk: _unit(vault, lambda s: desk.reject(s, request_id, reason=reason))
    )
    out.print(f"request {view.id} rejected", markup=False)


@dsr_app.command("extend")
def dsr_extend(
    request: IdArg,
    months: Annotated[int, typer.Option("--months", help="1 or 2 more months.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it takes longer.")],
) -> None:
    """Extend the deadline once, by up to two months, with a reason."""
    request_id = _uuid(request, "ID")
    view = _run(
        lambda vault, desk: _unit(
            vault, lambda s: desk.extend(s, request_id, months=months, reason=reason)
        )
    )
    out.print(f"request {view.id} now due {view.due_at.isoformat()}", markup=False)


# -- units of work --------------------------------------------------------------------


def _all(
    vault: Vault, desk: DsrDesk, status: DsrStatus | None, overdue: bool | None
) -> Iterator[DsrView]:
    wanted = None if status is None else status.value
    after: str | None = None
    while True:
        page = _unit(
            vault,
            partial(desk.list, status=wanted, overdue=overdue, first=MAX_PAGE, after=after),
        )
        yield from page.items
        if not page.has_next_page:
            return
        after = page.end_cursor


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a file only its owner can read (it may hold PII)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(data)
