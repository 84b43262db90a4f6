"""Ed25519 signing for audit checkpoints: the signer, the verifier, the key file.

The audit package signs and verifies through what this module hands it (a
signer object and :func:`ed25519_verify`), so it never imports a primitive.
A signing key lives in a JSON file ``{"name": ..., "private_key": base64}``
of mode 0600, written atomically and never overwritten.
"""

from __future__ import annotations

import base64
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from vault.crypto.errors import CryptoError, KeyringError
from vault.crypto.files import create_private_json, read_private_json

__all__ = [
    "PUBLIC_KEY_BYTES",
    "SEED_BYTES",
    "SIGNATURE_BYTES",
    "Ed25519Signer",
    "SignatureError",
    "ed25519_verify",
    "load_signer",
    "save_signer",
]

SEED_BYTES = 32
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64


class SignatureError(CryptoError):
    """A signature does not verify under the given public key and message."""


def _check_name(name: object) -> str:
    """Signed-note key names: non-empty, no Unicode space, no plus sign."""
    if (
        not isinstance(name, str)
        or not name
        or "+" in name
        or any(ch.isspace() for ch in name)
        or not name.isprintable()
    ):
        raise ValueError("a signer name must be non-empty, without spaces or '+'")
    return name


class Ed25519Signer:
    """A named Ed25519 private key. Its repr shows the name only."""

    __slots__ = ("_key", "_public", "name")

    name: str

    def __init__(self, name: str, key: Ed25519PrivateKey) -> None:
        self.name = _check_name(name)
        self._key = key
        self._public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def __repr__(self) -> str:
        return f"Ed25519Signer(name={self.name!r})"

    @classmethod
    def generate(cls, name: str) -> Ed25519Signer:
        """A new random key."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, name: str, raw: bytes) -> Ed25519Signer:
        """The key whose 32-byte RFC 8032 seed is ``raw``."""
        if not isinstance(raw, bytes) or len(raw) != SEED_BYTES:
            raise ValueError(f"an Ed25519 private key is {SEED_BYTES} bytes")
        return cls(name, Ed25519PrivateKey.from_private_bytes(raw))

    def private_bytes(self) -> bytes:
        """The raw 32-byte seed, for the caller to store in an owner-only file."""
        return self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    def public_key_bytes(self) -> bytes:
        """The raw 32-byte public key."""
        return self._public

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message`` (deterministic)."""
        return self._key.sign(message)


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> None:
    """Raise :class:`SignatureError` unless ``signature`` signs ``message`` under the key."""
    if len(public_key) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        raise SignatureError("public key or signature has the wrong length")
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        raise SignatureError("signature does not verify under this public key") from None


def save_signer(path: Path, signer: Ed25519Signer) -> None:
    """Write ``signer`` to a new owner-only (0600) key file; never replace one.

    The key is written in full to a temporary file, then hard-linked into
    place, which fails if ``path`` exists, even when another process races us.
    """
    data = {
        "name": signer.name,
        "private_key": base64.b64encode(signer.private_bytes()).decode("ascii"),
    }
    if path.exists() or not create_private_json(path, data):
        raise KeyringError(f"signing key {path} already exists; refusing to overwrite it")


def load_signer(path: Path) -> Ed25519Signer:
    """Read a key file written by :func:`save_signer`.

    Raises :class:`KeyringError` if it is missing, readable or writable by
    group or others, or malformed.
    """
    try:
        data = read_private_json(path, "signing key")
    except FileNotFoundError:
        raise KeyringError(f"signing key {path} does not exist") from None
    except OSError as exc:
        raise KeyringError(f"signing key {path} cannot be read ({exc.strerror})") from None
    if not isinstance(data, dict) or set(data) != {"name", "private_key"}:
        raise KeyringError(f"signing key {path} has an unknown format")
    encoded = data["private_key"]
    if not isinstance(encoded, str):
        raise KeyringError(f"signing key {path} has a malformed private key")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except ValueError:
        raise KeyringError(f"signing key {path} has a malformed private key") from None
    try:
        return Ed25519Signer.from_private_bytes(data["name"], raw)
    except ValueError:
        raise KeyringError(f"signing key {path} has a malformed name or private key") from None
