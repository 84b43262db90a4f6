"""Webhook secrets and signatures: derived, never stored; signed like Stripe's, verified
by a helper that raises.

Secret
    ``whsec_`` + base64url(the key provider's derived secret for the label
    "cvault/webhook/v1/" + webhook id + "/" + version), asked of the provider each time
    (:meth:`~vault.crypto.keyring.KeyProvider.derive_secret`: with the key file,
    HMAC-SHA256 under its blind-index key, as in earlier releases; a PKCS#11 token computes
    it inside the token). The label keeps the uses apart: no derivation label may start
    with ``cvault/blind-index/``. The vault stores only the webhook id and the version, so
    a database dump reveals no secret; raising the version gives a new secret. The security
    endpoint that hears of access alerts (``vault.alerts``) has one secret of its own,
    derived for the label "cvault/security-webhook/v1" (``cvault alerts secret``).

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
from collections.abc import Callable, Mapping
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
_SECURITY_LABEL = b"cvault/security-webhook/v1"
_PREFIX = "whsec_"
_SCHEME = "v1"
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_SIGNATURE = re.compile(r"^v1=([0-9a-f]{64})$")


class SignatureError(CryptoError):
    """A webhook message's signature does not match, or its timestamp is too old (or too
    far in the future). Names no value."""


class WebhookSecrets:
    """Derives each webhook's signing secret from the keyring, on demand."""

    __slots__ = ("_derive",)

    def __init__(self, root_key: bytes) -> None:
        """Secrets under ``root_key`` held here (tests): HMAC-SHA256(root_key, label)."""
        if len(root_key) < 32:
            raise ValueError("webhook secrets need a root key of at least 32 bytes")
        self._derive: Callable[[bytes], bytes] = lambda label: hmac.new(
            root_key, label, hashlib.sha256
        ).digest()

    def __repr__(self) -> str:
        return "WebhookSecrets()"

    @classmethod
    def of(cls, provider: KeyProvider) -> WebhookSecrets:
        """The webhook secrets of a keyring, derived by its provider on demand."""
        secrets = cls.__new__(cls)
        secrets._derive = provider.derive_secret
        return secrets

    def secret(self, webhook_id: UUID, version: int) -> str:
        """The secret a receiver checks signatures with (shown to its owner once)."""
        if version < 1:
            raise ValueError("secret versions start at 1")
        return self._encode(self._derive(_LABEL + f"{webhook_id}/{version}".encode("ascii")))

    def security_secret(self) -> str:
        """The secret the security endpoint checks access alerts' signatures with."""
        return self._encode(self._derive(_SECURITY_LABEL))

    @staticmethod
    def _encode(digest: bytes) -> str:
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
