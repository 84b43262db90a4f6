"""Blind indexes: truncated keyed MACs of a normalised value, separated per field.

The MAC is the key provider's (:class:`BlindMac`): the key never has to leave it. A
key held in memory (the key file's) uses :class:`LocalBlindMac`:
``HMAC-SHA256(HMAC-SHA256(root, "cvault/blind-index/v1/" || field), value)``; a PKCS#11
token computes its own HMAC inside the token (see :mod:`vault.crypto.pkcs11`).

Values are normalised by the caller (see :mod:`vault.customers.normalize`). Indexes are
deliberately short (CipherSweet's rule, see ``blind_index_bits``) so several
rows share each value: a match is a candidate, re-checked after decryption.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Protocol

__all__ = ["BLIND_INDEX_LABEL", "MATCH_KEY_FIELD", "BlindIndexer", "BlindMac", "LocalBlindMac"]

BLIND_INDEX_LABEL = b"cvault/blind-index/v1/"
# The field name the name + birth date match key is derived for (its own sub-key).
MATCH_KEY_FIELD = "name+birth_date"


class BlindMac(Protocol):
    """Whatever holds the blind-index key: a 32-byte MAC of ``data`` for ``field``."""

    def blind_mac(self, field: str, data: bytes) -> bytes: ...


class LocalBlindMac:
    """The blind-index MAC under a key held in memory, one derived sub-key per field."""

    __slots__ = ("_fields", "_root")

    def __init__(self, root_key: bytes) -> None:
        self._root = hmac.new(root_key, digestmod=hashlib.sha256)
        self._fields: dict[str, hmac.HMAC] = {}

    def __repr__(self) -> str:
        return "LocalBlindMac(<key hidden>)"

    def blind_mac(self, field: str, data: bytes) -> bytes:
        keyed = self._fields.get(field)
        if keyed is None:
            derive = self._root.copy()
            derive.update(BLIND_INDEX_LABEL + field.encode("utf-8"))
            keyed = hmac.new(derive.digest(), digestmod=hashlib.sha256)
            self._fields[field] = keyed
        mac = keyed.copy()
        mac.update(data)
        return mac.digest()


class BlindIndexer:
    """Computes blind indexes for named fields with a provider's blind-index MAC."""

    __slots__ = ("_bits", "_mac")

    def __init__(self, mac: BlindMac, bits: int) -> None:
        if not 1 <= bits <= 63:
            raise ValueError("blind index bits must be between 1 and 63")
        self._mac: Callable[[str, bytes], bytes] = mac.blind_mac
        self._bits = bits

    @classmethod
    def local(cls, root_key: bytes, bits: int) -> BlindIndexer:
        """An indexer over a key held in memory (tests, the key file)."""
        return cls(LocalBlindMac(root_key), bits)

    def __repr__(self) -> str:
        return f"BlindIndexer(bits={self._bits})"

    @property
    def bits(self) -> int:
        return self._bits

    def pseudonym(self, field: str, value: str) -> str:
        """A stable keyed pseudonym (128 bits, hex) of a value, e.g. a client address for
        the audit log: linkable within this vault, not reversible by guessing without the key."""
        return self._mac(field, value.encode("utf-8")).hex()[:32]

    def index(self, field: str, normalised: str) -> int:
        """The ``bits``-bit index of an already normalised value, as a non-negative int."""
        digest = self._mac(field, normalised.encode("utf-8"))
        return int.from_bytes(digest[:8], "big") >> (64 - self._bits)

    def match_key(self, full_name: str, birth_date: str) -> int:
        """The ``bits``-bit match key of a person: the blind index of an already
        normalised full name and an ISO birth date together, under its own sub-key.
        Short like every blind index: a shared key is a candidate, re-checked in clear."""
        return self.index(MATCH_KEY_FIELD, f"{full_name}\x00{birth_date}")
