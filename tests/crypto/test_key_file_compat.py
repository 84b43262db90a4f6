"""A fixed key file gives the same outputs from release to release.

The values below were computed with the code as it stood before the key provider
interface stopped handing out the blind-index secret (issue 17): blind indexes and
pseudonyms already stored stay searchable, sign-in code digests and session digests
stay valid, receivers keep their webhook secrets, and a wrapped data key still opens.
"""

# ruff: noqa: SIM300 - assertions read `expected == actual`.

from __future__ import annotations

import base64
import json
import os
import uuid
from pathlib import Path

import pytest

from vault.crypto import Keyring, WrappedKey
from vault.crypto.pages import PageSecrets
from vault.crypto.webhooks import WebhookSecrets

KEK = bytes(range(32))
BLIND_KEY = bytes(range(100, 132))
CUSTOMER = uuid.UUID(int=5)
DATA_KEY = bytes(range(200, 232))
WRAPPED = bytes.fromhex(
    "0100000001579f643bb5634f96fc612894258295936ac3ded539a582f66afc60ff890c096c0217ab10"
    "488cabd083bb0f0a70fd9ee3c94cd9ff2b13319d68f1ea71"
)


@pytest.fixture
def ring(tmp_path: Path) -> Keyring:
    """The fixed key file: one KEK, one blind-index key, 18 bits."""
    path = tmp_path / "keyring.json"
    data = {
        "format": 1,
        "current": 1,
        "keks": {
            "1": {
                "key": base64.b64encode(KEK).decode(),
                "created_at": "2026-01-01T00:00:00+00:00",
            }
        },
        "blind_index": {
            "key": base64.b64encode(BLIND_KEY).decode(),
            "bits": 18,
            "population": 1_000_000,
        },
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    return Keyring.open(path)


def test_blind_indexes_of_a_fixed_key_file_are_unchanged(ring: Keyring) -> None:
    """E-mail and phone indexes (any script) are the ones stored before the change."""
    indexer = ring.blind_indexer
    assert 18 == indexer.bits
    assert 122139 == indexer.index("email", "ada@example.com")
    assert 10559 == indexer.index("phone", "+4915112345678")
    assert 156638 == indexer.index("email", "مریم@example.ir")


def test_pseudonyms_of_a_fixed_key_file_are_unchanged(ring: Keyring) -> None:
    """Client-address and consent-evidence pseudonyms link to the ones already stored."""
    indexer = ring.blind_indexer
    assert "7c100194ec888f7cd8cdec7189a4f081" == indexer.pseudonym("audit.client", "127.0.0.1")
    assert "9bf79f27d52f1f00b7d72bceb9a6d2c5" == indexer.pseudonym(
        "consent.user_agent", "Mozilla/5.0"
    )


def test_page_secrets_of_a_fixed_key_file_are_unchanged(ring: Keyring) -> None:
    """Stored sign-in code and session digests still match; issued CSRF tokens still verify."""
    secrets = PageSecrets.of(ring.provider)
    challenge = uuid.UUID(int=7)
    assert (
        "2d7df2469f80180196e9863bf5c567df2b47f0e6e84f9d903c4887c8027221f3"
        == secrets.code_digest(challenge, "12345678")
    )
    assert "bf43c64ac0a7490c62045a9e16e47d6024f80d6e944fbe15d50c647844cb6bab" == secrets.digest(
        "session", "tok"
    )
    assert "VuLPzb0stkCzmHJruLwBxIzaXvBRcPUTjSKH-COglWE" == secrets.mac("csrf", "browser/1")


def test_webhook_secrets_of_a_fixed_key_file_are_unchanged(ring: Keyring) -> None:
    """Receivers keep the secret they were shown: it is derived, never stored."""
    secrets = WebhookSecrets.of(ring.provider)
    assert "whsec_mEGT8_M3wDkjlRKinQwfhy6HEFXVzY5MFXivXQgt96k" == secrets.secret(
        uuid.UUID(int=9), 1
    )


def test_a_data_key_wrapped_before_the_change_still_opens(ring: Keyring) -> None:
    """The wrapped-key format of the file provider is unchanged."""
    assert DATA_KEY == ring.provider.unwrap(CUSTOMER, 1, WrappedKey(1, WRAPPED))
