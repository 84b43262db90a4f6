"""Key-encryption keys, kept apart from the database, and the provider interface.

A :class:`KeyProvider` holds the key-encryption keys (KEKs), the blind-index key and a
derivation key, and never hands one out: it wraps and unwraps data keys, computes
blind-index MACs and derives the secrets that must live in memory (the pages' MAC root,
webhook secrets shown to their owner), each under a label of its own. A KMS or an HSM
can implement it with keys that never leave the device (:mod:`vault.crypto.pkcs11`).

The default provider is a JSON key file (mode 0600, in a directory of mode 0700). Its
blind-index key also serves as its derivation key, under labels that never meet the
blind indexes' (``cvault/blind-index/v1/``): outputs are those of earlier releases.

Beside the keyring, a shred list (:mod:`vault.crypto.shredding`) names every erased
customer: ``unwrap`` refuses their wrapped keys even when an older database backup
brings one back.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from vault.crypto._aead import KEY_BYTES, Aead, random_key
from vault.crypto.blind import BLIND_INDEX_LABEL, LocalBlindMac
from vault.crypto.errors import DecryptionError, KeyringError
from vault.crypto.files import (
    create_private_json,
    file_lock,
    read_private_json,
    write_private_json,
)
from vault.crypto.shredding import ShredList, shred_list_path

__all__ = [
    "FileKeyProvider",
    "KeyProvider",
    "WrappedKey",
    "blind_index_bits",
    "check_derive_label",
    "wrap_associated_data",
]

_FORMAT = 1
_WRAP_VERSION = 0x01
_WRAP_HEADER = struct.Struct(">BI")
_WRAP_AD_TAG = b"cvault/dek/v1"
_BLIND_PREFIX = BLIND_INDEX_LABEL.rsplit(b"/", 2)[0] + b"/"  # b"cvault/blind-index/"


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A data key sealed under one key-encryption key version."""

    kek_version: int
    blob: bytes

    def __repr__(self) -> str:
        return f"WrappedKey(kek_version={self.kek_version}, blob=<{len(self.blob)} bytes>)"


@runtime_checkable
class KeyProvider(Protocol):
    """Where the vault's keys live. No key leaves the provider: it does the work."""

    def current_version(self) -> int: ...

    def versions(self) -> list[int]: ...

    def wrap(self, customer_id: UUID, key_id: int, key: bytes) -> WrappedKey: ...

    def unwrap(self, customer_id: UUID, key_id: int, wrapped: WrappedKey) -> bytes: ...

    def rotate(self) -> int: ...

    def retire(self, version: int) -> None: ...

    def blind_index_bits(self) -> int:
        """How many bits a blind index keeps (fixed when the keyring was made)."""
        ...

    def blind_mac(self, field: str, data: bytes) -> bytes:
        """A 32-byte MAC of ``data`` under the blind-index key, separated per ``field``:
        the same inputs give the same bytes, in every process, for good."""
        ...

    def derive_secret(self, label: bytes) -> bytes:
        """A 32-byte secret for ``label``, derived from a key that stays with the provider,
        for keys that must live in memory. Labels under ``cvault/blind-index/`` are
        refused: no derived secret may stand in for the blind indexes' key."""
        ...

    def shred(self, customer_id: UUID) -> None:
        """Refuse this customer's data key from now on, in every process, for good."""
        ...

    def shredded(self, customer_ids: Iterable[UUID]) -> set[UUID]:
        """The ids among ``customer_ids`` whose data keys were shredded."""
        ...

    def close(self) -> None:
        """Let go of what the provider holds open (a session with a token)."""
        ...


def wrap_associated_data(customer_id: UUID, key_id: int, kek_version: int) -> bytes:
    """What a wrapped data key is bound to: its customer, its key id, its KEK version."""
    return _WRAP_AD_TAG + customer_id.bytes + struct.pack(">II", key_id, kek_version)


def check_derive_label(label: bytes) -> None:
    """Refuse a derivation label that could yield a blind-index sub-key."""
    if not label or label.startswith(_BLIND_PREFIX):
        raise KeyringError("a derived secret needs a label of its own (not a blind index's)")


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
        self._blind: LocalBlindMac
        self._blind_key = b""
        self._shreds = ShredList(shred_list_path(path))
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
        if data.get("provider", "file") != "file":
            raise KeyringError(f"keyring {self._path} names another key provider, not a key file")
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
        blind_key = _unb64(bidx.get("key"), "blind_index")
        if blind_key != self._blind_key:
            self._blind, self._blind_key = LocalBlindMac(blind_key), blind_key
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
            wrap_associated_data(customer_id, key_id, version),
            prefix=_WRAP_HEADER.pack(_WRAP_VERSION, version),
        )
        return WrappedKey(version, blob)

    def unwrap(self, customer_id: UUID, key_id: int, wrapped: WrappedKey) -> bytes:
        if customer_id in self._shreds.current():
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
        return kek.open(
            blob[_WRAP_HEADER.size :], wrap_associated_data(customer_id, key_id, version)
        )

    def rotate(self) -> int:
        with self._lock, file_lock(self._path):
            self._load()
            version = max(self._keks) + 1
            self._data["keks"][str(version)] = {"key": _b64(random_key()), "created_at": _now()}
            self._data["current"] = version
            write_private_json(self._path, self._data)
            self._load()
            return version

    def retire(self, version: int) -> None:
        with self._lock, file_lock(self._path):
            self._load()
            if version == self.current_version():
                raise KeyringError("the current key-encryption key cannot be retired")
            if str(version) not in self._data["keks"]:
                raise KeyringError(f"key-encryption key version {version} is not in the keyring")
            del self._data["keks"][str(version)]
            write_private_json(self._path, self._data)
            self._load()

    def blind_index_bits(self) -> int:
        return int(self._data["blind_index"]["bits"])

    def blind_mac(self, field: str, data: bytes) -> bytes:
        return self._blind.blind_mac(field, data)

    def derive_secret(self, label: bytes) -> bytes:
        """``HMAC-SHA256(blind-index key, label)``: the derivation earlier releases made."""
        check_derive_label(label)
        return hmac.new(self._blind_key, label, hashlib.sha256).digest()

    def close(self) -> None:
        """Nothing to let go of: the key file is read, not held open."""

    # -- shred list ---------------------------------------------------------

    @property
    def shred_list_path(self) -> Path:
        return self._shreds.path

    def shred(self, customer_id: UUID) -> None:
        """Append the id to the shred list and fsync it before returning."""
        self._shreds.add(customer_id)

    def shredded(self, customer_ids: Iterable[UUID]) -> set[UUID]:
        return self._shreds.among(customer_ids)
