"""Secrets of the pages: one-time sign-in codes, session tokens, signed cookies, CSRF tokens.

Everything here is keyed by one root that the key provider derives under its own label
(``cvault/pages/v1/``; :meth:`~vault.crypto.keyring.KeyProvider.derive_secret`, once per
process, so a PKCS#11 token is asked once, not per request), then by a label per use, so
a MAC made for one use never passes for another and nothing is stored that would let
someone holding a database dump search the 10^8 possible codes offline.

* A sign-in code is 8 decimal digits from :mod:`secrets`; only ``HMAC(code, challenge
  id)`` is stored, compared in constant time; a mismatch raises :class:`CodeMismatch`.
* A session token is 256 random bits; the database keeps its keyed digest, the browser a
  signed cookie (``token.mac``): a forged cookie is refused before any lookup.
* :meth:`PageSecrets.seal` / :meth:`PageSecrets.unseal` sign short values (cookies,
  expiring links); :meth:`PageSecrets.check` verifies a MAC such as a CSRF token. Every
  failure is :class:`SignatureInvalid` and names no value.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from typing import Final

from vault.crypto.errors import CryptoError
from vault.crypto.keyring import KeyProvider

__all__ = ["CODE_DIGITS", "CodeMismatch", "PageSecrets", "SignatureInvalid"]

CODE_DIGITS: Final = 8
_ROOT_LABEL: Final = b"cvault/pages/v1/"
_TOKEN_BYTES: Final = 32
_MAX_INPUT: Final = 4096


class CodeMismatch(CryptoError):
    """A sign-in code does not match its stored digest."""


class SignatureInvalid(CryptoError):
    """A signed value or a MAC (cookie, CSRF token, link) does not verify."""


class PageSecrets:
    """Codes, tokens and MACs of the pages, under a key derived from the keyring."""

    __slots__ = ("_keys", "_root")

    def __init__(self, root_key: bytes) -> None:
        """Page secrets under ``root_key`` (tests): the root is HMAC(root_key, label)."""
        if len(root_key) < 32:
            raise ValueError("page secrets need a root key of at least 32 bytes")
        self._root = hmac.new(root_key, _ROOT_LABEL, hashlib.sha256).digest()
        self._keys: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return "PageSecrets()"

    @classmethod
    def of(cls, provider: KeyProvider) -> PageSecrets:
        """The page secrets of a keyring: its provider derives the root (with the key file,
        the same root as ``PageSecrets(blind-index key)``)."""
        secrets = cls.__new__(cls)
        secrets._root = provider.derive_secret(_ROOT_LABEL)
        secrets._keys = {}
        return secrets

    def _mac(self, label: str, value: str) -> bytes:
        key = self._keys.get(label)
        if key is None:
            key = hmac.new(self._root, label.encode("utf-8"), hashlib.sha256).digest()
            self._keys[label] = key
        return hmac.new(key, value.encode("utf-8", errors="replace"), hashlib.sha256).digest()

    # -- sign-in codes ----------------------------------------------------------------

    def new_code(self, challenge: uuid.UUID) -> tuple[str, str]:
        """A fresh 8-digit code for one challenge, and the hex digest to store instead."""
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        return code, self.code_digest(challenge, code)

    def code_digest(self, challenge: uuid.UUID, code: str) -> str:
        return self._mac("sign-in-code", f"{challenge}/{code[:_MAX_INPUT]}").hex()

    def check_code(self, challenge: uuid.UUID, code: str, digest: str) -> None:
        """Return if ``code`` is the challenge's code; raise :class:`CodeMismatch` otherwise."""
        given = self.code_digest(challenge, code).encode("ascii")
        if not hmac.compare_digest(given, digest.lower().encode("ascii", errors="replace")):
            raise CodeMismatch("the sign-in code does not match")

    # -- tokens, digests and signed values --------------------------------------------

    @staticmethod
    def new_token() -> str:
        """256 random bits, URL-safe: a session token, a browser id."""
        return secrets.token_urlsafe(_TOKEN_BYTES)

    def digest(self, label: str, value: str) -> str:
        """A keyed digest (hex) of ``value`` for one use: what the database keeps of a
        session token, a browser binding or a rate-limit key."""
        return self._mac(label, value[:_MAX_INPUT]).hex()

    def mac(self, label: str, value: str) -> str:
        """A URL-safe MAC of ``value`` for one use (a CSRF token, a link's signature)."""
        return base64.urlsafe_b64encode(self._mac(label, value[:_MAX_INPUT])).rstrip(b"=").decode()

    def check(self, label: str, value: str, given: str) -> None:
        """Return if ``given`` is the MAC of ``value`` for ``label``; raise otherwise."""
        expected = self.mac(label, value).encode("ascii")
        if not hmac.compare_digest(expected, given[:_MAX_INPUT].encode("utf-8", "replace")):
            raise SignatureInvalid("the signature does not verify")

    def seal(self, label: str, value: str) -> str:
        """``value.mac``: a value the browser may hold but not change (no dot in value)."""
        if "." in value:
            raise ValueError("a sealed value holds no dot")
        return f"{value}.{self.mac(label, value)}"

    def unseal(self, label: str, sealed: str) -> str:
        """The value of :meth:`seal`; raise :class:`SignatureInvalid` if it was changed."""
        value, dot, given = sealed.partition(".")
        if not dot or not value:
            raise SignatureInvalid("the signed value is malformed")
        self.check(label, value, given)
        return value
