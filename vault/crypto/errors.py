"""The crypto package's exceptions. None of them ever carries a key or a value."""

from __future__ import annotations

__all__ = ["CryptoError", "DecryptionError", "KeyringError"]


class CryptoError(Exception):
    """Base class for every crypto failure."""


class DecryptionError(CryptoError):
    """A token could not be opened: wrong key, wrong context, tampered, or key destroyed."""


class KeyringError(CryptoError):
    """The keyring is missing, unreadable, too widely readable, or malformed."""
