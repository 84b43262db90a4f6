"""A token opens only in the context it was sealed for; every failure is a DecryptionError."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.crypto import DataKey, DecryptionError, token_key_id
from vault.crypto._aead import random_key

KEY = random_key()
OTHER_KEY = random_key()
CUSTOMER = uuid.UUID("2b7c9d10-aaaa-4bbb-8ccc-dddddddddddd")
OTHER_CUSTOMER = uuid.UUID("2b7c9d10-aaaa-4bbb-8ccc-ddddddddddde")
RECORD = uuid.UUID("3c8dae21-0000-4111-8222-333333333333")
OTHER_RECORD = uuid.UUID("3c8dae21-0000-4111-8222-333333333334")
PLAINTEXT = b"ada@example.com"


def _token(record_id: uuid.UUID | None = None, field: str = "email") -> bytes:
    return DataKey(CUSTOMER, 1, KEY).encrypt(PLAINTEXT, field=field, record_id=record_id)


def test_token_opens_in_its_own_context() -> None:
    """Sanity: the unmodified token opens with the sealing customer, field and record."""
    assert (
        DataKey(CUSTOMER, 1, KEY).decrypt(_token(RECORD), field="email", record_id=RECORD)
        == PLAINTEXT
    )


def test_token_copied_to_another_customers_key_does_not_open() -> None:
    """Another customer's data key (a different key) does not open the token."""
    with pytest.raises(DecryptionError):
        DataKey(OTHER_CUSTOMER, 1, OTHER_KEY).decrypt(_token(), field="email")


def test_token_copied_to_another_customer_id_with_the_same_key_does_not_open() -> None:
    """The customer id is bound in: even the same raw key under another id refuses."""
    with pytest.raises(DecryptionError):
        DataKey(OTHER_CUSTOMER, 1, KEY).decrypt(_token(), field="email")


def test_same_customer_with_another_key_does_not_open() -> None:
    """The right customer id with a different key refuses."""
    with pytest.raises(DecryptionError):
        DataKey(CUSTOMER, 1, OTHER_KEY).decrypt(_token(), field="email")


@pytest.mark.parametrize("field", ["phone", "Email", "email ", "", "e-mail", "emai"])
def test_token_moved_to_another_field_does_not_open(field: str) -> None:
    """The field name is bound in: an email token does not open as another field."""
    with pytest.raises(DecryptionError):
        DataKey(CUSTOMER, 1, KEY).decrypt(_token(), field=field)


@given(field=st.text(max_size=32).filter(lambda f: f != "email"))
def test_token_opens_under_no_other_field_name(field: str) -> None:
    """For any field name other than the sealing one, the token does not open."""
    with pytest.raises(DecryptionError):
        DataKey(CUSTOMER, 1, KEY).decrypt(_token(), field=field)


@pytest.mark.parametrize(
    ("sealed_for", "opened_as"),
    [(RECORD, OTHER_RECORD), (RECORD, None), (None, RECORD)],
    ids=["other-record", "record-dropped", "record-added"],
)
def test_token_moved_to_another_record_does_not_open(
    sealed_for: uuid.UUID | None, opened_as: uuid.UUID | None
) -> None:
    """The record id (or its absence) is bound in: a payload token moved to another
    interaction, or read as a customer field, does not open."""
    token = _token(sealed_for, field="interaction.payload")
    with pytest.raises(DecryptionError):
        DataKey(CUSTOMER, 1, KEY).decrypt(token, field="interaction.payload", record_id=opened_as)


@given(data=st.data())
def test_any_single_byte_change_is_detected(data: st.DataObject) -> None:
    """Flipping any bits of any one byte (header, nonce, ciphertext or tag) fails to open."""
    token = _token(RECORD)
    position = data.draw(st.integers(min_value=0, max_value=len(token) - 1), label="position")
    mask = data.draw(st.integers(min_value=1, max_value=255), label="mask")
    tampered = bytearray(token)
    tampered[position] ^= mask
    with pytest.raises(DecryptionError):
        DataKey(CUSTOMER, 1, KEY).decrypt(bytes(tampered), field="email", record_id=RECORD)


def test_every_byte_position_is_protected() -> None:
    """Exhaustively: flipping the low bit of each byte position fails to open."""
    token = _token()
    key = DataKey(CUSTOMER, 1, KEY)
    opened = []
    for position in range(len(token)):
        tampered = bytearray(token)
        tampered[position] ^= 0x01
        try:
            key.decrypt(bytes(tampered), field="email")
        except DecryptionError:
            continue
        opened.append(position)
    assert opened == []


@pytest.mark.parametrize("version", [0x00, 0x02, 0x10, 0xFF])
def test_unknown_version_byte_is_refused(version: int) -> None:
    """A token whose first byte is not 0x01 is refused, before any key is tried."""
    token = bytes([version]) + _token()[1:]
    with pytest.raises(DecryptionError):
        DataKey(CUSTOMER, 1, KEY).decrypt(token, field="email")
    with pytest.raises(DecryptionError):
        token_key_id(token)


@given(data=st.data())
def test_truncated_token_is_refused(data: st.DataObject) -> None:
    """Any proper prefix of a token (down to the empty string) fails to open."""
    token = _token()
    length = data.draw(st.integers(min_value=0, max_value=len(token) - 1), label="length")
    with pytest.raises(DecryptionError):
        DataKey(CUSTOMER, 1, KEY).decrypt(token[:length], field="email")


@given(extra=st.binary(min_size=1, max_size=32))
def test_extended_token_is_refused(extra: bytes) -> None:
    """Bytes appended to a token make it fail to open."""
    with pytest.raises(DecryptionError):
        DataKey(CUSTOMER, 1, KEY).decrypt(_token() + extra, field="email")


def test_token_of_another_key_id_is_refused() -> None:
    """A DataKey refuses a token whose header names another key id."""
    with pytest.raises(DecryptionError):
        DataKey(CUSTOMER, 2, KEY).decrypt(_token(), field="email")


def test_relabelled_key_id_does_not_open() -> None:
    """Rewriting the header's key id to match another DataKey does not open: the key id
    is in the associated data too."""
    token = _token()
    relabelled = token[:1] + (2).to_bytes(4, "big") + token[5:]
    assert token_key_id(relabelled) == 2
    with pytest.raises(DecryptionError):
        DataKey(CUSTOMER, 2, KEY).decrypt(relabelled, field="email")


def test_wrong_key_length_is_a_decryption_error() -> None:
    """A data key of the wrong length is refused with DecryptionError."""
    with pytest.raises(DecryptionError):
        DataKey(CUSTOMER, 1, KEY[:16])


def test_error_messages_carry_no_value_or_key() -> None:
    """A DecryptionError says what failed, never the plaintext, the token or the key."""
    token = _token()
    with pytest.raises(DecryptionError) as info:
        DataKey(CUSTOMER, 1, KEY).decrypt(token, field="phone")
    message = str(info.value)
    for secret in (PLAINTEXT.decode(), token.hex(), KEY.hex()):
        assert secret not in message
