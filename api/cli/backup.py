"""``cvault backup --to DIR`` and ``cvault restore --from DIR``.

``backup`` copies the database (SQLite online backup, or ``pg_dump`` custom format) into
a new folder (0700, files 0600) with a manifest of checksums, and warns that the keyring
is not in it and where it is. ``restore`` checks the checksums, refuses a vault in use and
(without ``--force``) a target that holds data, restores, migrates to head and re-applies
the erasures the keyring's shred list records. Both print what they did; a refusal is one
line on stderr and exit 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import EXIT_REJECTED, err, fail, load_settings, out

__all__ = ["backup", "restore"]


def _say(line: str) -> None:
    out.print(line, markup=False, highlight=False, soft_wrap=True)


def backup(
    to: Annotated[Path, typer.Option("--to", help="A new or empty folder for the backup.")],
) -> None:
    """Back the database up into a folder, with a manifest of checksums (not the keyring)."""
    from vault.backup import backup as run_backup
    from vault.crypto import CryptoError
    from vault.errors import VaultError

    settings = load_settings()
    try:
        report = run_backup(settings, to)
    except (VaultError, CryptoError) as exc:
        raise fail(str(exc), EXIT_REJECTED) from None
    manifest = report.manifest
    for entry in manifest.files:
        _say(f"wrote {report.folder / entry.name} ({entry.bytes} bytes, sha256 {entry.sha256})")
    _say(f"wrote {report.folder / 'manifest.json'}")
    _say(f"database {manifest.database}, schema revision {manifest.alembic_revision}")
    err.print(
        f"warning: the keyring is NOT in this backup. It is {report.keyring} (with its shred "
        f"list {report.shred_list}); back it up separately and keep it apart from this "
        "backup: together they open every customer's data.",
        markup=False, highlight=False, soft_wrap=True,
    )  # fmt: skip


def restore(
    from_: Annotated[Path, typer.Option("--from", help="A folder written by 'cvault backup'.")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace a target database that holds data.")
    ] = False,
) -> None:
    """Restore a backup: checksums checked, erasures re-applied, schema migrated."""
    from vault.backup import restore as run_restore
    from vault.crypto import CryptoError
    from vault.errors import VaultError

    settings = load_settings()
    try:
        report = run_restore(settings, from_, force=force)
    except (VaultError, CryptoError) as exc:
        raise fail(str(exc), EXIT_REJECTED) from None
    manifest = report.manifest
    _say(f"checked {len(manifest.files)} file(s) against the manifest: all match")
    replaced = f", replacing {report.replaced_tables} tables" if report.replaced_tables else ""
    _say(f"restored the {manifest.database} backup taken {manifest.created_at}{replaced}")
    if report.revision_before == report.revision_after:
        _say(f"schema at revision {report.revision_after}")
    else:
        _say(f"schema migrated {report.revision_before} -> {report.revision_after}")
    for customer_id in report.erased_again:
        _say(f"erased again: {customer_id}")
    for customer_id in report.held:
        _say(f"not erased again (a legal hold in the restored database): {customer_id}")
    _say(
        f"{len(report.erased_again)} customers erased again, "
        f"{report.interactions_purged} interactions purged"
    )
    if report.missing_kek_versions:
        versions = ", ".join(str(v) for v in report.missing_kek_versions)
        err.print(
            f"warning: the keyring no longer holds key-encryption key version(s) {versions}: "
            "data keys wrapped under them cannot be opened",
            markup=False, highlight=False, soft_wrap=True,
        )  # fmt: skip
