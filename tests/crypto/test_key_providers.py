"""The key provider interface: what a keyring file names, derivation labels, the PIN
setting, and the page and webhook secrets of a PKCS#11 token."""

# ruff: noqa: SIM300 - assertions read `expected == actual`.

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hsm import HsmToken
from vault.config import ConfigError, Settings
from vault.crypto import FileKeyProvider, Keyring, KeyringError, keyring_source
from vault.crypto.pages import PageSecrets
from vault.crypto.webhooks import WebhookSecrets


def _write(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    return path


@pytest.fixture
def token_ring(tmp_path: Path, hsm_token: HsmToken) -> Iterator[Keyring]:
    ring, _ = Keyring.create_pkcs11(
        tmp_path / "hsm" / "keyring.json",
        module=hsm_token.module,
        token=hsm_token.label,
        pin=hsm_token.pin,
        population=1_000_000,
    )
    yield ring
    ring.close()


def test_a_key_file_names_the_file_provider(tmp_path: Path) -> None:
    """A keyring file without a provider entry is a key file (every earlier release)."""
    path = tmp_path / "keyring.json"
    Keyring.create(path, population=1_000)
    assert "file" == keyring_source(path).provider
    assert isinstance(Keyring.open(path).provider, FileKeyProvider)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"format": 1, "provider": "kms"}, "unknown key provider"),
        ({"format": 1, "provider": "pkcs11", "token": "t"}, "names no PKCS#11 module"),
        ({"format": 1, "provider": "pkcs11", "module": "/m.so", "token": ""}, "names no"),
        ([1, 2], "unknown key provider"),
    ],
)
def test_a_keyring_file_naming_no_usable_provider_is_refused(
    tmp_path: Path, data: object, message: str
) -> None:
    """An unknown provider or a PKCS#11 entry without module and token raises
    KeyringError naming the file, before anything is loaded."""
    path = _write(tmp_path / "keyring.json", data)
    with pytest.raises(KeyringError, match=message):
        Keyring.open(path)


def test_the_file_provider_refuses_a_token_keyring_file(tmp_path: Path) -> None:
    """FileKeyProvider does not take a file that names a token for a key file."""
    path = _write(
        tmp_path / "keyring.json",
        {"format": 1, "provider": "pkcs11", "module": "/m.so", "token": "t"},
    )
    with pytest.raises(KeyringError, match="another key provider"):
        FileKeyProvider(path)


@pytest.mark.parametrize(
    "label", [b"", b"cvault/blind-index/v1/email", b"cvault/blind-index/v2/anything"]
)
def test_no_derived_secret_stands_in_for_the_blind_index_key(tmp_path: Path, label: bytes) -> None:
    """The key file's derivation shares the blind-index key, so the labels under which
    the blind indexes derive their per-field keys are refused (and the empty label)."""
    ring = Keyring.create(tmp_path / "keyring.json", population=1_000)
    with pytest.raises(KeyringError):
        ring.provider.derive_secret(label)


def test_the_pin_setting_is_read_from_the_environment_and_never_shown() -> None:
    """CVAULT_PKCS11_PIN fills Settings.pkcs11_pin, which repr leaves out; a PIN with a
    control character is refused without echoing it."""
    settings = Settings.from_env({"CVAULT_PKCS11_PIN": "s3cret-PIN-42"})
    assert "s3cret-PIN-42" == settings.pkcs11_pin
    assert "s3cret-PIN-42" not in repr(settings)
    assert Settings.from_env({}).pkcs11_pin is None
    with pytest.raises(ConfigError) as bad:
        Settings.from_env({"CVAULT_PKCS11_PIN": "bad\npin-77"})
    assert "CVAULT_PKCS11_PIN" in str(bad.value)
    assert "pin-77" not in str(bad.value)


def test_a_token_keyring_without_a_pin_says_which_setting(
    token_ring: Keyring, tmp_path: Path
) -> None:
    """Opening a token's keyring without a PIN raises KeyringError naming the variable."""
    token_ring.close()
    with pytest.raises(KeyringError, match="CVAULT_PKCS11_PIN"):
        Keyring.open(tmp_path / "hsm" / "keyring.json")


def test_page_and_webhook_secrets_come_from_the_token(
    token_ring: Keyring, tmp_path: Path, hsm_token: HsmToken
) -> None:
    """With a token, sign-in code digests, CSRF MACs and webhook secrets are the same from
    every keyring opened on it, and differ from a key file's."""
    challenge, hook = uuid.UUID(int=7), uuid.UUID(int=9)
    again = Keyring.open(tmp_path / "hsm" / "keyring.json", pin=hsm_token.pin)
    file_ring = Keyring.create(tmp_path / "file" / "keyring.json", population=1_000)
    try:
        outputs = [
            (
                PageSecrets.of(ring.provider).code_digest(challenge, "12345678"),
                PageSecrets.of(ring.provider).mac("csrf", "browser/1"),
                WebhookSecrets.of(ring.provider).secret(hook, 1),
            )
            for ring in (token_ring, again, file_ring)
        ]
    finally:
        again.close()
    assert outputs[0] == outputs[1]
    assert all(a != b for a, b in zip(outputs[0], outputs[2], strict=True))
    assert outputs[0][2].startswith("whsec_")


def test_threads_share_the_token_safely(token_ring: Keyring) -> None:
    """Blind indexes, wraps and unwraps from four threads at once give what one thread
    gives: the provider serialises its calls into the module."""
    values = [f"thread.{i}@example.com" for i in range(60)]
    expected = [token_ring.blind_indexer.index("email", v) for v in values]
    results: dict[int, list[int]] = {}
    failures: list[BaseException] = []

    def work(n: int) -> None:
        try:
            cid = uuid.UUID(int=n + 1)
            for _ in range(5):
                key, wrapped = token_ring.new_data_key(cid)
                token = key.encrypt_text("ok", field="first_name")
                opened = token_ring.open_data_key(cid, 1, wrapped)
                assert "ok" == opened.decrypt_text(token, field="first_name")
            results[n] = [token_ring.blind_indexer.index("email", v) for v in values]
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [] == failures
    assert dict.fromkeys(range(4), expected) == results
