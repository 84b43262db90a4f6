"""The shred list: every erased customer's id, beside the keyring, append-only.

``<keyring>.shredded.list`` (one customer id per line, mode 0600) names every erased
customer; a key provider refuses their wrapped keys even when an older database backup
brings one back. Every provider keeps one, whatever holds its keys (a key file, a
PKCS#11 token): the list is as durable as the keyring it sits beside.
"""

from __future__ import annotations

import os
import re
import stat
import threading
from collections.abc import Iterable
from pathlib import Path
from uuid import UUID

from vault.crypto.errors import KeyringError

__all__ = ["ShredList", "shred_list_path"]

_SHRED_SUFFIX = ".shredded.list"
# What a write torn by a crash can leave of one line: a proper prefix of a UUID.
_TORN_LINE = re.compile(r"^[0-9a-f-]{0,35}$")


def shred_list_path(keyring_path: Path) -> Path:
    """Where the shred list of a keyring lives: beside it, ``<stem>.shredded.list``."""
    return keyring_path.with_name(keyring_path.stem + _SHRED_SUFFIX)


class ShredList:
    """One keyring's shred list, re-read when another process appended to it."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._ids: frozenset[UUID] = frozenset()

    def __repr__(self) -> str:
        return f"ShredList(path={str(self._path)!r})"

    @property
    def path(self) -> Path:
        return self._path

    def add(self, customer_id: UUID) -> None:
        """Append the id and fsync it before returning (once: a second add writes nothing)."""
        with self._lock:
            if customer_id in self._current_locked():
                return
            _append_line(self._path, f"{customer_id}\n".encode("ascii"))
            self._stamp = None  # re-read on next use: other processes append too

    def among(self, customer_ids: Iterable[UUID]) -> set[UUID]:
        """The ids among ``customer_ids`` on the list."""
        ids = self.current()
        if not ids:  # the common case, on every key look-up: nothing to compare
            return set()
        return {cid for cid in customer_ids if cid in ids}

    def current(self) -> frozenset[UUID]:
        """The list, re-read when its size, mtime or inode changed (one stat call)."""
        stamp = _stamp_of(self._path)
        if stamp is not None and stamp == self._stamp:
            return self._ids
        with self._lock:
            return self._current_locked()

    def _current_locked(self) -> frozenset[UUID]:
        stamp = _stamp_of(self._path)
        if stamp is None:
            self._stamp, self._ids = None, frozenset()
        elif stamp != self._stamp:
            self._ids = _read_shred_list(self._path)
            self._stamp = stamp
        return self._ids


def _stamp_of(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _check_private(fd: int, path: Path) -> os.stat_result:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise KeyringError(f"shred list {path} is not a regular file")
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyringError(f"shred list {path} is readable by group or others; run 'chmod 600'")
    return st


def _append_line(path: Path, line: bytes) -> None:
    """One ``write`` with O_APPEND (whole lines never interleave), then fsync. A line
    torn by an earlier crash is closed first, so the new id stands on a line of its own."""
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        raise KeyringError(f"shred list {path} cannot be written ({exc.strerror})") from None
    created = False
    try:
        st = _check_private(fd, path)
        created = st.st_size == 0
        if st.st_size and os.pread(fd, 1, st.st_size - 1) != b"\n":
            line = b"\n" + line
        if os.write(fd, line) != len(line):
            raise KeyringError(f"shred list {path} took a short write")
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:  # make the new directory entry durable too
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _read_shred_list(path: Path) -> frozenset[UUID]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return frozenset()
    except OSError as exc:
        raise KeyringError(f"shred list {path} cannot be read ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as fh:
        _check_private(fh.fileno(), path)
        raw = fh.read()
    ids: set[UUID] = set()
    lines = raw.decode("ascii", errors="replace").split("\n")
    for number, line in enumerate(lines, start=1):
        if not line:
            continue
        try:
            ids.add(UUID(line))
        except ValueError:
            # A crash mid-append leaves a UUID prefix (its erasure never committed);
            # anything else means the file was damaged or edited: refuse to guess.
            if _TORN_LINE.match(line):
                continue
            raise KeyringError(f"shred list {path} line {number} is not a customer id") from None
    return frozenset(ids)
