"""The errors of authentication: a refused bearer token, an unusable local signing key."""

from __future__ import annotations

from typing import Final

__all__ = ["GENERIC_MESSAGE", "AuthError", "SigningKeyError"]

GENERIC_MESSAGE: Final = "invalid or missing token"


class AuthError(Exception):
    """The request carries no valid bearer token. ``str()`` is always the same sentence."""

    code = "UNAUTHENTICATED"

    def __init__(self, reason: str) -> None:
        super().__init__(GENERIC_MESSAGE)
        self.reason = reason  # for logs: which check failed; never a claim value

    def __repr__(self) -> str:
        return f"AuthError(reason={self.reason!r})"


class SigningKeyError(Exception):
    """The local signing key file is missing, unreadable, malformed or too widely readable."""

    code = "SIGNING_KEY"
