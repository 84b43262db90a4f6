"""What every ``cvault`` command group shares: the consoles, the exit codes, the settings
and the opened vault, the progress bar and the plain error exit.

Exit codes: 0 done, 1 refused or rejected (bad rows, a failed verification, a domain
error), 2 a usage error (bad configuration, a bad option value, an unreadable file),
3 the database is unavailable (unreachable, disk full, read-only; ``cvault`` prints one
line and what was in progress was rolled back), 4 not found (no such customer, segment,
webhook, hold), 5 a conflict (the record changed meanwhile, or is in a state that refuses
the change). :func:`domain_exit` maps a domain error onto 1, 4 or 5.
This module imports none of the command modules; they all import it. It stays light
(typer, rich's console, the settings): the vault, SQLAlchemy and the crypto library are
imported by :func:`opened`, so ``cvault --help`` starts without them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, cast

import typer
from rich.console import Console

from vault.config import ConfigError, Settings

if TYPE_CHECKING:
    import uuid

    from rich.progress import Progress
    from sqlalchemy.orm import Session

    from vault.runtime import Vault

__all__ = [
    "EXIT_CONFLICT",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_REJECTED",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "domain_exit",
    "err",
    "fail",
    "load_settings",
    "open_private",
    "opened",
    "operator_unit",
    "out",
    "parse_uuid",
    "progress",
    "shown",
]

out = Console()
err = Console(stderr=True)

EXIT_OK, EXIT_REJECTED, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3
EXIT_NOT_FOUND, EXIT_CONFLICT = 4, 5
_EXIT_BY_CODE = {"NOT_FOUND": EXIT_NOT_FOUND, "CONFLICT": EXIT_CONFLICT}


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
    from vault.crypto import CryptoError
    from vault.logs import configure_logging
    from vault.runtime import Vault
    from vault.storage.inuse import InUse, VaultInUse

    settings = load_settings()
    configure_logging(settings.log_level)
    try:
        vault = Vault.open(settings)
    except (CryptoError, ConfigError) as exc:  # a key, or the attribute file (its line)
        from rich.markup import escape

        err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from None
    # Held while the command runs: `cvault restore` refuses to replace a vault in use.
    in_use = InUse(vault.db.direct)
    try:
        in_use.share()
    except VaultInUse as exc:
        vault.close()
        raise fail(str(exc), EXIT_REJECTED) from None
    try:
        yield vault
    finally:
        in_use.release()
        vault.close()


@contextmanager
def operator_unit(name: str, *, purpose: str = "administration") -> Iterator[tuple[Vault, Session]]:
    """The opened vault and one unit of work as the operator (``system:<name>``, ``purpose``):
    policy, consent gates and audit apply as they do for GraphQL; a domain error or a
    refusal exits through :func:`domain_exit`, and the unit rolls back."""
    from policies import AccessDenied
    from vault.authorization.context import AccessContext
    from vault.errors import VaultError

    with opened() as vault:
        try:
            with vault.unit(AccessContext.system(name, purpose=purpose)) as session:
                yield vault, session
        except (VaultError, AccessDenied) as exc:
            raise domain_exit(exc) from None


def parse_uuid(value: str, what: str) -> uuid.UUID:
    """``value`` as a UUID; otherwise exit 2 naming the argument (never echoing it)."""
    import uuid

    try:
        return uuid.UUID(value)
    except ValueError:
        raise fail(f"{what} must be a UUID", EXIT_USAGE) from None


def progress(description: str, total: int | None) -> tuple[Progress, Callable[[int], None]]:
    """A progress bar on stderr (drawn only on a terminal) and the callback advancing it."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

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


def shown(total: Callable[[], int]) -> int | None:
    """A progress bar's total, counted only when the bar is drawn (stderr is a terminal)."""
    return total() if err.is_terminal else None


def fail(message: str, code: int) -> typer.Exit:
    """Print ``error: message`` verbatim (no markup) on stderr; the exit to raise."""
    err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def domain_exit(exc: Exception) -> typer.Exit:
    """Print a domain error or a refusal (its message names ids, fields and rules, never a
    value) and return the exit to raise: 4 not found, 5 a conflict, 1 anything else."""
    code = _EXIT_BY_CODE.get(str(getattr(exc, "code", "")), EXIT_REJECTED)
    return fail(str(exc), code)


def open_private(path: Path) -> TextIO:
    """``path`` opened for writing UTF-8 text (truncated), readable by its owner only
    (0600 from creation on, and narrowed to 0600 if it existed): exports hold ids and
    what was done to whom."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        return cast(TextIO, os.fdopen(fd, "w", encoding="utf-8", newline=""))
    except BaseException:
        os.close(fd)
        raise
