"""Blind indexes: truncated HMAC-SHA256 of a normalised value, one sub-key per field.

Values are normalised by the caller (see :mod:`vault.customers.normalize`). Indexes are
deliberately short (CipherSweet's rule, see ``blind_index_bits``) so several
rows share each value: a match is a candidate, re-checked after decryption.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["BlindIndexer"]

_SUBKEY_TAG = b"cvault/blind-index/v1/"


class BlindIndexer:
    """Computes blind indexes for named fields under a keyring's blind-index key."""

    __slots__ = ("_bits", "_fields", "_root")

    def __init__(self, root_key: bytes, bits: int) -> None:
        if not 1 <= bits <= 63:
            raise ValueError("blind index bits must be between 1 and 63")
        self._root = hmac.new(root_key, digestmod=hashlib.sha256)
        self._bits = bits
        self._fields: dict[str, hmac.HMAC] = {}

    def __repr__(self) -> str:
        return f"BlindIndexer(bits={self._bits})"

    @property
    def bits(self) -> int:
        return self._bits

    def _keyed(self, field: str) -> hmac.HMAC:
        keyed = self._fields.get(field)
        if keyed is None:
            derive = self._root.copy()
            derive.update(_SUBKEY_TAG + field.encode("utf-8"))
            keyed = hmac.new(derive.digest(), digestmod=hashlib.sha256)
            self._fields[field] = keyed
        return keyed

    def pseudonym(self, field: str, value: str) -> str:
        """A stable keyed pseudonym (128 bits, hex) of a value, e.g. a client address for
        the audit log: linkable within this vault, not reversible by guessing without the key."""
        mac = self._keyed(field).copy()
        mac.update(value.encode("utf-8"))
        return mac.hexdigest()[:32]

    def index(self, field: str, normalised: str) -> int:
        """The ``bits``-bit index of an already normalised value, as a non-negative int."""
        mac = self._keyed(field).copy()
        mac.update(normalised.encode("utf-8"))
        return int.from_bytes(mac.digest()[:8], "big") >> (64 - self._bits)
