"""Key files: JSON that only the vault's user may read, written atomically.

One implementation for the keyring, the audit signing key and the local
token-signing key: refuse a file that group or others can read or that is not a
regular file (no symlink games), never half-write one, and never overwrite a
key by accident.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vault.crypto.errors import KeyringError

__all__ = ["create_private_json", "file_lock", "read_private_json", "write_private_json"]

_MAX_BYTES = 1_048_576


def read_private_json(path: Path, what: str) -> Any:  # noqa: ANN401 - any JSON document
    """The parsed JSON of an owner-only key file; FileNotFoundError when there is none."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise KeyringError(f"{what} {path} is not a regular file")
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyringError(
                f"{what} {path} is readable by group or others; run 'chmod 600' on it"
            )
        raw = fh.read(_MAX_BYTES)
    try:
        return json.loads(raw)
    except ValueError:
        raise KeyringError(f"{what} {path} is not readable JSON") from None


def _staged(path: Path, data: Any) -> Path:  # noqa: ANN401 - any JSON document
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def write_private_json(path: Path, data: Any) -> None:  # noqa: ANN401 - any JSON document
    """Atomically replace ``path`` with ``data``, readable by the owner only."""
    tmp = _staged(path, data)
    try:
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def create_private_json(path: Path, data: Any) -> bool:  # noqa: ANN401 - any JSON document
    """Write a new owner-only file; False (and nothing written) if ``path`` exists, even
    when another process creates it at the same moment (a hard link never overwrites)."""
    tmp = _staged(path, data)
    try:
        path.hardlink_to(tmp)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock across processes while ``path`` is rewritten (``<path>.lock``)."""
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
