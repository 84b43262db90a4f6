"""Webhook secrets and signatures (vault.crypto.webhooks): derivation, signing, and a
verify helper that raises on any mismatch or a stale timestamp."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, datetime

import pytest

from vault.crypto.webhooks import (
    SignatureError,
    WebhookSecrets,
    sign_payload,
    verify_signature,
)

SECRETS = WebhookSecrets(bytes(range(32)))
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC).timestamp()
BODY = b'{"id":"x","type":"segment.entered"}'


def test_secrets_are_stable_per_webhook_and_version_and_differ_otherwise() -> None:
    """The same id and version give the same secret; another version, id or root key a
    different one. The repr shows nothing."""
    hook = uuid.UUID("0190f3a8-0000-7000-8000-000000000001")
    first = SECRETS.secret(hook, 1)
    assert first == WebhookSecrets(bytes(range(32))).secret(hook, 1)
    assert first.startswith("whsec_")
    assert len(first) == 6 + 43  # 32 bytes, base64url without padding
    others = {
        SECRETS.secret(hook, 2),
        SECRETS.secret(uuid.uuid4(), 1),
        WebhookSecrets(bytes(32)).secret(hook, 1),
    }
    assert first not in others
    assert len(others) == 3
    assert repr(SECRETS) == "WebhookSecrets()"
    with pytest.raises(ValueError, match="versions"):
        SECRETS.secret(hook, 0)
    with pytest.raises(ValueError, match="32 bytes"):
        WebhookSecrets(b"short")


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    """A receiver in any language can recompute it: hex HMAC-SHA256 keyed with the secret
    string over "<timestamp>.<body>", prefixed v1=."""
    secret = SECRETS.secret(uuid.uuid4(), 1)
    headers = sign_payload(secret, BODY, int(NOW))
    expected = hmac.new(secret.encode(), f"{int(NOW)}.".encode() + BODY, hashlib.sha256)
    assert {
        "X-CVault-Timestamp": str(int(NOW)),
        "X-CVault-Signature": "v1=" + expected.hexdigest(),
    } == headers


def test_verify_accepts_a_fresh_signature_in_any_header_case_and_among_several() -> None:
    """Within five minutes either way, with lower-cased header names, or listed after
    another v1= value (as while a secret changes), the signature verifies."""
    secret = SECRETS.secret(uuid.uuid4(), 1)
    headers = sign_payload(secret, BODY, int(NOW))
    verify_signature(secret, BODY, headers, now=NOW + 300)
    verify_signature(secret, BODY, headers, now=NOW - 300)
    verify_signature(secret, BODY, {k.lower(): v for k, v in headers.items()}, now=NOW)
    listed = "v1=" + "0" * 64 + ", " + headers["X-CVault-Signature"]
    verify_signature(secret, BODY, {**headers, "X-CVault-Signature": listed}, now=NOW)


OTHER_SECRET = SECRETS.secret(uuid.uuid4(), 1)
TS, SIG = "X-CVault-Timestamp", "X-CVault-Signature"


@pytest.mark.parametrize(
    ("body", "other_secret", "now", "edit"),
    [
        pytest.param(BODY + b" ", False, NOW, {}, id="changed body"),
        pytest.param(BODY, True, NOW, {}, id="another secret"),
        pytest.param(BODY, False, NOW + 301, {}, id="too old"),
        pytest.param(BODY, False, NOW - 301, {}, id="too far ahead"),
        pytest.param(BODY, False, NOW, {SIG: None}, id="no signature"),
        pytest.param(BODY, False, NOW, {TS: None}, id="no timestamp"),
        pytest.param(BODY, False, NOW, {TS: "12ab"}, id="bad timestamp"),
        pytest.param(BODY, False, NOW, {TS: str(int(NOW) + 1)}, id="moved timestamp"),
        pytest.param(BODY, False, NOW, {SIG: "v0=" + "0" * 64}, id="other scheme"),
        pytest.param(BODY, False, NOW, {SIG: ""}, id="empty signature"),
    ],
)
def test_verify_raises_on_every_mismatch(
    body: bytes, other_secret: bool, now: float, edit: dict[str, str | None]
) -> None:
    """Each way a message can be wrong raises SignatureError; none returns quietly."""
    secret = SECRETS.secret(uuid.UUID(int=7), 1)
    headers = sign_payload(secret, BODY, int(NOW))
    for name, value in edit.items():
        if value is None:
            del headers[name]
        else:
            headers[name] = value
    with pytest.raises(SignatureError):
        verify_signature(OTHER_SECRET if other_secret else secret, body, headers, now=now)
