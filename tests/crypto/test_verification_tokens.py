"""One-time verification tokens: random, stored as a SHA-256 digest, checked by raising."""

from __future__ import annotations

import hashlib

import pytest

from vault.crypto import CryptoError
from vault.crypto.tokens import TokenMismatch, new_verification_token, verification_matches


def test_a_token_is_random_url_safe_and_its_digest_is_sha256_hex() -> None:
    """192 random bits as URL-safe text; the digest is the hex SHA-256 of the token."""
    tokens = [new_verification_token() for _ in range(50)]
    assert len({t for t, _ in tokens}) == 50
    for token, digest in tokens:
        assert len(token) == 32
        assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        assert hashlib.sha256(token.encode()).hexdigest() == digest


def test_the_right_token_passes_and_any_other_raises() -> None:
    """A match returns; a wrong, altered, empty, non-ASCII or oversized token, or a
    malformed digest, raises TokenMismatch (a CryptoError) naming no value."""
    token, digest = new_verification_token()
    verification_matches(token, digest)
    verification_matches(token, digest.upper())
    altered = token[:-1] + ("A" if token[-1] != "A" else "B")
    for wrong, stored in [
        (altered, digest),
        ("", digest),
        ("\u067e\ud800", digest),
        (token * 40, digest),
        (token, digest[:-1]),
        (token, ""),
    ]:
        with pytest.raises(TokenMismatch) as error:
            verification_matches(wrong, stored)
        assert isinstance(error.value, CryptoError)
        assert token not in str(error.value)
