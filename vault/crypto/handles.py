"""Opaque handles the API hands out and takes back: global object ids and page cursors.

A handle is ``base64url(payload || tag)`` without padding, where ``payload`` is short
ASCII text (``Customer:<uuid>``, a cursor's keyset position) and ``tag`` is a 128-bit
keyed BLAKE2b (RFC 7693) of the payload. The key is derived per use from the keyring's
blind-index key under its own label (``cvault/handles/v1/<use>``), so a handle made for
one use (``node``, ``cursor:customers``) never opens for another, and nothing is stored.

A handle is tamper-evident, not secret: anyone may base64-decode it and read the type
and the id, as Relay clients expect; no one without the key can make one the vault
accepts. :meth:`Handles.open` raises :class:`HandleInvalid` (naming no value) for
anything it did not seal: garbled, truncated, forged, or sealed for another use.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Final

from vault.crypto.errors import CryptoError
from vault.crypto.keyring import KeyProvider

__all__ = ["HandleInvalid", "Handles"]

_ROOT_LABEL: Final = b"cvault/handles/v1/"
_TAG_BYTES: Final = 16
_URL_SAFE: Final = bytes.maketrans(b"+/", b"-_")  # base64url, as urlsafe_b64encode
_MAX_HANDLE: Final = 512  # characters; longer text is refused before decoding


class HandleInvalid(CryptoError):
    """A handle does not open: garbled, truncated, forged, or sealed for another use."""


class Handles:
    """Seals short text into opaque, tamper-evident handles, one key per use."""

    __slots__ = ("_keys", "_root", "_tags")

    def __init__(self, root_key: bytes) -> None:
        if len(root_key) < 32:
            raise ValueError("handles need a root key of at least 32 bytes")
        self._root = hmac.new(root_key, _ROOT_LABEL, hashlib.sha256).digest()
        self._keys: dict[str, bytes] = {}
        # A keyed BLAKE2b per use, never updated: each tag copies it (the key's block
        # is compressed once, not on every seal and open).
        self._tags: dict[str, hashlib.blake2b] = {}

    def __repr__(self) -> str:
        return "Handles()"

    @classmethod
    def of(cls, provider: KeyProvider) -> Handles:
        return cls(provider.derive_secret(b"cvault/handles/v1"))

    def _key(self, use: str) -> bytes:
        key = self._keys.get(use)
        if key is None:
            key = hmac.new(self._root, use.encode("utf-8"), hashlib.sha256).digest()
            self._keys[use] = key
        return key

    def _tag(self, use: str, payload: bytes) -> bytes:
        keyed = self._tags.get(use)
        if keyed is None:
            keyed = hashlib.blake2b(key=self._key(use), digest_size=_TAG_BYTES)
            self._tags[use] = keyed
        tag = keyed.copy()
        tag.update(payload)
        return tag.digest()

    def seal(self, use: str, payload: str) -> str:
        """The handle of ``payload`` (ASCII) for one use."""
        raw = payload.encode("ascii")
        sealed = binascii.b2a_base64(raw + self._tag(use, raw), newline=False)
        return sealed.translate(_URL_SAFE).rstrip(b"=").decode("ascii")

    def open(self, use: str, handle: str) -> str:
        """The payload of a handle sealed for ``use``; :class:`HandleInvalid` otherwise."""
        if not isinstance(handle, str) or not 0 < len(handle) <= _MAX_HANDLE:
            raise HandleInvalid("the handle is malformed")
        try:
            padded = handle.encode("ascii") + b"=" * (-len(handle) % 4)
            raw = base64.urlsafe_b64decode(padded)
        except (UnicodeError, ValueError, binascii.Error):
            raise HandleInvalid("the handle is malformed") from None
        if base64.urlsafe_b64encode(raw).rstrip(b"=") != handle.encode("ascii"):
            raise HandleInvalid("the handle is malformed")  # not in the canonical spelling
        payload, tag = raw[:-_TAG_BYTES], raw[-_TAG_BYTES:]
        if len(raw) < _TAG_BYTES or not hmac.compare_digest(tag, self._tag(use, payload)):
            raise HandleInvalid("the handle does not verify")
        try:
            return payload.decode("ascii")
        except UnicodeError:  # pragma: no cover - only sealed ASCII verifies
            raise HandleInvalid("the handle is malformed") from None
