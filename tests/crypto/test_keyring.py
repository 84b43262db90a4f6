"""The file keyring: permissions, creation, rotation, re-wrapping, retirement, reloading."""

# ruff: noqa: SIM300 - assertions read `expected == actual`.

from __future__ import annotations

import base64
import json
import os
import stat
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.crypto import (
    DecryptionError,
    FileKeyProvider,
    KeyProvider,
    Keyring,
    KeyringError,
    WrappedKey,
    blind_index_bits,
)

CUSTOMER = uuid.UUID("4e9fbf32-1234-4567-89ab-cdef01234567")
OTHER_CUSTOMER = uuid.UUID("4e9fbf32-1234-4567-89ab-cdef01234568")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "keyring.json"


@pytest.fixture
def ring(path: Path) -> Keyring:
    return Keyring.create(path, population=1_000_000)


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


# -- creation and permissions --------------------------------------------------


def test_create_writes_owner_only_file_in_owner_only_directory(path: Path) -> None:
    """A new keyring file has mode 0600 and its directory mode 0700."""
    Keyring.create(path, population=1_000_000)
    assert 0o600 == _mode(path)
    assert 0o700 == _mode(path.parent)


def test_create_tightens_an_existing_directory(tmp_path: Path) -> None:
    """Creating a keyring in an existing, wider directory narrows the directory to 0700."""
    directory = tmp_path / "keys"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    Keyring.create(directory / "keyring.json", population=1_000_000)
    assert 0o700 == _mode(directory)


def test_create_leaves_no_temporary_file(path: Path) -> None:
    """After creation the directory holds the keyring file only."""
    Keyring.create(path, population=1_000_000)
    assert ["keyring.json"] == sorted(p.name for p in path.parent.iterdir())


def test_new_keyring_starts_at_version_one(ring: Keyring) -> None:
    """A new keyring holds one key-encryption key, version 1, which is current."""
    assert (1, [1]) == (ring.current_version(), ring.versions())


def test_new_keyring_file_content(path: Path) -> None:
    """The file records format 1, the current version, 32-byte keys in base64 and the
    blind index bits derived from the population."""
    Keyring.create(path, population=1_000_000)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert (1, 1, ["1"]) == (data["format"], data["current"], sorted(data["keks"]))
    assert 32 == len(base64.b64decode(data["keks"]["1"]["key"]))
    assert 32 == len(base64.b64decode(data["blind_index"]["key"]))
    assert (18, 1_000_000) == (data["blind_index"]["bits"], data["blind_index"]["population"])


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o601, 0o610, 0o700 | 0o040])
def test_opening_a_file_readable_by_others_is_refused(path: Path, mode: int) -> None:
    """A keyring file with any group or other permission bit set is refused."""
    Keyring.create(path, population=1_000_000)
    path.chmod(mode)
    with pytest.raises(KeyringError):
        Keyring.open(path)


def test_opening_a_0400_file_is_allowed(path: Path) -> None:
    """Owner-only modes narrower than 0600 are fine."""
    Keyring.create(path, population=1_000_000)
    path.chmod(0o400)
    assert [1] == Keyring.open(path).versions()


def test_opening_a_missing_file_is_a_keyring_error(path: Path) -> None:
    """A missing keyring file is a KeyringError, not a FileNotFoundError."""
    with pytest.raises(KeyringError):
        Keyring.open(path)


def test_create_refuses_to_overwrite(path: Path) -> None:
    """Creating a keyring where one exists fails and leaves the existing file untouched."""
    Keyring.create(path, population=1_000_000)
    before = path.read_bytes()
    with pytest.raises(KeyringError):
        Keyring.create(path, population=1_000_000)
    assert before == path.read_bytes()


def test_create_rejects_a_tiny_population(path: Path) -> None:
    """A population below twice the coincidence (4 rows) cannot size a blind index."""
    with pytest.raises(KeyringError):
        Keyring.create(path, population=3)
    assert not path.exists()


def test_file_provider_is_a_key_provider(path: Path) -> None:
    """FileKeyProvider implements the KeyProvider protocol."""
    assert isinstance(FileKeyProvider.create(path, population=10), KeyProvider)


# -- wrapping ------------------------------------------------------------------


def test_new_data_key_is_wrapped_under_the_current_version(ring: Keyring) -> None:
    """A new data key is wrapped under the current KEK and opens to the same key."""
    key, wrapped = ring.new_data_key(CUSTOMER)
    assert (CUSTOMER, 1, 1) == (key.customer_id, key.key_id, wrapped.kek_version)
    token = key.encrypt_text("ada@example.com", field="email")
    opened = ring.open_data_key(CUSTOMER, 1, wrapped)
    assert "ada@example.com" == opened.decrypt_text(token, field="email")


def test_new_data_keys_are_distinct(ring: Keyring) -> None:
    """Each new data key is random: a second key does not open the first one's tokens."""
    first, _ = ring.new_data_key(CUSTOMER)
    second, _ = ring.new_data_key(CUSTOMER)
    token = first.encrypt(b"x", field="email")
    with pytest.raises(DecryptionError):
        second.decrypt(token, field="email")


@pytest.mark.parametrize(
    ("customer_id", "key_id"), [(OTHER_CUSTOMER, 1), (CUSTOMER, 2)], ids=["customer", "key-id"]
)
def test_wrapped_key_is_bound_to_customer_and_key_id(
    ring: Keyring, customer_id: uuid.UUID, key_id: int
) -> None:
    """A wrapped data key opens only for the customer and key id it was wrapped for."""
    _, wrapped = ring.new_data_key(CUSTOMER)
    with pytest.raises(DecryptionError):
        ring.open_data_key(customer_id, key_id, wrapped)


def test_wrapped_key_with_mismatched_version_is_refused(ring: Keyring) -> None:
    """A WrappedKey whose recorded version differs from its blob header is refused."""
    ring.rotate()
    _, wrapped = ring.new_data_key(CUSTOMER)
    with pytest.raises(DecryptionError):
        ring.open_data_key(CUSTOMER, 1, WrappedKey(1, wrapped.blob))


@pytest.mark.parametrize("position", [0, 1, 4, 5, 16, 17, 48, 64])
def test_tampered_wrapped_key_is_refused(ring: Keyring, position: int) -> None:
    """Changing any byte of a wrapped data key makes it fail to open."""
    _, wrapped = ring.new_data_key(CUSTOMER)
    blob = bytearray(wrapped.blob)
    blob[position] ^= 0x80
    with pytest.raises(DecryptionError):
        ring.open_data_key(CUSTOMER, 1, WrappedKey(wrapped.kek_version, bytes(blob)))


@pytest.mark.parametrize("length", [0, 1, 4, 5, 20, 64])
def test_truncated_wrapped_key_is_refused(ring: Keyring, length: int) -> None:
    """A truncated wrapped data key fails to open with DecryptionError."""
    _, wrapped = ring.new_data_key(CUSTOMER)
    with pytest.raises(DecryptionError):
        ring.open_data_key(CUSTOMER, 1, WrappedKey(wrapped.kek_version, wrapped.blob[:length]))


def test_keyring_of_another_file_cannot_unwrap(ring: Keyring, tmp_path: Path) -> None:
    """A data key wrapped by one keyring does not open in another keyring (other KEKs)."""
    other = Keyring.create(tmp_path / "other" / "keyring.json", population=1_000_000)
    _, wrapped = ring.new_data_key(CUSTOMER)
    with pytest.raises(DecryptionError):
        other.open_data_key(CUSTOMER, 1, wrapped)


# -- rotation, re-wrapping, retirement -----------------------------------------


def test_rotate_adds_a_version_and_makes_it_current(ring: Keyring, path: Path) -> None:
    """Rotation adds version n+1, makes it current, and persists it with mode 0600."""
    assert 2 == ring.rotate()
    assert (2, [1, 2]) == (ring.current_version(), ring.versions())
    assert 3 == ring.rotate()
    assert (3, [1, 2, 3]) == (ring.current_version(), ring.versions())
    reopened = Keyring.open(path)
    assert (3, [1, 2, 3]) == (reopened.current_version(), reopened.versions())
    assert 0o600 == _mode(path)
    assert ["keyring.json", "keyring.json.lock"] == sorted(p.name for p in path.parent.iterdir())


def test_rotation_keeps_the_blind_index_key(ring: Keyring, path: Path) -> None:
    """Rotation never changes blind indexes: existing indexes stay searchable."""
    before = ring.blind_indexer.index("email", "ada@example.com")
    ring.rotate()
    assert before == Keyring.open(path).blind_indexer.index("email", "ada@example.com")


def test_keys_wrapped_under_an_old_version_still_open(ring: Keyring) -> None:
    """After rotation, data keys wrapped under the old version still open."""
    key, wrapped = ring.new_data_key(CUSTOMER)
    token = key.encrypt_text("+4915112345678", field="phone")
    ring.rotate()
    _, new_wrapped = ring.new_data_key(OTHER_CUSTOMER)
    assert (1, 2) == (wrapped.kek_version, new_wrapped.kek_version)
    reopened = ring.open_data_key(CUSTOMER, 1, wrapped)
    assert "+4915112345678" == reopened.decrypt_text(token, field="phone")


def test_rewrap_moves_to_the_current_version_and_keeps_the_key(ring: Keyring) -> None:
    """Re-wrapping puts the same data key under the current version: tokens sealed by
    the old key object open with the key unwrapped from the new blob."""
    key, wrapped = ring.new_data_key(CUSTOMER)
    token = key.encrypt_text("Fran\u00e7ois", field="last_name")
    ring.rotate()
    rewrapped = ring.rewrap(CUSTOMER, 1, wrapped)
    assert 2 == rewrapped.kek_version
    assert (2).to_bytes(4, "big") == rewrapped.blob[1:5]
    assert wrapped.blob != rewrapped.blob
    reopened = ring.open_data_key(CUSTOMER, 1, rewrapped)
    assert "Fran\u00e7ois" == reopened.decrypt_text(token, field="last_name")
    again = reopened.encrypt_text("x", field="last_name")
    assert "x" == key.decrypt_text(again, field="last_name")


def test_rewrap_of_a_current_key_is_a_no_op(ring: Keyring) -> None:
    """A key already under the current version is returned as it is."""
    _, wrapped = ring.new_data_key(CUSTOMER)
    assert wrapped == ring.rewrap(CUSTOMER, 1, wrapped)


def test_rewrap_checks_the_binding(ring: Keyring) -> None:
    """Re-wrapping a key under the wrong customer id fails instead of laundering it."""
    _, wrapped = ring.new_data_key(CUSTOMER)
    ring.rotate()
    with pytest.raises(DecryptionError):
        ring.rewrap(OTHER_CUSTOMER, 1, wrapped)


def test_retire_refuses_the_current_version(ring: Keyring, path: Path) -> None:
    """The current KEK cannot be retired, before or after a rotation; the file is kept."""
    before = path.read_bytes()
    with pytest.raises(KeyringError):
        ring.retire(1)
    assert before == path.read_bytes()
    ring.rotate()
    rotated = path.read_bytes()
    with pytest.raises(KeyringError):
        ring.retire(2)
    assert rotated == path.read_bytes()
    assert (2, [1, 2]) == (ring.current_version(), ring.versions())


def test_retire_refuses_an_unknown_version(ring: Keyring) -> None:
    """Retiring a version the keyring does not hold is a KeyringError."""
    ring.rotate()
    with pytest.raises(KeyringError):
        ring.retire(7)
    assert [1, 2] == ring.versions()


def test_retired_version_no_longer_unwraps(ring: Keyring, path: Path) -> None:
    """After retiring a version, a data key still wrapped under it fails with
    DecryptionError, here and in a freshly opened keyring; re-wrapped keys still open."""
    _, old = ring.new_data_key(CUSTOMER)
    _, kept = ring.new_data_key(OTHER_CUSTOMER)
    ring.rotate()
    kept = ring.rewrap(OTHER_CUSTOMER, 1, kept)
    ring.retire(1)
    assert (2, [2]) == (ring.current_version(), ring.versions())
    with pytest.raises(DecryptionError):
        ring.open_data_key(CUSTOMER, 1, old)
    with pytest.raises(DecryptionError):
        Keyring.open(path).open_data_key(CUSTOMER, 1, old)
    with pytest.raises(DecryptionError):
        ring.rewrap(CUSTOMER, 1, old)
    assert CUSTOMER != ring.open_data_key(OTHER_CUSTOMER, 1, kept).customer_id
    assert [2] == Keyring.open(path).versions()
    assert 0o600 == _mode(path)


def test_second_instance_sees_a_rotation_by_another(path: Path) -> None:
    """An instance re-reads the file when another instance (another process) rewrote it,
    so a rotation is picked up before the next wrap or unwrap."""
    FileKeyProvider.create(path, population=1_000_000)
    server = FileKeyProvider(path)
    admin = FileKeyProvider(path)
    assert 2 == admin.rotate()
    key = os.urandom(32)
    wrapped = admin.wrap(CUSTOMER, 1, key)
    assert 2 == wrapped.kek_version
    assert key == server.unwrap(CUSTOMER, 1, wrapped)
    assert (2, [1, 2]) == (server.current_version(), server.versions())


def test_reload_does_not_resurrect_an_unknown_version(path: Path) -> None:
    """A version no instance ever created stays unknown after the reload."""
    provider = FileKeyProvider.create(path, population=1_000_000)
    wrapped = provider.wrap(CUSTOMER, 1, os.urandom(32))
    blob = wrapped.blob[:1] + (9).to_bytes(4, "big") + wrapped.blob[5:]
    with pytest.raises(DecryptionError):
        provider.unwrap(CUSTOMER, 1, WrappedKey(9, blob))


def test_stale_instance_never_wraps_under_a_retired_version(path: Path) -> None:
    """A data key wrapped by a long-lived instance (a server) after another instance
    (``cvault keys rotate --retire-old``) rotated and retired the old version must open
    in a freshly started instance."""
    FileKeyProvider.create(path, population=1_000_000)
    server = FileKeyProvider(path)
    admin = FileKeyProvider(path)
    admin.rotate()
    admin.retire(1)
    key = os.urandom(32)
    wrapped = server.wrap(CUSTOMER, 1, key)
    assert key == FileKeyProvider(path).unwrap(CUSTOMER, 1, wrapped)


# -- malformed files -----------------------------------------------------------


def _good(path: Path) -> dict[str, Any]:
    FileKeyProvider.create(path, population=1_000_000)
    return _read(path)


def _read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)


@pytest.mark.parametrize(
    "text", ["", "{", "{not json", "[1, 2", "\u00ff\u00fe", "null x"], ids=repr
)
def test_malformed_json_is_a_keyring_error(path: Path, text: str) -> None:
    """A keyring file that is not JSON is a KeyringError."""
    _good(path)
    _write(path, text)
    with pytest.raises(KeyringError):
        Keyring.open(path)


@pytest.mark.parametrize("text", ["[]", "null", "1", '"keyring"', "[{}]"])
def test_json_that_is_not_an_object_is_a_keyring_error(path: Path, text: str) -> None:
    """A keyring file holding a JSON array, null, number or string is a KeyringError."""
    _good(path)
    _write(path, text)
    with pytest.raises(KeyringError):
        Keyring.open(path)


def test_non_utf8_file_is_a_keyring_error(path: Path) -> None:
    """A keyring file that is not UTF-8 is a KeyringError."""
    _good(path)
    path.write_bytes(b"\xff\xfe{\x00")
    with pytest.raises(KeyringError):
        Keyring.open(path)


def _set(keys: tuple[str, ...], value: object) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        target = data
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value

    return change


def _drop(keys: tuple[str, ...]) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        target = data
        for k in keys[:-1]:
            target = target[k]
        del target[keys[-1]]

    return change


MALFORMED: dict[str, Callable[[dict[str, Any]], None]] = {
    "format-missing": _drop(("format",)),
    "format-2": _set(("format",), 2),
    "format-string": _set(("format",), "1"),
    "keks-missing": _drop(("keks",)),
    "keks-empty": _set(("keks",), {}),
    "keks-list": _set(("keks",), [1]),
    "current-missing": _drop(("current",)),
    "current-not-held": _set(("current",), 2),
    "current-string": _set(("current",), "1"),
    "kek-key-missing": _drop(("keks", "1", "key")),
    "kek-key-not-base64": _set(("keks", "1", "key"), "not base64!"),
    "kek-key-short": _set(("keks", "1", "key"), base64.b64encode(bytes(16)).decode()),
    "kek-key-number": _set(("keks", "1", "key"), 42),
    "blind-index-missing": _drop(("blind_index",)),
    "blind-index-bits-missing": _drop(("blind_index", "bits")),
    "blind-index-bits-string": _set(("blind_index", "bits"), "18"),
    "blind-index-key-missing": _drop(("blind_index", "key")),
    "blind-index-key-short": _set(("blind_index", "key"), base64.b64encode(bytes(8)).decode()),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_structure_is_a_keyring_error(path: Path, case: str) -> None:
    """Valid JSON of the wrong shape is a KeyringError naming the problem."""
    data = _good(path)
    MALFORMED[case](data)
    _write(path, json.dumps(data))
    with pytest.raises(KeyringError):
        Keyring.open(path)


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            _set(("keks", "one"), {"key": base64.b64encode(bytes(32)).decode()}),
            id="kek-version-not-a-number",
        ),
        pytest.param(_set(("keks", "1"), "a string"), id="kek-entry-not-an-object"),
        pytest.param(_set(("blind_index", "bits"), 0), id="blind-index-bits-0"),
        pytest.param(_set(("blind_index", "bits"), 64), id="blind-index-bits-64"),
    ],
)
def test_malformed_structure_is_a_keyring_error_not_a_crash(
    path: Path, case: Callable[[dict[str, Any]], None]
) -> None:
    """Every malformed keyring, including bad version names, entries and bit counts,
    is reported as a KeyringError (the CLI turns those into a clear message)."""
    data = _good(path)
    case(data)
    _write(path, json.dumps(data))
    with pytest.raises(KeyringError):
        Keyring.open(path)


def test_reload_of_a_broken_file_keeps_raising_keyring_error(path: Path) -> None:
    """If the file breaks after opening, a reload reports KeyringError."""
    provider = FileKeyProvider.create(path, population=1_000_000)
    data = _read(path)
    data["format"] = 99
    _write(path, json.dumps(data))
    with pytest.raises(KeyringError):
        provider.reload()


# -- blind index bits ----------------------------------------------------------


@pytest.mark.parametrize(
    ("population", "bits"),
    [(4, 1), (7, 1), (8, 2), (1_000, 8), (1_000_000, 18), (10**9, 28), (10**12, 38)],
)
def test_blind_index_bits_examples(population: int, bits: int) -> None:
    """CipherSweet's rule on known populations, e.g. one million rows give 18 bits."""
    assert bits == blind_index_bits(population)


@given(population=st.integers(min_value=4, max_value=2**64))
def test_blind_index_bits_keeps_two_rows_per_value(population: int) -> None:
    """bits is the largest L with population / 2**L >= 2, so population / 2**(L+1) < 2."""
    bits = blind_index_bits(population)
    assert population >= 2 * 2**bits
    assert population < 2 * 2 ** (bits + 1)


@given(
    population=st.integers(min_value=2, max_value=2**48),
    coincidence=st.integers(min_value=1, max_value=10_000),
)
def test_blind_index_bits_for_any_coincidence(population: int, coincidence: int) -> None:
    """With a minimum coincidence c: population / 2**L >= c > population / 2**(L+1)."""
    if population < 2 * coincidence:
        with pytest.raises(KeyringError):
            blind_index_bits(population, coincidence)
        return
    bits = blind_index_bits(population, coincidence)
    assert population >= coincidence * 2**bits
    assert population < coincidence * 2 ** (bits + 1)


@pytest.mark.parametrize("population", [-1, 0, 1, 2, 3])
def test_blind_index_bits_refuses_tiny_populations(population: int) -> None:
    """Fewer than four rows cannot keep two rows per value of a 1-bit index."""
    with pytest.raises(KeyringError):
        blind_index_bits(population)


def test_keyring_blind_indexer_uses_the_recorded_bits(path: Path) -> None:
    """The keyring's blind indexer has the bits computed from the population at creation."""
    assert 18 == Keyring.create(path, population=1_000_000).blind_indexer.bits
    assert 8 == Keyring.create(path.with_name("small.json"), population=1_000).blind_indexer.bits
