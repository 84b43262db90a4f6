"""Webhook secrets and signatures: derived, never stored; signed like Stripe's, verified
by a helper that raises.

Secret
    ``whsec_`` + base64url(HMAC-SHA256(root, "cvault/webhook/v1/" + webhook id + "/" +
    version)). ``root`` is the keyring's blind-index key (the only symmetric secret a
    :class:`~vault.crypto.keyring.KeyProvider` hands out); the label keeps the two uses
    apart, since the blind indexes derive their per-field keys from the label
    ``cvault/blind-index/v1/``. The vault stores only the webhook id and the version, so
    a database dump reveals no secret; raising the version gives a new secret.

Signature
    ``X-CVault-Timestamp: <unix seconds>`` and ``X-CVault-Signature: v1=<hex>``, where
    hex is HMAC-SHA256 keyed with the secret string's UTF-8 bytes over
    ``"<timestamp>." + body``. :func:`verify_signature` raises :class:`SignatureError` on
    a mismatch or when the timestamp is more than five minutes away from now (a replay
    or a badly skewed clock).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from uuid import UUID

from vault.crypto.errors import CryptoError
from vault.crypto.keyring import KeyProvider

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "TOLERANCE_SECONDS",
    "SignatureError",
    "WebhookSecrets",
    "sign_payload",
    "verify_signature",
]

SIGNATURE_HEADER = "X-CVault-Signature"
TIMESTAMP_HEADER = "X-CVault-Timestamp"
TOLERANCE_SECONDS = 300
_LABEL = b"cvault/webhook/v1/"
_PREFIX = "whsec_"
_SCHEME = "v1"
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_SIGNATURE = re.compile(r"^v1=([0-9a-f]{64})$")


class SignatureError(CryptoError):
    """A webhook message's signature does not match, or its timestamp is too old (or too
    far in the future). Names no value."""


class WebhookSecrets:
    """Derives each webhook's signing secret from the keyring, on demand."""

    __slots__ = ("_root",)

    def __init__(self, root_key: bytes) -> None:
        if len(root_key) < 32:
            raise ValueError("webhook secrets need a root key of at least 32 bytes")
        self._root = root_key

    def __repr__(self) -> str:
        return "WebhookSecrets()"

    @classmethod
    def of(cls, provider: KeyProvider) -> WebhookSecrets:
        return cls(provider.blind_index_secret()[0])

    def secret(self, webhook_id: UUID, version: int) -> str:
        """The secret a receiver checks signatures with (shown to its owner once)."""
        if version < 1:
            raise ValueError("secret versions start at 1")
        label = _LABEL + f"{webhook_id}/{version}".encode("ascii")
        digest = hmac.new(self._root, label, hashlib.sha256).digest()
        return _PREFIX + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _mac(secret: str, timestamp: str, body: bytes) -> str:
    message = timestamp.encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign_payload(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The two signature headers for ``body`` sent at ``timestamp`` (unix seconds)."""
    stamp = str(int(timestamp))
    return {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: f"{_SCHEME}={_mac(secret, stamp, body)}"}


def _header(headers: Mapping[str, str], name: str) -> str:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    raise SignatureError(f"webhook message lacks the {name} header")


def verify_signature(
    secret: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> None:
    """Return if ``headers`` carry a valid signature of ``body`` made within ``tolerance``
    seconds of ``now`` (default: the system clock); raise :class:`SignatureError`
    otherwise. The signature header may list several ``v1=`` values (comma-separated),
    as during a secret change; one match is enough. Comparisons take constant time."""
    stamp = _header(headers, TIMESTAMP_HEADER).strip()
    if not _TIMESTAMP.match(stamp):
        raise SignatureError("webhook timestamp is not unix seconds")
    current = time.time() if now is None else now
    if abs(current - int(stamp)) > tolerance:
        raise SignatureError(f"webhook timestamp is outside the {tolerance} s tolerance")
    expected = _mac(secret, stamp, body).encode("ascii")
    matched = False
    for part in _header(headers, SIGNATURE_HEADER).split(","):
        found = _SIGNATURE.match(part.strip())
        if found is not None and hmac.compare_digest(found.group(1).encode("ascii"), expected):
            matched = True
    if not matched:
        raise SignatureError("webhook signature does not match")
