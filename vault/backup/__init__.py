"""Backup and restore of the vault's database (``cvault backup`` / ``cvault restore``).

``manifest`` (what a backup holds, checksums, checking them), ``dumps`` (SQLite's online
backup API; ``pg_dump``/``pg_restore`` for PostgreSQL), ``service`` (the two operations:
a restore refuses a vault in use, migrates an older schema and re-applies the erasures
the keyring's shred list records). The keyring is never part of a backup.

Sits beside ``importing`` and ``demo`` above ``runtime``: it imports ``runtime`` (to
re-apply erasures) and the kernel (storage, crypto, config), nothing else of the vault.
"""

from vault.backup.manifest import BackupRefused, Manifest
from vault.backup.service import BackupReport, RestoreReport, backup, restore

__all__ = ["BackupRefused", "BackupReport", "Manifest", "RestoreReport", "backup", "restore"]
