"""Blind indexes: deterministic, per-field, short, and keyed."""

# ruff: noqa: SIM300 - assertions read `expected == actual`.

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.crypto import BlindIndexer

ROOT = bytes(range(32))
OTHER_ROOT = bytes(range(1, 33))


def _reference(root: bytes, bits: int, field: str, value: str) -> int:
    """The documented construction, written out independently."""
    subkey = hmac.new(root, b"cvault/blind-index/v1/" + field.encode(), hashlib.sha256).digest()
    digest = hmac.new(subkey, value.encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") >> (64 - bits)


@pytest.mark.parametrize("bits", [1, 8, 18, 32, 63])
@pytest.mark.parametrize(
    ("field", "value"),
    [("email", "ada@example.com"), ("phone", "+4915112345678"), ("email", "")],
)
def test_index_is_truncated_hmac_of_a_per_field_subkey(bits: int, field: str, value: str) -> None:
    """index = top ``bits`` bits of HMAC-SHA256(HMAC-SHA256(root, tag || field), value)."""
    assert _reference(ROOT, bits, field, value) == BlindIndexer.local(ROOT, bits).index(
        field, value
    )


def test_known_answer() -> None:
    """Pinned values: stored indexes must not change between releases."""
    assert 7546156141282646361 == BlindIndexer.local(ROOT, 63).index("email", "ada@example.com")
    assert 214474 == BlindIndexer.local(ROOT, 18).index("email", "ada@example.com")
    assert 210021 == BlindIndexer.local(ROOT, 18).index("phone", "+4915112345678")
    assert 18 == BlindIndexer.local(ROOT, 18).bits


@given(field=st.text(max_size=32), value=st.text(max_size=200))
def test_index_is_deterministic(field: str, value: str) -> None:
    """The same key, field and value give the same index, across indexer instances and
    repeated calls (the cached per-field HMAC state is never consumed)."""
    first = BlindIndexer.local(ROOT, 18)
    second = BlindIndexer.local(ROOT, 18)
    expected = first.index(field, value)
    assert [expected, expected, expected] == [
        first.index(field, value),
        second.index(field, value),
        first.index(field, value),
    ]


def test_index_differs_across_fields() -> None:
    """One value indexed under two fields gives unrelated indexes (separate sub-keys)."""
    indexer = BlindIndexer.local(ROOT, 63)
    values = ["ada@example.com", "+4915112345678", "x"]
    email = [indexer.index("email", v) for v in values]
    phone = [indexer.index("phone", v) for v in values]
    assert [False, False, False] == [a == b for a, b in zip(email, phone, strict=True)]


def test_field_and_value_are_not_concatenated() -> None:
    """Moving characters between field name and value changes the index."""
    indexer = BlindIndexer.local(ROOT, 63)
    assert indexer.index("email", "x@y.z") != indexer.index("emailx", "@y.z")


@given(
    bits=st.integers(min_value=1, max_value=63),
    field=st.text(max_size=16),
    value=st.text(max_size=64),
)
def test_index_fits_in_bits(bits: int, field: str, value: str) -> None:
    """An index is a non-negative integer below 2**bits (fits a signed BIGINT)."""
    index = BlindIndexer.local(ROOT, bits).index(field, value)
    assert 0 <= index < 2**bits
    assert index < 2**63


def test_bits_truncate_the_same_digest() -> None:
    """A shorter index is the prefix of a longer one (the top bits of one digest)."""
    long = BlindIndexer.local(ROOT, 63).index("email", "ada@example.com")
    assert long >> (63 - 18) == BlindIndexer.local(ROOT, 18).index("email", "ada@example.com")


def test_different_keys_give_different_indexes() -> None:
    """Another blind-index key gives other indexes (fixed keys and 63 bits: deterministic)."""
    values = [f"user{i}@example.com" for i in range(20)]
    ours = [BlindIndexer.local(ROOT, 63).index("email", v) for v in values]
    theirs = [BlindIndexer.local(OTHER_ROOT, 63).index("email", v) for v in values]
    assert [] == [v for v, a, b in zip(values, ours, theirs, strict=True) if a == b]


def test_distinct_values_spread_over_the_index_space() -> None:
    """With 8 bits, 2,000 values hit well over 200 of the 256 possible indexes."""
    indexer = BlindIndexer.local(ROOT, 8)
    hit = {indexer.index("email", f"user{i}@example.com") for i in range(2000)}
    assert 256 == len(hit | set(range(256)))
    assert len(hit) > 200


@pytest.mark.parametrize("bits", [0, -1, 64, 128])
def test_bits_out_of_range_are_refused(bits: int) -> None:
    """Indexes have 1 to 63 bits."""
    with pytest.raises(ValueError, match="between 1 and 63"):
        BlindIndexer.local(ROOT, bits)
