"""Per-customer data keys and the field token format.

A field token is ``0x01 || key_id (u32 BE) || nonce (12) || ciphertext || tag (16)``.
Its associated data binds the customer id, the field name, the record id (for
rows other than the customer itself, such as an interaction) and the key id, so
a token copied to another customer, field or record does not open.
"""

from __future__ import annotations

import itertools
import struct
import threading
from uuid import UUID

from vault.crypto._aead import Aead
from vault.crypto.errors import DecryptionError

__all__ = [
    "TOKEN_VERSION",
    "DataKey",
    "decryption_counts",
    "field_associated_data",
    "token_key_id",
]

TOKEN_VERSION = 0x01
_HEADER = struct.Struct(">BI")
_AD_TAG = b"cvault/field/v1"


def _ad_prefix(customer_id: UUID, key_id: int, field: str) -> bytes:
    field_bytes = field.encode("utf-8")
    if len(field_bytes) > 0xFFFF:
        raise ValueError("field name too long")
    return b"".join(
        (_AD_TAG, customer_id.bytes, struct.pack(">IH", key_id, len(field_bytes)), field_bytes)
    )


def field_associated_data(
    customer_id: UUID, key_id: int, field: str, record_id: UUID | None
) -> bytes:
    """Canonical, unambiguous associated data for one field value."""
    record = b"\x00" if record_id is None else b"\x01" + record_id.bytes
    return _ad_prefix(customer_id, key_id, field) + record


def token_key_id(token: bytes) -> int:
    """The key id a token was sealed under (the header is not secret)."""
    if len(token) < _HEADER.size or token[0] != TOKEN_VERSION:
        raise DecryptionError("unknown token version")
    return int(_HEADER.unpack_from(token)[1])


class _Tally:
    """A count that threads add to without a lock (``next`` on an ``itertools.count`` is
    one atomic step) and that is read under one: cheap enough for every field opened."""

    __slots__ = ("_count", "_lock", "_reads")

    def __init__(self) -> None:
        self._count = itertools.count()
        self._lock = threading.Lock()
        self._reads = 0

    def add(self) -> None:
        next(self._count)

    def total(self) -> int:
        with self._lock:  # each read takes one number too: subtract those
            value = next(self._count) - self._reads
            self._reads += 1
            return value


_OPENED, _REFUSED = _Tally(), _Tally()


def decryption_counts() -> tuple[int, int]:
    """Field tokens this process opened, and tokens it refused to open, since it started
    (``vault.telemetry`` turns them into metrics)."""
    return _OPENED.total(), _REFUSED.total()


class DataKey:
    """One customer's unwrapped data key. Callers never see the key or pick a nonce."""

    __slots__ = ("_aead", "_header", "_prefixes", "customer_id", "key_id")

    def __init__(self, customer_id: UUID, key_id: int, key: bytes) -> None:
        self.customer_id = customer_id
        self.key_id = key_id
        self._aead = Aead(key)
        self._header = _HEADER.pack(TOKEN_VERSION, key_id)
        self._prefixes: dict[str, bytes] = {}

    def _ad(self, field: str, record_id: UUID | None) -> bytes:
        prefix = self._prefixes.get(field)
        if prefix is None:
            prefix = _ad_prefix(self.customer_id, self.key_id, field)
            self._prefixes[field] = prefix
        return prefix + (b"\x00" if record_id is None else b"\x01" + record_id.bytes)

    def __repr__(self) -> str:
        return f"DataKey(customer_id={self.customer_id}, key_id={self.key_id})"

    def encrypt(self, plaintext: bytes, *, field: str, record_id: UUID | None = None) -> bytes:
        return self._aead.seal(plaintext, self._ad(field, record_id), prefix=self._header)

    def decrypt(self, token: bytes, *, field: str, record_id: UUID | None = None) -> bytes:
        try:
            ours = token_key_id(token) == self.key_id
            plain = (
                self._aead.open(token[_HEADER.size :], self._ad(field, record_id)) if ours else None
            )
        except DecryptionError:
            _REFUSED.add()
            raise
        if plain is None:
            _REFUSED.add()
            raise DecryptionError("token was sealed under another data key")
        _OPENED.add()
        return plain

    def encrypt_text(self, value: str, *, field: str, record_id: UUID | None = None) -> bytes:
        return self.encrypt(value.encode("utf-8"), field=field, record_id=record_id)

    def decrypt_text(self, token: bytes, *, field: str, record_id: UUID | None = None) -> str:
        return self.decrypt(token, field=field, record_id=record_id).decode("utf-8")
