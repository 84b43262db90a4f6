"""``cvault import``: bulk import of customers and interactions from CSV or JSONL files.

Bad rows are reported on stderr with their line number and skipped; exit 1 when any row
was rejected, 2 when the file cannot be read at all.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import (
    EXIT_REJECTED,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    err,
    opened,
    out,
    progress,
    shown,
)

__all__ = ["FileFormat", "import_app"]

import_app = typer.Typer(help="Bulk import from CSV or JSONL.", no_args_is_help=True)


class FileFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


class OnDuplicateOpt(StrEnum):
    SKIP = "skip"
    LINK = "link"
    FAIL = "fail"


def _run_import(
    kind: str, path: Path, fmt: FileFormat | None, on_duplicate: OnDuplicateOpt | None = None
) -> None:
    from vault.importing import (
        IMPORTED_TABLES,
        ImportFileError,
        ImportReport,
        OnDuplicate,
        import_customers,
        import_interactions,
    )
    from vault.importing.reader import count_rows, file_format
    from vault.storage.db import StorageUnavailable

    runner: Callable[..., ImportReport] = import_interactions
    if kind == "customers":
        duplicate = OnDuplicate((on_duplicate or OnDuplicateOpt.SKIP).value)
        runner = partial(import_customers, on_duplicate=duplicate)
    done = [0]

    def advanced(rows: int) -> None:
        done[0] += rows
        advance(rows)

    with opened() as vault:
        try:
            # The bar's total: a quick first pass splits the rows (only when a bar is drawn).
            total = shown(lambda: count_rows(path, file_format(path, fmt.value if fmt else None)))
            bar, advance = progress(f"import {kind}", total)
            with bar:
                report = runner(vault, path, fmt=fmt.value if fmt else None, progress=advanced)
        except ImportFileError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(EXIT_USAGE) from None
        except StorageUnavailable as exc:
            message = (
                f"error: the database is unavailable ({exc.reason}) after {done[0]} rows "
                "were processed; the batch in progress was rolled back. Run the same import "
                "again once it is back: stored rows are skipped."
            )
            err.print(message, markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_UNAVAILABLE) from None
        if report.accepted:  # a vault just filled has no statistics: gather them
            vault.db.analyze(IMPORTED_TABLES[kind])
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
        + (f" ({report.linked} duplicates linked)" if report.linked else "")
    )
    if report.rejected:
        raise typer.Exit(EXIT_REJECTED)


FileArg = Annotated[Path, typer.Argument(exists=False, dir_okay=False, help="CSV or JSONL file.")]
FormatOpt = Annotated[
    FileFormat | None, typer.Option("--format", help="Default: from the file's extension.")
]


@import_app.command("customers")
def import_customers_cmd(
    file: FileArg,
    fmt: FormatOpt = None,
    on_duplicate: Annotated[
        OnDuplicateOpt,
        typer.Option(
            "--on-duplicate",
            help="A row for a customer on file (external id, email, phone) or twice in the "
            "file: skip it, link it (its external id goes to that customer) or fail it.",
        ),
    ] = OnDuplicateOpt.SKIP,
) -> None:
    """Import customers; bad rows are reported with their line number and skipped."""
    _run_import("customers", file, fmt, on_duplicate)


@import_app.command("interactions")
def import_interactions_cmd(file: FileArg, fmt: FormatOpt = None) -> None:
    """Import interactions (idempotent on externalId); bad rows are reported and skipped."""
    _run_import("interactions", file, fmt)
