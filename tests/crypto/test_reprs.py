"""No crypto object ever shows key material in its repr or str."""

# ruff: noqa: SIM300 - assertions read `expected == actual`.

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

from vault.crypto import BlindIndexer, DataKey, FileKeyProvider, Keyring, WrappedKey
from vault.crypto._aead import Aead

# Bytes no repr would contain by accident; not a printable ASCII string either.
SECRET = bytes(range(0xC0, 0xE0))
CUSTOMER = uuid.UUID("5a0b1c2d-3e4f-4051-8263-748596a7b8c9")


def _spellings(secret: bytes) -> list[str]:
    """The ways a key could leak into text: hex, HEX, base64, url-safe base64, bytes repr."""
    return [
        secret.hex(),
        secret.hex().upper(),
        base64.b64encode(secret).decode(),
        base64.urlsafe_b64encode(secret).decode(),
        repr(secret),
        secret.hex()[:16],
        base64.b64encode(secret).decode()[:16],
    ]


def _leaks(text: str, secrets: list[bytes]) -> list[str]:
    return [s for secret in secrets for s in _spellings(secret) if s in text]


def test_data_key_repr_hides_the_key() -> None:
    """repr/str of a DataKey show the customer and key id, never the key."""
    key = DataKey(CUSTOMER, 1, SECRET)
    for text in (repr(key), str(key)):
        assert [] == _leaks(text, [SECRET])
    assert f"DataKey(customer_id={CUSTOMER}, key_id=1)" == repr(key)


def test_aead_repr_hides_the_key() -> None:
    """repr/str of the AEAD primitive never show its key."""
    aead = Aead(SECRET)
    for text in (repr(aead), str(aead)):
        assert [] == _leaks(text, [SECRET])


def test_blind_indexer_repr_hides_the_key() -> None:
    """A BlindIndexer shows its bit count only, also after it has derived field sub-keys."""
    indexer = BlindIndexer.local(SECRET, 18)
    indexer.index("email", "ada@example.com")
    for text in (repr(indexer), str(indexer)):
        assert [] == _leaks(text, [SECRET])
    assert "BlindIndexer(bits=18)" == repr(indexer)


def _file_secrets(path: Path) -> list[bytes]:
    data = json.loads(path.read_text(encoding="utf-8"))
    keks = [base64.b64decode(entry["key"]) for entry in data["keks"].values()]
    return [*keks, base64.b64decode(data["blind_index"]["key"])]


def test_provider_and_keyring_reprs_hide_every_key(tmp_path: Path) -> None:
    """FileKeyProvider and Keyring show the path, never a KEK or the blind-index key."""
    path = tmp_path / "keys" / "keyring.json"
    ring = Keyring.create(path, population=1_000_000)
    ring.rotate()
    secrets = _file_secrets(path)
    assert 3 == len(secrets)
    provider = ring.provider
    assert isinstance(provider, FileKeyProvider)
    for obj in (provider, ring, ring.blind_indexer):
        for text in (repr(obj), str(obj)):
            assert [] == _leaks(text, secrets)
    assert f"FileKeyProvider(path={str(path)!r})" == repr(provider)


def test_wrapped_key_repr_hides_key_and_blob(tmp_path: Path) -> None:
    """A WrappedKey shows its version and blob length, not the blob or the data key."""
    ring = Keyring.create(tmp_path / "keys" / "keyring.json", population=1_000_000)
    data_key, wrapped = ring.new_data_key(CUSTOMER)
    wrapped_again = ring.provider.wrap(CUSTOMER, 1, SECRET)
    for obj in (wrapped, wrapped_again):
        for text in (repr(obj), str(obj)):
            assert [] == _leaks(text, [SECRET, obj.blob])
    assert "WrappedKey(kek_version=1, blob=<65 bytes>)" == repr(wrapped_again)
    assert [] == _leaks(repr(data_key), [SECRET])


def test_wrapped_key_in_a_container_repr_stays_hidden() -> None:
    """Containers use the element repr, so a list or dict of wrapped keys hides them too."""
    wrapped = WrappedKey(1, SECRET)
    assert [] == _leaks(repr([wrapped]) + repr({"k": wrapped}), [SECRET])
