"""The PKCS#11 key provider on SoftHSM2: keys are made in the token and never leave it.

Each test gets a token of its own (tests/hsm.py). Data keys are sealed inside the token
with AES-GCM bound to customer, key id and KEK version; the blind-index MAC and derived
secrets are HMACs computed by the token.
"""

# ruff: noqa: SIM300 - assertions read `expected == actual`.

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pkcs11
import pytest
from pkcs11 import Attribute, KeyType, ObjectClass, SecretKey
from pkcs11.exceptions import AttributeSensitive, KeyUnextractable

from tests.hsm import HsmToken
from vault.crypto import (
    DecryptionError,
    KeyProvider,
    Keyring,
    KeyringError,
    WrappedKey,
    keyring_source,
)

CUSTOMER = uuid.UUID("5eed0000-0000-4000-8000-000000000001")
OTHER = uuid.UUID("5eed0000-0000-4000-8000-000000000002")
TOKEN_KEYS = ("cvault-kek-1", "cvault-blind-index", "cvault-derive")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "keyring.json"


@pytest.fixture
def ring(path: Path, hsm_token: HsmToken) -> Iterator[Keyring]:
    """A keyring whose keys were just made in the test's token."""
    made, created = Keyring.create_pkcs11(
        path,
        module=hsm_token.module,
        token=hsm_token.label,
        pin=hsm_token.pin,
        population=1_000_000,
    )
    assert created
    yield made
    made.close()


def _token_keys(token: HsmToken) -> Iterator[tuple[str, SecretKey]]:
    """The vault's keys as another session of this process sees them (logged in already)."""
    lib = pkcs11.lib(token.module)
    with lib.get_token(token_label=token.label).open() as session:
        for obj in session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY}):
            assert isinstance(obj, SecretKey)
            yield str(obj[Attribute.LABEL]), obj


def test_a_data_key_round_trips_through_the_token(ring: Keyring) -> None:
    """A fresh data key wrapped in the token opens again and decrypts what it sealed."""
    key, wrapped = ring.new_data_key(CUSTOMER)
    token = key.encrypt_text("مریم Ñandú 王秀英", field="first_name")
    opened = ring.open_data_key(CUSTOMER, 1, wrapped)
    assert "مریم Ñandú 王秀英" == opened.decrypt_text(token, field="first_name")
    assert (1, 65, 0x02) == (wrapped.kek_version, len(wrapped.blob), wrapped.blob[0])


def test_the_keyring_file_names_the_token_and_holds_no_key(
    ring: Keyring, path: Path, hsm_token: HsmToken
) -> None:
    """The file says which module and token; the keys are in the token only."""
    source = keyring_source(path)
    assert ("pkcs11", hsm_token.module, hsm_token.label) == (
        source.provider,
        source.module,
        source.token,
    )
    text = path.read_text(encoding="utf-8")
    assert "key" not in text.replace("keyring", "")
    assert 0o600 == path.stat().st_mode & 0o777


@pytest.mark.parametrize(
    "change",
    ["customer", "key id", "recorded version", "blob version", "tampered"],
)
def test_a_wrapped_key_opens_only_where_it_was_bound(ring: Keyring, change: str) -> None:
    """Customer id, key id and KEK version are bound as AES-GCM associated data inside
    the token: any change raises the one DecryptionError."""
    _, wrapped = ring.new_data_key(CUSTOMER)
    customer, key_id, blob, version = CUSTOMER, 1, bytearray(wrapped.blob), 1
    if change == "customer":
        customer = OTHER
    elif change == "key id":
        key_id = 2
    elif change == "recorded version":
        version = 2
    elif change == "blob version":
        blob[0] = 0x01
    else:
        blob[-1] ^= 0x01
    with pytest.raises(DecryptionError):
        ring.provider.unwrap(customer, key_id, WrappedKey(version, bytes(blob)))


def test_no_key_can_be_read_out_of_the_token(ring: Keyring, hsm_token: HsmToken) -> None:
    """Every key was generated in the token, is sensitive, never extractable: reading its
    value fails, and so does wrapping it out with another key."""
    found = dict(_token_keys(hsm_token))
    assert set(TOKEN_KEYS) == set(found)
    lib = pkcs11.lib(hsm_token.module)
    with lib.get_token(token_label=hsm_token.label).open() as session:
        outside = session.generate_key(KeyType.AES, 256, label="outside", store=False)
        for label in TOKEN_KEYS:
            key = session.get_key(ObjectClass.SECRET_KEY, label=label)
            flags = key.get_attributes(
                [
                    Attribute.EXTRACTABLE,
                    Attribute.NEVER_EXTRACTABLE,
                    Attribute.SENSITIVE,
                    Attribute.ALWAYS_SENSITIVE,
                    Attribute.LOCAL,
                    Attribute.MODIFIABLE,
                ]
            )
            assert [False, True, True, True, True, False] == list(flags.values()), label
            with pytest.raises(AttributeSensitive):
                key[Attribute.VALUE]
            assert isinstance(outside, pkcs11.WrapMixin)
            with pytest.raises(KeyUnextractable):
                outside.wrap_key(key)


def test_rotation_makes_a_new_version_in_the_token(ring: Keyring, hsm_token: HsmToken) -> None:
    """Rotate makes cvault-kek-2 current; an older wrapped key still opens and re-wraps
    under version 2; once version 1 is retired, only the re-wrapped key opens."""
    _, old = ring.new_data_key(CUSTOMER)
    assert 2 == ring.rotate()
    assert (2, [1, 2]) == (ring.current_version(), ring.versions())
    assert "cvault-kek-2" in dict(_token_keys(hsm_token))
    rewrapped = ring.rewrap(CUSTOMER, 1, old)
    assert 2 == rewrapped.kek_version
    ring.retire(1)
    assert [2] == ring.versions()
    with pytest.raises(DecryptionError):
        ring.open_data_key(CUSTOMER, 1, old)
    assert CUSTOMER == ring.open_data_key(CUSTOMER, 1, rewrapped).customer_id
    with pytest.raises(KeyringError):
        ring.retire(2)


def test_a_rotation_in_another_process_is_seen_at_once(
    ring: Keyring, path: Path, hsm_token: HsmToken
) -> None:
    """The current version is the token's highest: a server wraps under the version an
    operator's `cvault keys rotate` made in another process, without reopening."""
    script = (
        "import sys; from pathlib import Path; from vault.crypto import Keyring\n"
        "ring = Keyring.open(Path(sys.argv[1]), pin=sys.stdin.read())\n"
        "print(ring.rotate()); ring.close()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        input=hsm_token.pin,
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert "2" == done.stdout.strip()
    _, wrapped = ring.new_data_key(CUSTOMER)
    assert 2 == wrapped.kek_version


def test_another_keyring_wraps_under_the_new_version_once_rotate_returns(
    ring: Keyring, path: Path, hsm_token: HsmToken
) -> None:
    """Each process looks for a newer version at most once a second; rotate returns a
    second after making it, so a keyring that wrapped under version 1 just before wraps
    under version 2 right after."""
    server = Keyring.open(path, pin=hsm_token.pin)
    try:
        assert 1 == server.new_data_key(CUSTOMER)[1].kek_version
        assert 2 == ring.rotate()
        assert 2 == server.new_data_key(CUSTOMER)[1].kek_version
    finally:
        server.close()


def test_retire_looks_at_the_token_not_a_stale_view(ring: Keyring, hsm_token: HsmToken) -> None:
    """A version made in the token a moment ago (this process may still wrap under 1 for
    up to a second) is the current one: retire refuses it, whatever this process saw."""
    assert 1 == ring.current_version()
    lib = pkcs11.lib(hsm_token.module)
    with lib.get_token(token_label=hsm_token.label).open(rw=True) as session:
        session.generate_key(
            KeyType.AES,
            256,
            id=b"cvault-kek",
            label="cvault-kek-2",
            store=True,
            template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False},
        )
    with pytest.raises(KeyringError, match="current"):
        ring.retire(2)
    assert [1, 2] == ring.versions()


def test_blind_indexes_are_the_tokens_and_deterministic(
    ring: Keyring, path: Path, hsm_token: HsmToken, tmp_path: Path
) -> None:
    """The same value gives the same index from any provider on the token; fields are
    kept apart; a key file (another secret) gives other indexes."""
    values = [f"user{i}@example.com" for i in range(40)]
    ours = [ring.blind_indexer.index("email", v) for v in values]
    again = Keyring.open(path, pin=hsm_token.pin)
    try:
        assert ours == [again.blind_indexer.index("email", v) for v in values]
        assert ring.blind_indexer.pseudonym("audit.client", "10.0.0.1") == (
            again.blind_indexer.pseudonym("audit.client", "10.0.0.1")
        )
    finally:
        again.close()
    assert 18 == ring.blind_indexer.bits
    assert all(0 <= i < 2**18 for i in ours)
    phone = [ring.blind_indexer.index("phone", v) for v in values]
    assert ours != phone
    file_ring = Keyring.create(tmp_path / "file" / "keyring.json", population=1_000_000)
    theirs = [file_ring.blind_indexer.index("email", v) for v in values]
    assert sum(a == b for a, b in zip(ours, theirs, strict=True)) < 5


def test_derived_secrets_come_from_the_token(ring: Keyring) -> None:
    """A derived secret is stable per label, differs across labels, and no label under
    cvault/blind-index/ is served (it could stand in for the blind indexes' key)."""
    provider = ring.provider
    first = provider.derive_secret(b"cvault/pages/v1/")
    assert first == provider.derive_secret(b"cvault/pages/v1/")
    assert 32 == len(first)
    assert first != provider.derive_secret(b"cvault/webhook/v1/x/1")
    with pytest.raises(KeyringError):
        provider.derive_secret(b"cvault/blind-index/v1/email")
    with pytest.raises(KeyringError):
        provider.derive_secret(b"")


def test_shredding_refuses_the_key_for_good(ring: Keyring, path: Path) -> None:
    """A shredded customer's wrapped key is refused, by this provider and a new one."""
    _, wrapped = ring.new_data_key(CUSTOMER)
    _, kept = ring.new_data_key(OTHER)
    ring.shred(CUSTOMER)
    with pytest.raises(DecryptionError):
        ring.open_data_key(CUSTOMER, 1, wrapped)
    assert {CUSTOMER} == ring.shredded([CUSTOMER, OTHER])
    assert path.with_name("keyring.shredded.list").exists()
    assert OTHER == ring.open_data_key(OTHER, 1, kept).customer_id


def test_the_provider_implements_the_protocol(ring: Keyring) -> None:
    """Pkcs11KeyProvider is a KeyProvider: wrap, unwrap, MACs, derivation, shredding."""
    assert isinstance(ring.provider, KeyProvider)


def test_a_second_host_keeps_the_tokens_keys(
    ring: Keyring, hsm_token: HsmToken, tmp_path: Path
) -> None:
    """Making a keyring on a token that holds the vault's keys makes none: another host
    (its own keyring file) then wraps, unwraps and indexes as the first."""
    _, wrapped = ring.new_data_key(CUSTOMER)
    other, made = Keyring.create_pkcs11(
        tmp_path / "host2" / "keyring.json",
        module=hsm_token.module,
        token=hsm_token.label,
        pin=hsm_token.pin,
        population=1_000,  # ignored: the token's recorded bits hold
    )
    try:
        assert not made
        assert 18 == other.blind_indexer.bits
        assert CUSTOMER == other.open_data_key(CUSTOMER, 1, wrapped).customer_id
        assert ring.blind_indexer.index("email", "a@b.c") == other.blind_indexer.index(
            "email", "a@b.c"
        )
    finally:
        other.close()


def test_an_unknown_token_or_module_is_a_clear_error(hsm_token: HsmToken, tmp_path: Path) -> None:
    """A label no token has, or a module that does not load, raises KeyringError."""
    with pytest.raises(KeyringError, match="is not in"):
        Keyring.create_pkcs11(
            tmp_path / "a.json",
            module=hsm_token.module,
            token="no-such-token",
            pin=hsm_token.pin,
            population=1_000_000,
        )
    with pytest.raises(KeyringError, match="cannot be loaded"):
        Keyring.create_pkcs11(
            tmp_path / "b.json",
            module=str(tmp_path / "missing.so"),
            token=hsm_token.label,
            pin=hsm_token.pin,
            population=1_000_000,
        )
    assert not (tmp_path / "a.json").exists()


def test_a_closed_provider_refuses_work(path: Path, hsm_token: HsmToken) -> None:
    """After close, calls raise KeyringError; closing twice is harmless."""
    ring, _ = Keyring.create_pkcs11(
        path,
        module=hsm_token.module,
        token=hsm_token.label,
        pin=hsm_token.pin,
        population=1_000_000,
    )
    ring.close()
    ring.close()
    with pytest.raises(KeyringError):
        ring.new_data_key(CUSTOMER)
