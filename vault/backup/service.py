"""``backup`` and ``restore``: a consistent copy of the vault's database with a manifest,
and putting one back, erasures re-applied and the schema migrated.

A backup never holds the keyring (its keys open every customer's data; kept apart, a
stolen backup opens nothing) and says where the keyring is. A restore checks every
checksum first, refuses a vault in use (:mod:`vault.storage.inuse`) and a target that
already holds data unless forced, restores, migrates an older schema to head, then
re-applies every erasure the keyring's shred list records (``Vault.reapply_erasures``,
as ``cvault erasure reapply``).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from sqlalchemy import Engine

from vault.backup.dumps import (
    dump_postgres,
    dump_sqlite,
    restore_postgres,
    restore_sqlite,
    tables_in,
)
from vault.backup.manifest import (
    BackupRefused,
    FileEntry,
    Manifest,
    checked,
    private_dir,
    sha256_of,
    write_manifest,
)
from vault.config import Settings
from vault.crypto import Keyring, shred_list_path
from vault.runtime import Vault
from vault.storage.db import Database, make_engine
from vault.storage.inuse import InUse
from vault.storage.migrate import current_revision, head_revision, known_revision, upgrade

__all__ = ["BackupReport", "RestoreReport", "backup", "restore"]

_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass(frozen=True, slots=True)
class BackupReport:
    folder: Path
    manifest: Manifest
    keyring: Path  # where the keyring is: NOT in the backup
    shred_list: Path


@dataclass(frozen=True, slots=True)
class RestoreReport:
    manifest: Manifest
    replaced_tables: int  # tables the target held before (0: it was empty)
    revision_before: str | None
    revision_after: str | None
    erased_again: list[uuid.UUID]
    held: list[uuid.UUID]
    interactions_purged: int
    missing_kek_versions: list[int]  # in the backup's keyring, no longer in this one


def _vault_version() -> str:
    try:
        return version("customer-vault")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def backup(settings: Settings, folder: Path, *, engine: Engine | None = None) -> BackupReport:
    """Copy the database into ``folder`` (new or empty; 0700) with its manifest (written
    last). The keyring is opened for its key ids only and is not copied."""
    keyring = Keyring.open(settings.keyring_path, pin=settings.pkcs11_pin)
    try:
        kek_versions, current_kek = keyring.versions(), keyring.current_version()
    finally:
        keyring.close()
    own = engine is None
    engine = engine if engine is not None else make_engine(settings.database_url)
    try:
        revision = current_revision(engine)
        private_dir(folder)
        schema = None
        if engine.dialect.name == "sqlite":
            dump = dump_sqlite(engine, folder)
        else:
            dump, schema = dump_postgres(engine, folder)
    finally:
        if own:
            engine.dispose()
    manifest = Manifest(
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        vault_version=_vault_version(),
        database=engine.dialect.name,
        alembic_revision=revision,
        files=[FileEntry(dump.name, sha256_of(dump), dump.stat().st_size)],
        schema=schema,
        kek_versions=kek_versions,
        current_kek_version=current_kek,
    )
    write_manifest(folder, manifest)
    return BackupReport(
        folder=folder,
        manifest=manifest,
        keyring=settings.keyring_path,
        shred_list=shred_list_path(settings.keyring_path),
    )


def _known_revision(revision: str | None) -> None:
    if revision is not None and not known_revision(revision):
        raise BackupRefused(
            f"the backup's schema revision {revision} is unknown to this vault (a newer "
            "version made it); restore it with that version"
        )


def restore(settings: Settings, folder: Path, *, force: bool = False) -> RestoreReport:
    """Put the backup in ``folder`` back into the configured database.

    Refuses (:class:`BackupRefused`, one line) a backup whose files are missing or altered,
    of the other database kind or of an unknown schema revision; a target that holds
    tables unless ``force``; and (``VaultInUse``) a vault a server or command has open."""
    manifest = checked(folder)
    keyring = Keyring.open(settings.keyring_path, pin=settings.pkcs11_pin)  # re-applies erasures
    engine = make_engine(settings.database_url)
    in_use = InUse(engine)
    try:
        if manifest.database != engine.dialect.name:
            raise BackupRefused(
                f"the backup is of a {manifest.database} database, the vault uses "
                f"{engine.dialect.name}"
            )
        if manifest.schema is not None and not _SCHEMA_NAME.match(manifest.schema):
            raise BackupRefused("the manifest names an invalid schema")
        _known_revision(manifest.alembic_revision)
        in_use.exclusive()
        held_tables = tables_in(engine)
        if held_tables and not force:
            raise BackupRefused(
                f"the target database already holds {held_tables} tables; give --force to "
                "replace them with the backup"
            )
        dump = folder / manifest.files[0].name
        if engine.dialect.name == "sqlite":
            restore_sqlite(engine, dump)
        else:
            restore_postgres(engine, dump, manifest.schema or "public")
        before = current_revision(engine)
        if before != head_revision():
            upgrade(engine)
        after = current_revision(engine)
        vault = Vault.open(settings, keyring=keyring, database=Database(engine))
        reapplied = vault.reapply_erasures()
        kept_versions = set(keyring.versions())
    finally:
        in_use.release()
        engine.dispose()
        keyring.close()
    return RestoreReport(
        manifest=manifest,
        replaced_tables=held_tables,
        revision_before=before,
        revision_after=after,
        erased_again=reapplied.erased,
        held=reapplied.held,
        interactions_purged=reapplied.purged,
        missing_kek_versions=sorted(set(manifest.kek_versions) - kept_versions),
    )
