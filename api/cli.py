"""``cvault``: the operator's command line. Commands call vault services; no SQL here."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

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
    out.print(f"customer-vault listening on http://{bind_host}:{bind_port}/")
    out.print(f"  health: http://{bind_host}:{bind_port}/healthz")
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
    from vault.demo import load_demo  # noqa: PLC0415 - demo data only on request

    settings = _settings()
    if if_empty and customer_count(settings) > 0:
        out.print("vault already holds customers; demo data not loaded")
        return
    with _opened() as vault:
        bar, advance = _progress("demo customers", customers)
        with bar:
            summary = load_demo(vault, customers=customers, seed=seed, progress=advance)
    out.print(f"loaded {summary.customers} customers and {summary.interactions} interactions")


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
    from sqlalchemy.orm import Session  # noqa: PLC0415

    with _opened() as vault:
        if not rewrap_only:
            version = vault.keyring.rotate()
            out.print(f"key-encryption key version {version} is now current")
        with vault.db.transaction() as session:
            pending = vault.keys.status(session).pending_rewrap
        bar, advance = _progress("re-wrapping data keys", pending)
        with bar:
            done = vault.keys.rewrap_all(
                lambda: Session(vault.db.engine), vault.clock, progress=advance
            )
        out.print(f"re-wrapped {done} data keys")
        if retire:
            with vault.db.transaction() as session:
                status = vault.keys.status(session)
            for old in status.keyring_versions:
                if old != status.current_kek_version and not status.data_keys_by_kek_version.get(
                    old
                ):
                    vault.keyring.retire(old)
                    out.print(f"retired key-encryption key version {old}")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
