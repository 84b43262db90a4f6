"""What every ``cvault`` command group shares: the consoles, the exit codes, the settings
and the opened vault, the progress bar and the plain error exit.

Exit codes: 0 done, 1 refused or rejected (bad rows, a failed verification, a domain
error), 2 a usage error (bad configuration, a bad option value, an unreadable file).
This module imports none of the command modules; they all import it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from vault.config import ConfigError, Settings
from vault.crypto import CryptoError
from vault.logs import configure_logging
from vault.runtime import Vault

__all__ = [
    "EXIT_OK",
    "EXIT_REJECTED",
    "EXIT_USAGE",
    "err",
    "fail",
    "load_settings",
    "opened",
    "out",
    "progress",
]

out = Console()
err = Console(stderr=True)

EXIT_OK, EXIT_REJECTED, EXIT_USAGE = 0, 1, 2


def load_settings() -> Settings:
    """The settings from the environment; a configuration error exits 2 with its message."""
    try:
        return Settings.from_env()
    except ConfigError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_USAGE) from None


@contextmanager
def opened() -> Iterator[Vault]:
    """The vault opened from the settings (logging configured), closed on the way out."""
    settings = load_settings()
    configure_logging(settings.log_level)
    try:
        vault = Vault.open(settings)
    except (CryptoError, ConfigError) as exc:  # a key, or the attribute file (its line)
        from rich.markup import escape  # noqa: PLC0415

        err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from None
    try:
        yield vault
    finally:
        vault.close()


def progress(description: str, total: int | None) -> tuple[Progress, Callable[[int], None]]:
    """A progress bar on stderr (drawn only on a terminal) and the callback advancing it."""
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


def fail(message: str, code: int) -> typer.Exit:
    """Print ``error: message`` verbatim (no markup) on stderr; the exit to raise."""
    err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)
