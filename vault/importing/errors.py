"""The importing package's exceptions: a whole file refused, or one row broke one rule.

Neither ever carries a value from the file, only file names, line numbers and column names.
"""

from __future__ import annotations

from vault.errors import VaultError

__all__ = ["BadRow", "ImportFileError"]


class ImportFileError(VaultError):
    """The file as a whole cannot be imported: missing, unreadable, unknown format or header."""

    code = "BAD_USER_INPUT"


class BadRow(Exception):
    """One row broke one rule; ``reason`` names the column and the rule."""

    def __init__(self, column: str, rule: str) -> None:
        super().__init__(f"{column}: {rule}")
        self.reason = f"{column}: {rule}"
