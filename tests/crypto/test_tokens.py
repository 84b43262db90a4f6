"""Known-answer vectors for the field-token and wrapped-data-key formats.

The expected tokens below were computed once with AES-256-GCM (and cross-checked
against the streaming GCM interface of ``cryptography``) and pasted as literals.
If one of them changes, every token already stored in a vault stops opening.
"""

from __future__ import annotations

import base64
import json
import struct
import uuid
from pathlib import Path

import pytest

from vault.crypto import DataKey, FileKeyProvider, WrappedKey, token_key_id
from vault.crypto._aead import NONCE_BYTES, TAG_BYTES, Aead
from vault.crypto.datakeys import TOKEN_VERSION, field_associated_data
from vault.crypto.keyring import wrap_associated_data

KEY = bytes(range(32))
CUSTOMER = uuid.UUID("6f1c2a4e-8b3d-4c5e-9f70-123456789abc")
RECORD = uuid.UUID("0a0b0c0d-0e0f-4a1b-8c2d-3e4f50617283")
NONCE = bytes(range(0xA0, 0xAC))
KEY_ID = 7
HEADER = struct.Struct(">BI")

# (field, record id, key id, plaintext, expected token hex)
VECTORS: list[tuple[str, uuid.UUID | None, int, bytes, str]] = [
    (
        "email",
        None,
        7,
        b"ada@example.com",
        "0100000007a0a1a2a3a4a5a6a7a8a9aaab"
        "877c1d6d20b363d21209e2fd6415ad"
        "4b4745e9a7574539576a59ca353cd298",
    ),
    (
        "last_name",
        None,
        7,
        "Zahra \u0645\u062d\u0645\u062f\u06cc".encode(),
        "0100000007a0a1a2a3a4a5a6a7a8a9aaab"
        "bc79145f24ebdb3abac85e56dfd51b52f817ef11e1"
        "cb237f4b17ff5faa5f3374",
    ),
    (
        "interaction.payload",
        RECORD,
        7,
        b'{"sku":"A-1"}',
        "0100000007a0a1a2a3a4a5a6a7a8a9aaab"
        "9d3a0f4630e9389d2348b6f17a"
        "379060fb0437506fc177890317a648e8",
    ),
    (
        "address",
        None,
        1,
        b"",
        "0100000001a0a1a2a3a4a5a6a7a8a9aaabe1aec0ad9dfe42cf47c540e803a416de",
    ),
]

KEK = bytes(range(32, 64))
DATA_KEY = bytes(range(64, 96))
WRAPPED_V3 = (
    "0100000003a0a1a2a3a4a5a6a7a8a9aaab"
    "3e7de6778092c6ede961e7f16a1038e9c12e935468e1707557cb91a28f3bf1a7"
    "fe232e557449b3200b26c5f232b950d3"
)


def test_associated_data_layout() -> None:
    """Field associated data is ``b"cvault/field/v1" || customer (16) || key id u32 BE
    || len(field) u16 BE || field UTF-8 || (0x00 | 0x01 || record id (16))``."""
    assert bytes.fromhex(
        "637661756c742f6669656c642f76316f1c2a4e8b3d4c5e9f70123456789abc000000070005656d61696c00"
    ) == field_associated_data(CUSTOMER, KEY_ID, "email", None)
    assert bytes.fromhex(
        "637661756c742f6669656c642f7631"
        "6f1c2a4e8b3d4c5e9f70123456789abc"
        "00000007"
        "0013"
        "696e746572616374696f6e2e7061796c6f6164"
        "01"
        "0a0b0c0d0e0f4a1b8c2d3e4f50617283"
    ) == field_associated_data(CUSTOMER, KEY_ID, "interaction.payload", RECORD)


@pytest.mark.parametrize(("field", "record_id", "key_id", "plaintext", "expected"), VECTORS)
def test_sealing_known_answer(
    field: str, record_id: uuid.UUID | None, key_id: int, plaintext: bytes, expected: str
) -> None:
    """Under a fixed key and nonce a field token is exactly
    ``0x01 || key id || nonce || AES-256-GCM(plaintext, associated data)``."""
    ad = field_associated_data(CUSTOMER, key_id, field, record_id)
    token = Aead(KEY)._seal_with_nonce(
        plaintext, ad, prefix=HEADER.pack(TOKEN_VERSION, key_id), nonce=NONCE
    )
    assert expected == token.hex()


@pytest.mark.parametrize(("field", "record_id", "key_id", "plaintext", "expected"), VECTORS)
def test_decryption_known_answer(
    field: str, record_id: uuid.UUID | None, key_id: int, plaintext: bytes, expected: str
) -> None:
    """A DataKey opens a stored token of the documented format to its plaintext."""
    key = DataKey(CUSTOMER, key_id, KEY)
    assert plaintext == key.decrypt(bytes.fromhex(expected), field=field, record_id=record_id)


def test_decrypt_text_known_answer() -> None:
    """Text fields are UTF-8: a Persian surname comes back as the same string."""
    _, record_id, key_id, _, expected = VECTORS[1]
    key = DataKey(CUSTOMER, key_id, KEY)
    assert (
        key.decrypt_text(bytes.fromhex(expected), field="last_name", record_id=record_id)
        == "Zahra \u0645\u062d\u0645\u062f\u06cc"
    )


@pytest.mark.parametrize(
    "plaintext", [b"", b"x", b"ada@example.com", "\u4f1f \u738b".encode(), bytes(1000)]
)
def test_token_layout(plaintext: bytes) -> None:
    """A token is version 0x01, the key id as u32 big-endian, a 12-byte nonce, the
    ciphertext (as long as the plaintext) and a 16-byte tag."""
    token = DataKey(CUSTOMER, 0x01020304, KEY).encrypt(plaintext, field="email")
    assert token[0] == 0x01
    assert bytes([1, 2, 3, 4]) == token[1:5]
    assert token_key_id(token) == 0x01020304
    assert 1 + 4 + 12 + len(plaintext) + 16 == len(token)
    assert NONCE_BYTES == 12
    assert TAG_BYTES == 16


def test_token_nonce_sits_after_header() -> None:
    """The nonce is bytes 5..17 of the token: re-sealing with that nonce gives the token."""
    key = DataKey(CUSTOMER, KEY_ID, KEY)
    token = key.encrypt(b"hello", field="first_name")
    nonce = token[5:17]
    ad = field_associated_data(CUSTOMER, KEY_ID, "first_name", None)
    expected = Aead(KEY)._seal_with_nonce(
        b"hello", ad, prefix=HEADER.pack(TOKEN_VERSION, KEY_ID), nonce=nonce
    )
    assert expected == token


def test_wrap_associated_data_layout() -> None:
    """Wrapping associated data is ``b"cvault/dek/v1" || customer (16) || key id u32 BE
    || kek version u32 BE``."""
    assert bytes.fromhex(
        "637661756c742f64656b2f76316f1c2a4e8b3d4c5e9f70123456789abc0000000100000003"
    ) == wrap_associated_data(CUSTOMER, 1, 3)


def test_wrapping_known_answer() -> None:
    """A wrapped data key is ``0x01 || kek version u32 BE || nonce || AES-256-GCM(key)``."""
    blob = Aead(KEK)._seal_with_nonce(
        DATA_KEY, wrap_associated_data(CUSTOMER, 1, 3), prefix=HEADER.pack(0x01, 3), nonce=NONCE
    )
    assert blob.hex() == WRAPPED_V3


def _write_keyring(path: Path, keks: dict[int, bytes], current: int) -> None:
    path.parent.mkdir(mode=0o700, exist_ok=True)
    data = {
        "format": 1,
        "current": current,
        "keks": {
            str(v): {"key": base64.b64encode(k).decode(), "created_at": "2026-01-01T00:00:00+00:00"}
            for v, k in keks.items()
        },
        "blind_index": {
            "key": base64.b64encode(bytes(32)).decode(),
            "bits": 18,
            "population": 1_000_000,
        },
    }
    path.write_text(json.dumps(data), encoding="utf-8")
    path.chmod(0o600)


def test_unwrapping_known_answer(tmp_path: Path) -> None:
    """A keyring file holding a known KEK as version 3 unwraps the stored blob to the data key."""
    path = tmp_path / "keys" / "keyring.json"
    _write_keyring(path, {3: KEK}, current=3)
    provider = FileKeyProvider(path)
    assert provider.unwrap(CUSTOMER, 1, WrappedKey(3, bytes.fromhex(WRAPPED_V3))) == DATA_KEY


def test_wrapped_key_layout(tmp_path: Path) -> None:
    """A fresh wrap is 0x01, the current KEK version u32 BE, a 12-byte nonce, the 32-byte
    ciphertext and a 16-byte tag; the WrappedKey records the same version."""
    path = tmp_path / "keys" / "keyring.json"
    _write_keyring(path, {3: KEK, 258: bytes(range(100, 132))}, current=258)
    wrapped = FileKeyProvider(path).wrap(CUSTOMER, 1, DATA_KEY)
    assert wrapped.kek_version == 258
    assert wrapped.blob[0] == 0x01
    assert (258).to_bytes(4, "big") == wrapped.blob[1:5]
    assert len(wrapped.blob) == 1 + 4 + 12 + 32 + 16
    assert DATA_KEY.hex() not in wrapped.blob.hex()
