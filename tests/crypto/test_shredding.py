"""The keyring's shred list: an erased customer's wrapped data key is refused for good."""

# ruff: noqa: SIM300 - assertions read `expected == actual`.

from __future__ import annotations

import os
import stat
import uuid
from pathlib import Path

import pytest

from vault.crypto import (
    DecryptionError,
    FileKeyProvider,
    KeyProvider,
    Keyring,
    KeyringError,
    shred_list_path,
)

ERASED = uuid.UUID("0b5e7a11-0000-4000-8000-00000000e1a5")
KEPT = uuid.UUID("0b5e7a11-0000-4000-8000-0000000000cc")
DATA_KEY = bytes(range(32))


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "keyring.json"


@pytest.fixture
def provider(path: Path) -> FileKeyProvider:
    return FileKeyProvider.create(path, population=1_000_000)


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_shred_then_unwrap_raises(provider: FileKeyProvider) -> None:
    """Once a customer is shredded, unwrapping its (intact) wrapped key fails with the one
    DecryptionError; another customer's key still opens."""
    wrapped = provider.wrap(ERASED, 1, DATA_KEY)
    kept = provider.wrap(KEPT, 1, DATA_KEY)
    assert DATA_KEY == provider.unwrap(ERASED, 1, wrapped)
    provider.shred(ERASED)
    with pytest.raises(DecryptionError):
        provider.unwrap(ERASED, 1, wrapped)
    assert DATA_KEY == provider.unwrap(KEPT, 1, kept)


def test_another_provider_on_the_same_path_sees_the_shred(path: Path) -> None:
    """A second provider (another process) that loaded the keyring before the shred
    refuses the key on its next unwrap, without being told to reload."""
    server = FileKeyProvider.create(path, population=1_000_000)
    admin = FileKeyProvider(path)
    wrapped = server.wrap(ERASED, 1, DATA_KEY)
    assert DATA_KEY == server.unwrap(ERASED, 1, wrapped)
    admin.shred(ERASED)
    with pytest.raises(DecryptionError):
        server.unwrap(ERASED, 1, wrapped)
    assert {ERASED} == server.shredded([ERASED, KEPT])


def test_shred_list_is_owner_only_beside_the_keyring(path: Path, provider: FileKeyProvider) -> None:
    """The shred list is created on first use, beside the keyring, with mode 0600; a new
    keyring has none."""
    target = shred_list_path(path)
    assert path.parent / "keyring.shredded.list" == target
    assert not target.exists()
    provider.shred(ERASED)
    assert 0o600 == _mode(target)
    assert f"{ERASED}\n" == target.read_text()


def test_shredding_twice_writes_one_line(path: Path, provider: FileKeyProvider) -> None:
    """Shredding is idempotent: the id is on the list once."""
    provider.shred(ERASED)
    provider.shred(ERASED)
    FileKeyProvider(path).shred(ERASED)
    assert [str(ERASED)] == shred_list_path(path).read_text().split()


def test_keyring_shred_and_shredded(path: Path) -> None:
    """Keyring.shred and Keyring.shredded go through the provider: the key of a shredded
    customer no longer opens through the keyring either."""
    ring = Keyring.create(path, population=1_000_000)
    _key, wrapped = ring.new_data_key(ERASED)
    ring.shred(ERASED)
    assert {ERASED} == ring.shredded([ERASED, KEPT])
    with pytest.raises(DecryptionError):
        ring.open_data_key(ERASED, 1, wrapped)


def test_the_provider_protocol_has_shredding(provider: FileKeyProvider) -> None:
    """FileKeyProvider still implements the KeyProvider protocol, now with shred/shredded."""
    assert isinstance(provider, KeyProvider)
    assert {"shred", "shredded"} <= set(dir(KeyProvider))


def test_a_group_readable_shred_list_is_refused(path: Path, provider: FileKeyProvider) -> None:
    """A shred list that group or others can read stops the keyring (as the key file does):
    neither reading nor appending goes on."""
    provider.shred(ERASED)
    shred_list_path(path).chmod(0o640)
    with pytest.raises(KeyringError, match="chmod 600"):
        FileKeyProvider(path).shredded([ERASED])
    with pytest.raises(KeyringError, match="chmod 600"):
        provider.shred(KEPT)


def test_a_symlinked_shred_list_is_refused(path: Path, provider: FileKeyProvider) -> None:
    """The shred list is never followed through a symlink (no redirection to another file)."""
    elsewhere = path.parent / "elsewhere.list"
    elsewhere.write_text("")
    elsewhere.chmod(0o600)
    shred_list_path(path).symlink_to(elsewhere)
    with pytest.raises(KeyringError):
        provider.shred(ERASED)
    with pytest.raises(KeyringError):
        provider.shredded([ERASED])
    assert "" == elsewhere.read_text()


def test_a_line_torn_by_a_crash_is_closed_and_the_list_still_reads(
    path: Path, provider: FileKeyProvider
) -> None:
    """A crash mid-append leaves a UUID prefix without a newline (its erasure never
    committed). The next shred starts on a fresh line and every whole id is honoured."""
    target = shred_list_path(path)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, f"{KEPT}\n{ERASED}"[:50].encode())
    os.close(fd)
    provider.shred(ERASED)
    assert {KEPT, ERASED} == FileKeyProvider(path).shredded([KEPT, ERASED])
    assert [str(KEPT), str(ERASED)[:13], str(ERASED)] == target.read_text().split("\n")[:-1]


def test_a_damaged_shred_list_is_refused_naming_the_line(
    path: Path, provider: FileKeyProvider
) -> None:
    """A line that is neither an id nor a torn id prefix means the file was damaged or
    edited: the keyring refuses to guess, and names the line, not its content."""
    target = shred_list_path(path)
    provider.shred(KEPT)
    with target.open("a") as fh:
        fh.write("somebody wrote this\n")
    with pytest.raises(KeyringError, match="line 2 is not a customer id") as caught:
        FileKeyProvider(path).shredded([KEPT])
    assert "somebody" not in str(caught.value)
