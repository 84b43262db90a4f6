"""Key-encryption keys, kept apart from the database, and the provider interface.

The default provider is a JSON key file (mode 0600, in a directory of mode
0700). A KMS provider implements :class:`KeyProvider`: it wraps and unwraps
data keys and never hands its key-encryption keys out.

Beside the key file, a shred list (``<keyring>.shredded.list``, one customer id
per line, append-only, mode 0600) names every erased customer: ``unwrap``
refuses their wrapped keys even when an older database backup brings one back.
"""

from __future__ import annotations

import base64
import fcntl
import os
import re
import stat
import struct
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from vault.crypto._aead import KEY_BYTES, Aead, random_key
from vault.crypto.errors import DecryptionError, KeyringError
from vault.crypto.files import create_private_json, read_private_json, write_private_json

__all__ = ["FileKeyProvider", "KeyProvider", "WrappedKey", "shred_list_path"]

_FORMAT = 1
_WRAP_VERSION = 0x01
_WRAP_HEADER = struct.Struct(">BI")
_WRAP_AD_TAG = b"cvault/dek/v1"
_SHRED_SUFFIX = ".shredded.list"
# What a write torn by a crash can leave of one line: a proper prefix of a UUID.
_TORN_LINE = re.compile(r"^[0-9a-f-]{0,35}$")


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A data key sealed under one key-encryption key version."""

    kek_version: int
    blob: bytes

    def __repr__(self) -> str:
        return f"WrappedKey(kek_version={self.kek_version}, blob=<{len(self.blob)} bytes>)"


@runtime_checkable
class KeyProvider(Protocol):
    """Where key-encryption keys live. Keys never leave the provider."""

    def current_version(self) -> int: ...

    def versions(self) -> list[int]: ...

    def wrap(self, customer_id: UUID, key_id: int, key: bytes) -> WrappedKey: ...

    def unwrap(self, customer_id: UUID, key_id: int, wrapped: WrappedKey) -> bytes: ...

    def rotate(self) -> int: ...

    def retire(self, version: int) -> None: ...

    def blind_index_secret(self) -> tuple[bytes, int]: ...

    def shred(self, customer_id: UUID) -> None:
        """Refuse this customer's data key from now on, in every process, for good."""
        ...

    def shredded(self, customer_ids: Iterable[UUID]) -> set[UUID]:
        """The ids among ``customer_ids`` whose data keys were shredded."""
        ...


def _wrap_ad(customer_id: UUID, key_id: int, kek_version: int) -> bytes:
    return _WRAP_AD_TAG + customer_id.bytes + struct.pack(">II", key_id, kek_version)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise KeyringError(f"keyring entry {what} is not a base64 string")
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raise KeyringError(f"keyring entry {what} is not valid base64") from None
    if len(raw) != KEY_BYTES:
        raise KeyringError(f"keyring entry {what} must hold {KEY_BYTES} bytes")
    return raw


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def blind_index_bits(population: int, min_coincidence: int = 2) -> int:
    """CipherSweet's rule: keep at least ``min_coincidence`` expected rows per index value.

    With ``R`` rows and ``L`` bits, ``R / 2**L`` rows share each value; the
    largest ``L`` with ``R / 2**L >= min_coincidence`` is ``floor(log2(R / c))``.
    """
    if population < min_coincidence * 2:
        raise KeyringError("blind index population must be at least twice the coincidence")
    return max(1, (population // min_coincidence).bit_length() - 1)


class FileKeyProvider:
    """Key-encryption keys in a JSON file that only the vault's user may read."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] = (0, 0, 0)
        self._data: dict[str, Any] = {}
        self._keks: dict[int, Aead] = {}
        self._shred_path = shred_list_path(path)
        self._shred_stamp: tuple[int, int, int] | None = None
        self._shred_ids: frozenset[UUID] = frozenset()
        self._load()

    def __repr__(self) -> str:
        return f"FileKeyProvider(path={str(self._path)!r})"

    @classmethod
    def create(cls, path: Path, *, population: int) -> FileKeyProvider:
        """Write a new keyring; refuse to overwrite one that exists."""
        if path.exists():
            raise KeyringError(f"keyring {path} already exists; refusing to overwrite it")
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.parent.chmod(0o700)
        data = {
            "format": _FORMAT,
            "current": 1,
            "keks": {"1": {"key": _b64(random_key()), "created_at": _now()}},
            "blind_index": {
                "key": _b64(random_key()),
                "bits": blind_index_bits(population),
                "population": population,
            },
        }
        if not create_private_json(path, data):
            raise KeyringError(f"keyring {path} already exists; refusing to overwrite it")
        return cls(path)

    @property
    def path(self) -> Path:
        return self._path

    def _load(self) -> None:
        try:
            st = self._path.stat()
            data = read_private_json(self._path, "keyring")
        except FileNotFoundError:
            raise KeyringError(f"keyring {self._path} does not exist; run 'cvault init'") from None
        except OSError as exc:
            raise KeyringError(f"keyring {self._path} cannot be read ({exc.strerror})") from None
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise KeyringError(f"keyring {self._path} has an unknown format")
        keks_raw = data.get("keks")
        if not isinstance(keks_raw, dict) or not keks_raw:
            raise KeyringError(f"keyring {self._path} holds no key-encryption keys")
        keks: dict[int, Aead] = {}
        for name, entry in keks_raw.items():
            if not (isinstance(name, str) and name.isdigit()) or not isinstance(entry, dict):
                raise KeyringError(f"keyring {self._path} has a malformed key-encryption key")
            keks[int(name)] = Aead(_unb64(entry.get("key"), f"kek {name}"))
        current = data.get("current")
        if not isinstance(current, int) or current not in keks:
            raise KeyringError(f"keyring {self._path} names a current version it does not hold")
        bidx = data.get("blind_index")
        if not isinstance(bidx, dict) or not isinstance(bidx.get("bits"), int):
            raise KeyringError(f"keyring {self._path} has no blind index key")
        if not 1 <= bidx["bits"] <= 63:
            raise KeyringError(f"keyring {self._path} has blind index bits outside 1..63")
        _unb64(bidx.get("key"), "blind_index")
        self._data = data
        self._keks = keks
        self._stamp = (st.st_mtime_ns, st.st_size, st.st_ino)

    def reload(self) -> None:
        with self._lock:
            self._load()

    def _refresh(self) -> None:
        """Reload when another process rewrote the file (rotate, retire): one stat call."""
        try:
            st = self._path.stat()
        except FileNotFoundError:
            raise KeyringError(f"keyring {self._path} has disappeared") from None
        if (st.st_mtime_ns, st.st_size, st.st_ino) != self._stamp:
            self.reload()

    def current_version(self) -> int:
        self._refresh()
        return int(self._data["current"])

    def versions(self) -> list[int]:
        return sorted(self._keks)

    def wrap(self, customer_id: UUID, key_id: int, key: bytes) -> WrappedKey:
        version = self.current_version()
        blob = self._keks[version].seal(
            key,
            _wrap_ad(customer_id, key_id, version),
            prefix=_WRAP_HEADER.pack(_WRAP_VERSION, version),
        )
        return WrappedKey(version, blob)

    def unwrap(self, customer_id: UUID, key_id: int, wrapped: WrappedKey) -> bytes:
        if customer_id in self._shredded_now():
            raise DecryptionError("data key belongs to an erased customer and is shredded")
        blob = wrapped.blob
        if len(blob) < _WRAP_HEADER.size or blob[0] != _WRAP_VERSION:
            raise DecryptionError("wrapped data key has an unknown version")
        version = int(_WRAP_HEADER.unpack_from(blob)[1])
        if version != wrapped.kek_version:
            raise DecryptionError("wrapped data key does not match its recorded version")
        kek = self._keks.get(version)
        if kek is None:
            # Another process may have rotated the keyring since we loaded it.
            self.reload()
            kek = self._keks.get(version)
            if kek is None:
                raise DecryptionError("key-encryption key version is not in the keyring")
        return kek.open(blob[_WRAP_HEADER.size :], _wrap_ad(customer_id, key_id, version))

    def rotate(self) -> int:
        with self._lock, _file_lock(self._path):
            self._load()
            version = max(self._keks) + 1
            self._data["keks"][str(version)] = {"key": _b64(random_key()), "created_at": _now()}
            self._data["current"] = version
            write_private_json(self._path, self._data)
            self._load()
            return version

    def retire(self, version: int) -> None:
        with self._lock, _file_lock(self._path):
            self._load()
            if version == self.current_version():
                raise KeyringError("the current key-encryption key cannot be retired")
            if str(version) not in self._data["keks"]:
                raise KeyringError(f"key-encryption key version {version} is not in the keyring")
            del self._data["keks"][str(version)]
            write_private_json(self._path, self._data)
            self._load()

    def blind_index_secret(self) -> tuple[bytes, int]:
        bidx = self._data["blind_index"]
        return _unb64(bidx["key"], "blind_index"), int(bidx["bits"])

    # -- shred list ---------------------------------------------------------

    @property
    def shred_list_path(self) -> Path:
        return self._shred_path

    def shred(self, customer_id: UUID) -> None:
        """Append the id to the shred list and fsync it before returning."""
        with self._lock:
            if customer_id in self._shredded_locked():
                return
            _append_line(self._shred_path, f"{customer_id}\n".encode("ascii"))
            self._shred_stamp = None  # re-read on next use: other processes append too

    def shredded(self, customer_ids: Iterable[UUID]) -> set[UUID]:
        ids = self._shredded_now()
        if not ids:  # the common case, on every key look-up: nothing to compare
            return set()
        return {cid for cid in customer_ids if cid in ids}

    def _shredded_now(self) -> frozenset[UUID]:
        """The shred list, re-read when its size, mtime or inode changed (one stat call)."""
        stamp = _stamp_of(self._shred_path)
        if stamp is not None and stamp == self._shred_stamp:
            return self._shred_ids
        with self._lock:
            return self._shredded_locked()

    def _shredded_locked(self) -> frozenset[UUID]:
        stamp = _stamp_of(self._shred_path)
        if stamp is None:
            self._shred_stamp, self._shred_ids = None, frozenset()
        elif stamp != self._shred_stamp:
            self._shred_ids = _read_shred_list(self._shred_path)
            self._shred_stamp = stamp
        return self._shred_ids


def shred_list_path(keyring_path: Path) -> Path:
    """Where the shred list of a keyring lives: beside it, ``<stem>.shredded.list``."""
    return keyring_path.with_name(keyring_path.stem + _SHRED_SUFFIX)


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


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock across processes while the keyring file is rewritten."""
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
