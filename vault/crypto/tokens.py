"""One-time verification tokens: random, shown once, stored only as a SHA-256 digest.

A data subject request is released or executed only after its requester proves
who they are with a token handed to them once (``cvault dsr create`` prints it;
a privacy page would mail it). The vault keeps the digest, never the token, and
compares in constant time. A token holds 192 random bits, so a fast hash is
enough: nobody can search that space offline.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from vault.crypto.errors import CryptoError

__all__ = ["TOKEN_BYTES", "TokenMismatch", "new_verification_token", "verification_matches"]

TOKEN_BYTES = 24
_DIGEST_HEX = 64


class TokenMismatch(CryptoError):
    """A one-time token does not match the stored digest (or the digest is malformed)."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", errors="replace")).hexdigest()


def new_verification_token() -> tuple[str, str]:
    """A fresh token to hand out once, and the hex SHA-256 digest to store in its place."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, _digest(token)


def verification_matches(token: str, digest: str) -> None:
    """Return if ``token`` hashes to ``digest``; raise :class:`TokenMismatch` otherwise.

    The comparison takes the same time wherever the digests differ."""
    if len(digest) != _DIGEST_HEX or len(token) > 1024:
        raise TokenMismatch("verification token does not match")
    expected = digest.lower().encode("ascii", errors="replace")
    if not hmac.compare_digest(_digest(token).encode("ascii"), expected):
        raise TokenMismatch("verification token does not match")
