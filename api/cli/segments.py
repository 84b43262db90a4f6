"""``cvault segments``: list, show and create segments, recompute their memberships.

``list``, ``show`` and ``create`` call the service GraphQL's ``segments``, ``segment`` and
``createSegment`` call (audited, ids only). ``create`` reads the rule from a JSON file or
inline and names the line of the first bad node (``rule.json:4: rule.all[1].metric.value:
must be a number``); nothing is saved then.

Runs as the operator (``system:segments``, purpose administration) through
:class:`vault.segments.service.SegmentService`; enter/leave events land in the
outbox in the same transaction. Exit codes: 0 done, 1 refused or invalid (the
message names ids and rules, or the server's scheduler is running the same job right
now: each command takes the job's run lock, as the scheduler does), 2 a usage error (a
malformed id).
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from api.cli.common import (
    EXIT_REJECTED,
    EXIT_USAGE,
    fail,
    opened,
    operator_unit,
    out,
    parse_uuid,
    progress,
    shown,
)
from api.cli.rule_lines import RuleSyntaxError, line_of, load_with_lines
from vault.errors import VaultError

if TYPE_CHECKING:
    from vault.segments.models import Segment

__all__ = ["segments_app"]

segments_app = typer.Typer(
    help="Segments: list, show, create; recompute memberships (events go to the outbox).",
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
                total = 1 if wanted else shown(lambda: len(vault.segments.list_segments(session)))
                bar, advance = progress("refreshing segments", total)
                with bar:
                    results = vault.segments.refresh(
                        session, wanted, metrics=metrics, progress=advance
                    )
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


JsonOpt = Annotated[bool, typer.Option("--json", help="JSON instead of text.")]


def _document(segment: Segment, size: int | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": str(segment.id),
        "name": segment.name,
        "description": segment.description,
        "version": segment.version,
        "rule": segment.definition,
        "created_at": segment.created_at.isoformat(),
        "updated_at": segment.updated_at.isoformat(),
        "refreshed_at": None if segment.refreshed_at is None else segment.refreshed_at.isoformat(),
    }
    if size is not None:
        doc["members"] = size
    return doc


@segments_app.command("list")
def list_segments(as_json: JsonOpt = False) -> None:
    """Every saved segment: id, version, last refresh, name."""
    with operator_unit("segments") as (vault, session):
        segments = vault.segments.list_segments(session)
    if as_json:
        typer.echo(json.dumps([_document(s) for s in segments], ensure_ascii=False))
        return
    for s in segments:
        refreshed = "never" if s.refreshed_at is None else s.refreshed_at.isoformat()
        line = f"{s.id}  v{s.version}  refreshed {refreshed}  {s.name}"
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    out.print(f"{len(segments)} segment(s)", markup=False)


@segments_app.command("show")
def show(
    segment_id: Annotated[str, typer.Argument(help="The segment's id.")],
    as_json: JsonOpt = False,
) -> None:
    """One segment: its rule, version, members at the last refresh."""
    wanted = parse_uuid(segment_id, "SEGMENT_ID")
    with operator_unit("segments") as (vault, session):
        segment = vault.segments.get(session, wanted)
        size = vault.segments.size(session, wanted)
    doc = _document(segment, size)
    if as_json:
        typer.echo(json.dumps(doc, ensure_ascii=False))
        return
    for key in ("id", "name", "description", "version", "members", "created_at",
                "updated_at", "refreshed_at"):  # fmt: skip
        value = "-" if doc[key] is None else doc[key]
        out.print(f"{key:<13}{value}", markup=False, highlight=False, soft_wrap=True)
    out.print("rule", markup=False)
    typer.echo(json.dumps(segment.definition, indent=2, ensure_ascii=False))


@segments_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The segment's name.")],
    rule_file: Annotated[
        Path | None, typer.Option("--rule-file", help="A JSON file holding the rule.")
    ] = None,
    rule: Annotated[str | None, typer.Option("--rule", help="The rule as inline JSON.")] = None,
    description: Annotated[str | None, typer.Option(help="What the segment is for.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Save a segment; members follow at the next refresh. A bad rule is reported with the
    line of the node at fault, and nothing is saved."""
    from vault.segments.rules import RuleError

    if (rule_file is None) == (rule is None):
        raise fail("give exactly one of --rule-file FILE and --rule JSON", EXIT_USAGE)
    where, text = "--rule", rule or ""
    if rule_file is not None:
        where = str(rule_file)
        try:
            text = rule_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            raise fail(f"{rule_file} is not a readable UTF-8 file", EXIT_USAGE) from None
    try:
        definition, lines = load_with_lines(text)
    except RuleSyntaxError as exc:
        raise fail(f"{where}:{exc.line}: not JSON: {exc.message}", EXIT_USAGE) from None
    if not isinstance(definition, dict):
        raise fail(f"{where}:1: rule: must be an object", EXIT_REJECTED)
    with operator_unit("segments") as (vault, session):
        try:
            made = vault.segments.create(
                session, name=name, definition=definition, description=description
            )
        except RuleError as exc:  # the unit rolls back: nothing is saved
            line = line_of(lines, exc.field) or 1
            raise fail(f"{where}:{line}: {exc}", EXIT_REJECTED) from None
    if as_json:
        typer.echo(json.dumps(_document(made), ensure_ascii=False))
        return
    out.print(f"segment {made.id} created (version {made.version}); members follow at "
              "the next refresh", markup=False, highlight=False, soft_wrap=True)  # fmt: skip
