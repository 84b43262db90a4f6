"""Property tests: whatever a DataKey seals, the same DataKey opens to the same value."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from vault.crypto import DataKey, token_key_id
from vault.crypto._aead import random_key

KEY = random_key()
CUSTOMER = uuid.UUID("1d5e0a3c-1111-4222-8333-444455556666")

fields = st.text(min_size=0, max_size=64)
record_ids = st.none() | st.uuids()
key_ids = st.integers(min_value=0, max_value=2**32 - 1)


@given(value=st.text(), field=fields, record_id=record_ids)
def test_text_round_trips(value: str, field: str, record_id: uuid.UUID | None) -> None:
    """decrypt_text(encrypt_text(s)) == s for any Unicode string, field name and record id."""
    key = DataKey(CUSTOMER, 1, KEY)
    token = key.encrypt_text(value, field=field, record_id=record_id)
    assert value == key.decrypt_text(token, field=field, record_id=record_id)


@given(value=st.binary(max_size=4096), field=fields, record_id=record_ids, key_id=key_ids)
def test_bytes_round_trip(
    value: bytes, field: str, record_id: uuid.UUID | None, key_id: int
) -> None:
    """decrypt(encrypt(b)) == b for any bytes, under any u32 key id."""
    key = DataKey(CUSTOMER, key_id, KEY)
    token = key.encrypt(value, field=field, record_id=record_id)
    assert value == key.decrypt(token, field=field, record_id=record_id)
    assert key_id == token_key_id(token)


@given(customer=st.uuids(), value=st.binary(max_size=256))
def test_round_trip_for_any_customer(customer: uuid.UUID, value: bytes) -> None:
    """A customer's own key opens what it sealed, whatever the customer id."""
    key = DataKey(customer, 1, KEY)
    assert value == key.decrypt(key.encrypt(value, field="email"), field="email")


@given(value=st.binary(max_size=256), field=fields, record_id=record_ids)
def test_same_value_encrypts_differently(
    value: bytes, field: str, record_id: uuid.UUID | None
) -> None:
    """Two encryptions of one value differ (fresh random nonce) and both open."""
    key = DataKey(CUSTOMER, 1, KEY)
    first = key.encrypt(value, field=field, record_id=record_id)
    second = key.encrypt(value, field=field, record_id=record_id)
    assert first != second
    assert first[5:17] != second[5:17]
    assert [value, value] == [
        key.decrypt(t, field=field, record_id=record_id) for t in (first, second)
    ]


def test_a_fresh_data_key_object_opens_tokens_of_another_with_the_same_key() -> None:
    """Tokens depend on the key bytes and context only, not on the DataKey instance."""
    token = DataKey(CUSTOMER, 3, KEY).encrypt_text("Ren\u00e9e", field="first_name")
    assert DataKey(CUSTOMER, 3, KEY).decrypt_text(token, field="first_name") == "Ren\u00e9e"
