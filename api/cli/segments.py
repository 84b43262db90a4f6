"""``cvault segments``: recompute segment memberships from the operator's shell.

Runs as the operator (``system:segments``, purpose administration) through
:class:`vault.segments.service.SegmentService`; enter/leave events land in the
outbox in the same transaction. Exit codes: 0 done, 1 refused or invalid (the
message names ids and rules, or the server's scheduler is running the same job right
now: each command takes the job's run lock, as the scheduler does), 2 a usage error (a
malformed id).
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated

import typer
from rich.table import Table

from api.cli.common import EXIT_REJECTED, EXIT_USAGE, fail, opened, out
from vault.errors import VaultError

__all__ = ["segments_app"]

segments_app = typer.Typer(
    help="Segments: recompute memberships (enter/leave events go to the outbox).",
    no_args_is_help=True,
)


@segments_app.command("refresh")
def refresh(
    segment_id: Annotated[
        str | None, typer.Argument(help="One segment's id; every segment when omitted.")
    ] = None,
    metrics: Annotated[
        bool | None,
        typer.Option(
            "--metrics/--no-metrics",
            help="Rebuild the metrics rollup first (default: when a rule reads metrics).",
        ),
    ] = None,
) -> None:
    """Recompute memberships in SQL, diff them, and write enter/leave events."""
    from policies import AccessDenied
    from vault.authorization.context import AccessContext
    from vault.scheduling import command_run
    from vault.types import JobName

    try:
        wanted = None if segment_id is None else uuid.UUID(segment_id)
    except ValueError:
        raise fail("SEGMENT_ID must be a UUID", EXIT_USAGE) from None
    started = time.perf_counter()
    with opened() as vault:
        try:
            with (
                command_run(vault.db, JobName.SEGMENT_REFRESH),
                vault.unit(AccessContext.system("segments")) as session,
            ):
                results = vault.segments.refresh(session, wanted, metrics=metrics)
        except (VaultError, AccessDenied) as exc:
            raise fail(str(exc), EXIT_REJECTED) from None
    table = Table("segment", "members", "entered", "left")
    for r in results:
        table.add_row(str(r.segment_id), str(r.members), str(r.entered), str(r.left))
    out.print(table)
    out.print(f"{len(results)} segment(s) refreshed in {time.perf_counter() - started:.2f} s")


@segments_app.command("metrics")
def metrics_refresh() -> None:
    """Rebuild the per-customer metrics rollup (recency, frequency, money, RFM, ...)."""
    from vault.authorization.context import AccessContext
    from vault.scheduling import command_run
    from vault.types import JobName

    with opened() as vault:
        try:
            with (
                command_run(vault.db, JobName.METRICS_ROLLUP),
                vault.unit(AccessContext.system("segments")) as session,
            ):
                rows = vault.segments.refresh_metrics(session)
        except VaultError as exc:  # JobBusy: the server's scheduler runs it right now
            raise fail(str(exc), EXIT_REJECTED) from None
    out.print(f"metrics computed for {rows} active customers")
