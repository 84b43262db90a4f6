"""``cvault audit``: the tamper-evident audit trail from the shell. Seal pending entries
into a signed checkpoint, print the verifier key, export the trail (streamed; a filtered
export carries inclusion proofs) and verify an export offline, without a database.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import EXIT_REJECTED, EXIT_USAGE, err, open_private, opened, out, progress
from vault.errors import VaultError

__all__ = ["audit_app"]

audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)


@audit_app.command("seal")
def audit_seal() -> None:
    """Give pending entries log positions and sign a checkpoint."""
    with opened() as vault:
        done = vault.audit.sequence(vault.db)
        with vault.db.transaction() as session:
            latest = vault.audit.latest_checkpoint(session)
    out.print(f"sequenced {done} entries; tree size {0 if latest is None else latest.tree_size}")


@audit_app.command("public-key")
def audit_public_key() -> None:
    """Print the verifier key (signed-note vkey) to hand to whoever verifies exports."""
    with opened() as vault:
        typer.echo(vault.audit.public_vkey)


@audit_app.command("export")
def audit_export(
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write.")],
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    since: Annotated[str | None, typer.Option(help="Entries at or after (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option(help="Entries before (ISO 8601).")] = None,
    actor: Annotated[str | None, typer.Option(help="Only this actor (token subject).")] = None,
    customer: Annotated[str | None, typer.Option(help="Only this customer id.")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. pii.access.")] = None,
    previous_checkpoint: Annotated[
        Path | None, typer.Option(help="Embed a consistency proof from this checkpoint.")
    ] = None,
) -> None:
    """Export the trail (streamed); a filtered export carries inclusion proofs."""
    from audit.entries import AuditAction
    from vault.audit_trail.export import AuditFilter, export_audit
    from vault.authorization.context import AccessContext

    try:
        filter_ = AuditFilter(
            since=_aware(since, "--since"),
            until=_aware(until, "--until"),
            actor=actor,
            customer_id=None if customer is None else uuid.UUID(customer),
            action=None if action is None else AuditAction(action),
        )
    except ValueError as exc:
        err.print(f"[red]error:[/red] bad filter: {exc}", markup=True)
        raise typer.Exit(EXIT_USAGE) from None
    previous = previous_checkpoint.read_text(encoding="utf-8") if previous_checkpoint else None
    meta_path = output.with_name(output.name + ".meta.jsonl")
    with opened() as vault:
        bar, advance = progress("exporting audit entries", None)

        def total(entries: int) -> None:
            bar.update(bar.task_ids[0], total=entries)

        try:
            with open_private(output) as fh, bar:
                if fmt == "csv":
                    with open_private(meta_path) as meta:
                        summary = export_audit(
                            vault, fh, context=AccessContext.system("audit-export"),
                            filter_=filter_, fmt=fmt, meta=meta, previous_note=previous,
                            progress=advance, total=total,
                        )  # fmt: skip
                else:
                    summary = export_audit(
                        vault, fh, context=AccessContext.system("audit-export"),
                        filter_=filter_, fmt=fmt, previous_note=previous, progress=advance,
                        total=total,
                    )  # fmt: skip
        except VaultError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(EXIT_USAGE) from None
    kind = "full" if summary.full else "filtered"
    out.print(
        f"exported {summary.entries} entries ({kind}; tree size {summary.tree_size}) to {output}"
    )


@audit_app.command("verify")
def audit_verify(
    file: Annotated[Path, typer.Argument(help="An export (JSONL, or CSV with its .meta.jsonl).")],
    public_key: Annotated[
        str, typer.Option("--public-key", help="The vkey text, or a file holding it.")
    ],
    previous_checkpoint: Annotated[
        Path | None, typer.Option(help="A checkpoint you trust from earlier.")
    ] = None,
) -> None:
    """Verify an export offline: signatures, the tree, proofs, consistency. No database."""
    from audit.verify import VerificationError, verify_file, verify_lines
    from vault.audit_trail.export import csv_to_lines
    from vault.crypto.signing import ed25519_verify

    key_path = Path(public_key)
    vkey_text = key_path.read_text(encoding="utf-8").strip() if key_path.is_file() else public_key
    previous = previous_checkpoint.read_text(encoding="utf-8") if previous_checkpoint else None
    if not file.is_file():
        err.print(f"[red]error:[/red] {file} does not exist")
        raise typer.Exit(EXIT_USAGE)
    try:
        if file.suffix == ".csv":
            lines = csv_to_lines(file, file.with_name(file.name + ".meta.jsonl"))
            report = verify_lines(lines, trusted_vkey=vkey_text, verify=ed25519_verify,
                                  previous_note=previous)  # fmt: skip
        else:
            report = verify_file(file, trusted_vkey=vkey_text, verify=ed25519_verify,
                                 previous_note=previous)  # fmt: skip
    except (VerificationError, OSError, UnicodeDecodeError) as exc:
        err.print(f"FAILED: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_REJECTED) from None
    kind = "full" if report.full else "filtered"
    out.print(
        f"OK: {report.entries} entries ({kind}) verify against the checkpoint for tree size "
        f"{report.tree_size}; {report.checkpoints} signed checkpoints checked"
        + ("" if report.previous_size is None else f"; consistent with size {report.previous_size}")
    )


def _aware(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        from vault.text import date_problem

        rule = date_problem(value, "is not an ISO 8601 time")
        raise ValueError(f"{option} {rule}") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{option} needs a time zone (e.g. 2026-11-01T00:00:00+00:00)")
    return parsed
