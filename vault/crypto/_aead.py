"""The one module that touches the AEAD primitive. Private: use the recipes."""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vault.crypto.errors import DecryptionError

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16


def random_key() -> bytes:
    return os.urandom(KEY_BYTES)


class Aead:
    """AES-256-GCM under one key, with the key schedule built once."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise DecryptionError("key has the wrong length")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "Aead(<key hidden>)"

    def seal(self, plaintext: bytes, associated_data: bytes, *, prefix: bytes) -> bytes:
        """Return ``prefix || nonce || ciphertext || tag`` under a fresh random nonce."""
        nonce = os.urandom(NONCE_BYTES)
        return prefix + nonce + self._aead.encrypt(nonce, plaintext, associated_data)

    def _seal_with_nonce(
        self, plaintext: bytes, associated_data: bytes, *, prefix: bytes, nonce: bytes
    ) -> bytes:
        """Deterministic sealing, for known-answer tests only."""
        return prefix + nonce + self._aead.encrypt(nonce, plaintext, associated_data)

    def open(self, body: bytes, associated_data: bytes) -> bytes:
        """Open ``nonce || ciphertext || tag``; any failure is a :class:`DecryptionError`."""
        if len(body) < NONCE_BYTES + TAG_BYTES:
            raise DecryptionError("token is truncated")
        try:
            return self._aead.decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], associated_data)
        except InvalidTag:
            raise DecryptionError("token does not open under this key and context") from None
