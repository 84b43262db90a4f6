"""The backup's manifest: what a backup holds, with checksums, and how it is checked.

``manifest.json`` (written last, so a backup without one is incomplete) names each file
with its SHA-256 and size, the database kind (and PostgreSQL schema), the Alembic
revision, the time, the vault's version and the keyring's key ids (KEK versions) - never
a key: the keyring is not in a backup. Files are written 0600 in a folder of mode 0700.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vault.errors import VaultError

__all__ = [
    "FORMAT",
    "MANIFEST",
    "BackupRefused",
    "FileEntry",
    "Manifest",
    "checked",
    "private_dir",
    "sha256_of",
    "write_manifest",
]

FORMAT = "cvault-backup/v1"
MANIFEST = "manifest.json"
_MAX_MANIFEST = 1_048_576


class BackupRefused(VaultError):
    """A backup or restore that cannot go on: the message says why, in one line."""

    code = "BACKUP_REFUSED"


@dataclass(frozen=True, slots=True)
class FileEntry:
    name: str
    sha256: str
    bytes: int


@dataclass(frozen=True, slots=True)
class Manifest:
    created_at: str
    vault_version: str
    database: str  # sqlite or postgresql
    alembic_revision: str | None
    files: list[FileEntry]
    schema: str | None = None  # PostgreSQL: the schema that was dumped
    kek_versions: list[int] = field(default_factory=list)
    current_kek_version: int | None = None

    def document(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "created_at": self.created_at,
            "vault_version": self.vault_version,
            "database": {
                "kind": self.database,
                "schema": self.schema,
                "alembic_revision": self.alembic_revision,
            },
            "files": [{"name": f.name, "sha256": f.sha256, "bytes": f.bytes} for f in self.files],
            "keyring": {
                "included": False,
                "kek_versions": self.kek_versions,
                "current_kek_version": self.current_kek_version,
            },
        }

    @classmethod
    def parse(cls, document: object) -> Manifest:
        """The manifest of a parsed ``manifest.json``; :class:`BackupRefused` if malformed."""
        bad = BackupRefused(f"{MANIFEST} is not a cvault backup manifest")
        if not isinstance(document, Mapping) or document.get("format") != FORMAT:
            raise bad
        try:
            db, keyring = document["database"], document["keyring"]
            files = [FileEntry(str(f["name"]), str(f["sha256"]), int(f["bytes"]))
                     for f in document["files"]]  # fmt: skip
            revision = db.get("alembic_revision")
            manifest = cls(
                created_at=str(document["created_at"]),
                vault_version=str(document["vault_version"]),
                database=str(db["kind"]),
                alembic_revision=None if revision is None else str(revision),
                files=files,
                schema=None if db.get("schema") is None else str(db["schema"]),
                kek_versions=[int(v) for v in keyring.get("kek_versions", [])],
                current_kek_version=keyring.get("current_kek_version"),
            )
        except (AttributeError, KeyError, TypeError, ValueError):
            raise bad from None
        if len(manifest.files) != 1 or manifest.database not in ("sqlite", "postgresql"):
            raise bad
        return manifest


def private_dir(path: Path) -> None:
    """Create ``path`` (mode 0700); refuse one that exists and is not empty."""
    if path.exists():
        if not path.is_dir():
            raise BackupRefused(f"{path} exists and is not a folder")
        if any(path.iterdir()):
            raise BackupRefused(f"{path} is not empty; back up into a new or empty folder")
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(folder: Path, manifest: Manifest) -> Path:
    """Write ``manifest.json`` (0600, fsynced, renamed into place: all or nothing)."""
    target = folder / MANIFEST
    tmp = folder / f".{MANIFEST}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(manifest.document(), fh, indent=2, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    tmp.rename(target)
    dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return target


def checked(folder: Path) -> Manifest:
    """The backup's manifest once every file it names is there with its size and SHA-256;
    :class:`BackupRefused` (one line naming the file) for an incomplete or altered backup."""
    if not folder.is_dir():
        raise BackupRefused(f"{folder} is not a folder")
    path = folder / MANIFEST
    if not path.is_file():
        raise BackupRefused(f"incomplete backup: {path} is missing")
    raw = path.read_bytes()[:_MAX_MANIFEST]
    try:
        document = json.loads(raw)
    except ValueError:
        raise BackupRefused(f"{path} is not valid JSON") from None
    manifest = Manifest.parse(document)
    for entry in manifest.files:
        if "/" in entry.name or entry.name.startswith("."):
            raise BackupRefused(f"{MANIFEST} names a file outside the backup: {entry.name!r}")
        file = folder / entry.name
        if not file.is_file():
            raise BackupRefused(f"incomplete backup: {entry.name} is missing")
        if file.stat().st_size != entry.bytes:
            raise BackupRefused(f"{entry.name} has {file.stat().st_size} bytes, not {entry.bytes}")
        if sha256_of(file) != entry.sha256:
            raise BackupRefused(f"{entry.name} does not match its SHA-256 checksum")
    return manifest
