"""``cvault``: the operator's command line. Commands call vault services; no SQL here."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from api.cli_dsr import dsr_app
from api.cli_erasure import erasure_app
from api.cli_segments import segments_app
from api.cli_webhooks import webhooks_app
from vault.authorization.context import AccessContext
from vault.bootstrap import customer_count, initialise
from vault.bootstrap import migrate as run_migrations
from vault.config import ConfigError, Settings
from vault.crypto import CryptoError
from vault.errors import VaultError
from vault.logs import configure_logging
from vault.runtime import Vault
from vault.storage.migrate import head_revision

app = typer.Typer(help="customer-vault: a privacy-first customer data vault.", no_args_is_help=True)
keys_app = typer.Typer(help="Key-encryption keys: rotate and inspect.", no_args_is_help=True)
import_app = typer.Typer(help="Bulk import from CSV or JSONL.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(import_app, name="import")
audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
db_app = typer.Typer(help="Database set-up helpers.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(dsr_app, name="dsr")
app.add_typer(erasure_app, name="erasure")
app.add_typer(segments_app, name="segments")
app.add_typer(webhooks_app, name="webhooks")

out = Console()
err = Console(stderr=True)

EXIT_OK, EXIT_REJECTED, EXIT_USAGE = 0, 1, 2


class FileFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_USAGE) from None


@contextmanager
def _opened() -> Iterator[Vault]:
    settings = _settings()
    configure_logging(settings.log_level)
    try:
        vault = Vault.open(settings)
    except CryptoError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_USAGE) from None
    try:
        yield vault
    finally:
        vault.close()


def _progress(description: str, total: int | None) -> tuple[Progress, Callable[[int], None]]:
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
        disable=not err.is_terminal,
    )
    task = bar.add_task(description, total=total)
    return bar, lambda n: bar.advance(task, n)


@app.command()
def init() -> None:
    """Create the data directory, the keyring (mode 0600) and the schema, if missing."""
    settings = _settings()
    try:
        report = initialise(settings)
    except (CryptoError, VaultError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_USAGE) from None
    out.print(f"data directory  {settings.data_dir}")
    made = "created" if report.keyring_created else "kept"
    out.print(f"keyring         {settings.keyring_path} ({made})")
    out.print(f"database        {settings.database_url.split('@')[-1]}")
    out.print(f"schema          {report.revision_before or 'empty'} -> {report.revision_after}")


@app.command()
def migrate() -> None:
    """Apply pending schema migrations (Alembic) to CVAULT_DATABASE_URL."""
    before, after = run_migrations(_settings())
    state = "up to date" if before == after else f"{before or 'empty'} -> {after}"
    out.print(f"schema {state} (head {head_revision()})")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
) -> None:
    """Serve the vault over HTTP (uvicorn)."""
    import uvicorn  # noqa: PLC0415 - only this command needs the server

    settings = _settings()
    bind_host = host or settings.host
    bind_port = port or settings.port
    base = f"http://{bind_host}:{bind_port}"
    out.print(f"customer-vault listening on {base}/")
    out.print(f"  GraphQL:  {base}/graphql  (GraphiQL in development mode)")
    out.print(f"  health:   {base}/healthz   ready: {base}/readyz   metrics: {base}/metrics")
    out.print("  a token:  .venv/bin/cvault token issue --role support_agent --sub agent-1")
    out.print('  headers:  {"Authorization": "Bearer <token>", "X-Purpose": "support"}')
    uvicorn.run(
        "api.app:create_app_from_env",
        factory=True,
        host=bind_host,
        port=bind_port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )


@app.command()
def demo(
    customers: Annotated[int, typer.Option(min=1, max=2_000_000, help="How many customers.")] = 200,
    seed: Annotated[int, typer.Option(help="Seed for a repeatable dataset.")] = 7,
    if_empty: Annotated[bool, typer.Option(help="Only when the vault holds no customer.")] = False,
) -> None:
    """Load a realistic multi-channel demo dataset (names in several scripts)."""
    from consent import Privacy  # noqa: PLC0415
    from consent.demo import grant_demo_consents  # noqa: PLC0415
    from vault.demo.service import load_demo  # noqa: PLC0415 - demo data only on request

    settings = _settings()
    if if_empty and customer_count(settings) > 0:
        out.print("vault already holds customers; demo data not loaded")
        return
    with _opened() as vault:
        bar, advance = _progress("demo customers", customers)
        with bar:
            summary = load_demo(vault, customers=customers, seed=seed, progress=advance)
        consents = grant_demo_consents(vault, Privacy.of(vault).ledger, seed=seed)
    out.print(f"loaded {summary.customers} customers and {summary.interactions} interactions")
    out.print(f"{consents.granted} consents granted ({consents.withdrawn} later withdrawn)")


def _run_import(kind: str, path: Path, fmt: FileFormat | None) -> None:
    from vault.importing import ImportFileError, import_customers, import_interactions  # noqa: PLC0415

    runner = import_customers if kind == "customers" else import_interactions
    with _opened() as vault:
        bar, advance = _progress(f"import {kind}", None)
        try:
            with bar:
                report = runner(vault, path, fmt=fmt.value if fmt else None, progress=advance)
        except ImportFileError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(EXIT_USAGE) from None
    for problem in report.rejected:
        err.print(
            f"{path.name}:{problem.line}: {problem.reason}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    out.print(
        f"{report.read} rows read, {report.accepted} accepted, "
        f"{report.duplicates} already present, {len(report.rejected)} rejected"
    )
    if report.rejected:
        raise typer.Exit(EXIT_REJECTED)


FileArg = Annotated[Path, typer.Argument(exists=False, dir_okay=False, help="CSV or JSONL file.")]
FormatOpt = Annotated[
    FileFormat | None, typer.Option("--format", help="Default: from the file's extension.")
]


@import_app.command("customers")
def import_customers_cmd(file: FileArg, fmt: FormatOpt = None) -> None:
    """Import customers; bad rows are reported with their line number and skipped."""
    _run_import("customers", file, fmt)


@import_app.command("interactions")
def import_interactions_cmd(file: FileArg, fmt: FormatOpt = None) -> None:
    """Import interactions (idempotent on externalId); bad rows are reported and skipped."""
    _run_import("interactions", file, fmt)


@keys_app.command("status")
def keys_status() -> None:
    """Show key-encryption key versions and how many data keys each wraps."""
    with _opened() as vault, vault.db.transaction() as session:
        status = vault.keys.status(session)
    table = Table("kek version", "state", "data keys")
    for version in sorted(set(status.keyring_versions) | set(status.data_keys_by_kek_version)):
        state = "current" if version == status.current_kek_version else "old"
        if version not in status.keyring_versions:
            state = "MISSING from keyring"
        table.add_row(str(version), state, str(status.data_keys_by_kek_version.get(version, 0)))
    out.print(table)
    out.print(f"destroyed data keys (crypto-shredded): {status.destroyed_data_keys}")
    out.print(f"pending re-wrap: {status.pending_rewrap}")
    out.print(f"blind index bits: {status.blind_index_bits}")


@keys_app.command("rotate")
def keys_rotate(
    retire: Annotated[
        bool, typer.Option("--retire-old", help="Drop old versions once nothing uses them.")
    ] = False,
    rewrap_only: Annotated[
        bool, typer.Option("--rewrap-only", help="Finish an interrupted rotation.")
    ] = False,
) -> None:
    """Add a key-encryption key, re-wrap every data key under it (values stay as they are)."""
    with _opened() as vault:
        with vault.db.transaction() as session:
            pending = vault.keys.status(session).pending_rewrap
        bar, advance = _progress("re-wrapping data keys", None if not rewrap_only else pending)
        with bar:
            report = vault.rotate_keys(
                AccessContext.system("keys-rotate"),
                rewrap_only=rewrap_only,
                retire_old=retire,
                progress=advance,
            )
    if report.new_version is not None:
        out.print(f"key-encryption key version {report.new_version} is now current")
    out.print(f"re-wrapped {report.rewrapped} data keys")
    for old in report.retired:
        out.print(f"retired key-encryption key version {old}")


token_app = typer.Typer(help="Development tokens signed with the vault's local key.")
app.add_typer(token_app, name="token")


@token_app.command("issue")
def token_issue(
    role: Annotated[str, typer.Option(help="support_agent, marketing, analyst, ...")],
    sub: Annotated[str, typer.Option(help="The subject (who the token is for).")],
    customer_id: Annotated[
        str | None, typer.Option(help="For data_subject tokens: the customer's id.")
    ] = None,
    ttl: Annotated[str, typer.Option(help="Lifetime: 30m, 1h, 7d.")] = "1h",
) -> None:
    """Mint a bearer token with the local signing key (development and tests)."""
    from datetime import timedelta  # noqa: PLC0415

    from api.auth import LocalTokenIssuer  # noqa: PLC0415
    from policies import Role  # noqa: PLC0415

    settings = _settings()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if not (ttl[:-1].isdigit() and ttl[-1:] in units):
        err.print("[red]error:[/red] --ttl must look like 30m, 1h or 7d")
        raise typer.Exit(EXIT_USAGE)
    try:
        who = Role(role)
        cid = None if customer_id is None else uuid.UUID(customer_id)
        issuer = LocalTokenIssuer.load_or_create(
            settings.jwt_signing_key, settings.jwt_issuer, settings.jwt_audience
        )
        token = issuer.issue(sub, who, cid, ttl=timedelta(seconds=int(ttl[:-1]) * units[ttl[-1]]))
    except (ValueError, VaultError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_USAGE) from None
    typer.echo(token)


@db_app.command("grants")
def db_grants(
    role: Annotated[str, typer.Option(help="The application role.")] = "cvault_app",
    schema: Annotated[str, typer.Option(help="The vault's schema.")] = "public",
) -> None:
    """Print the GRANTs for the PostgreSQL application role (no UPDATE/DELETE on audit)."""
    from vault.storage.roles import app_role_grants  # noqa: PLC0415

    try:
        statements = app_role_grants(role, schema)
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_USAGE) from None
    for statement in statements:
        typer.echo(statement + ";")


@audit_app.command("seal")
def audit_seal() -> None:
    """Give pending entries log positions and sign a checkpoint."""
    with _opened() as vault:
        done = vault.audit.sequence(vault.db)
        with vault.db.transaction() as session:
            latest = vault.audit.latest_checkpoint(session)
    out.print(f"sequenced {done} entries; tree size {0 if latest is None else latest.tree_size}")


@audit_app.command("public-key")
def audit_public_key() -> None:
    """Print the verifier key (signed-note vkey) to hand to whoever verifies exports."""
    with _opened() as vault:
        typer.echo(vault.audit.public_vkey)


@audit_app.command("export")
def audit_export(
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write.")],
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    since: Annotated[str | None, typer.Option(help="Entries at or after (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option(help="Entries before (ISO 8601).")] = None,
    actor: Annotated[str | None, typer.Option(help="Only this actor (token subject).")] = None,
    customer: Annotated[str | None, typer.Option(help="Only this customer id.")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. pii.read.")] = None,
    previous_checkpoint: Annotated[
        Path | None, typer.Option(help="Embed a consistency proof from this checkpoint.")
    ] = None,
) -> None:
    """Export the trail (streamed); a filtered export carries inclusion proofs."""
    from audit.entries import AuditAction  # noqa: PLC0415
    from vault.audit_trail.export import AuditFilter, export_audit  # noqa: PLC0415

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
    with _opened() as vault:
        bar, advance = _progress("exporting audit entries", None)
        try:
            with output.open("w", encoding="utf-8", newline="") as fh, bar:
                if fmt == "csv":
                    with meta_path.open("w", encoding="utf-8") as meta:
                        summary = export_audit(
                            vault, fh, context=AccessContext.system("audit-export"),
                            filter_=filter_, fmt=fmt, meta=meta, previous_note=previous,
                            progress=advance,
                        )  # fmt: skip
                else:
                    summary = export_audit(
                        vault, fh, context=AccessContext.system("audit-export"),
                        filter_=filter_, fmt=fmt, previous_note=previous, progress=advance,
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
    from audit.verify import VerificationError, verify_file, verify_lines  # noqa: PLC0415
    from vault.audit_trail.export import csv_to_lines  # noqa: PLC0415
    from vault.crypto.signing import ed25519_verify  # noqa: PLC0415

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


retention_app = typer.Typer(help="Retention: delete what has expired.", no_args_is_help=True)
app.add_typer(retention_app, name="retention")


def _days(days: int | None) -> str:
    return "-" if days is None else "forever" if days == 0 else str(days)


@retention_app.command("run")
def retention_run(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would go; change nothing.")
    ] = False,
) -> None:
    """Delete expired interactions, payloads, closed requests and tombstones; audited."""
    from rich.markup import escape  # noqa: PLC0415

    from vault.privacy.retention import RetentionConfigError, RetentionOutcome  # noqa: PLC0415

    with _opened() as vault:
        try:
            policy = vault.retention.policy()
        except RetentionConfigError as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(EXIT_USAGE) from None
        report = vault.retention.run(vault.db, dry_run=dry_run, now=vault.clock(), policy=policy)
    done = "would delete" if dry_run else "deleted"
    out.print(f"policy: {policy.source}", markup=False, highlight=False, soft_wrap=True)
    table = Table("subject", "keep (days)", done, "held", "kept")
    for subject, days in report.subjects():
        gone = report.count(RetentionOutcome.DELETED, subject) + report.count(
            RetentionOutcome.DROPPED, subject
        )
        held = report.count(RetentionOutcome.HELD, subject)
        kept = report.count(RetentionOutcome.KEPT, subject)
        table.add_row(subject, _days(days), str(gone), str(held), str(kept))
    out.print(table)
    out.print("interaction_payload: payloads dropped, the interactions kept", style="dim")
    deleted = report.total(RetentionOutcome.DELETED)
    dropped = report.total(RetentionOutcome.DROPPED)
    held_all = report.total(RetentionOutcome.HELD)
    if dry_run:
        out.print(f"dry run, nothing changed: would delete {deleted} rows, drop {dropped} payloads")
    else:
        out.print(f"deleted {deleted} rows, dropped {dropped} payloads")
    out.print(f"{held_all} expired rows held by legal holds; audited as retention.run")


@retention_app.command("show")
def retention_show() -> None:
    """Print the retention policy in force and where it comes from."""
    from rich.markup import escape  # noqa: PLC0415

    from vault.privacy.retention import RetentionConfigError, load_policy, policy_path  # noqa: PLC0415
    from vault.types import InteractionType  # noqa: PLC0415

    settings = _settings()
    try:
        policy = load_policy(policy_path(settings))
    except RetentionConfigError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from None
    out.print(f"policy: {policy.source}", markup=False, highlight=False, soft_wrap=True)
    table = Table("subject", "keep (days)", "from")
    for kind in InteractionType:
        named = "interactions" if kind in policy.interactions else "interactions.default"
        table.add_row(kind.value, _days(policy.days_for(kind)), named)
    for category, days in policy.categories.items():
        table.add_row(category.value, _days(days), "categories")
    out.print(table)
    out.print("kept while younger than its period (occurred_at >= now - days)", style="dim")


def _aware(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{option} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{option} needs a time zone (e.g. 2026-11-01T00:00:00+00:00)")
    return parsed


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
