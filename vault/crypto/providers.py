"""Which key provider a keyring file names, and opening it.

A keyring file without a ``provider`` entry (or with ``"file"``) is a key file
(:class:`~vault.crypto.keyring.FileKeyProvider`); ``"pkcs11"`` names a module and a
token (:mod:`vault.crypto.hsm`). The PKCS#11 binding (python-pkcs11, the ``hsm`` extra)
is imported only when a keyring names a token, so the key file needs nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vault.crypto.errors import KeyringError
from vault.crypto.files import read_private_json
from vault.crypto.keyring import FileKeyProvider, KeyProvider

if TYPE_CHECKING:
    from vault.crypto.hsm import Pkcs11KeyProvider

__all__ = ["KeyringSource", "create_pkcs11_provider", "keyring_source", "open_provider"]

_HSM_MISSING = "the PKCS#11 key provider needs python-pkcs11: pip install 'customer-vault[hsm]'"


@dataclass(frozen=True, slots=True)
class KeyringSource:
    """What holds a keyring's keys: ``file``, or ``pkcs11`` with its module and token."""

    provider: str
    module: str | None = None
    token: str | None = None


def keyring_source(path: Path) -> KeyringSource:
    """What the keyring file at ``path`` names (it is read, no key is opened)."""
    try:
        data = read_private_json(path, "keyring")
    except FileNotFoundError:
        raise KeyringError(f"keyring {path} does not exist; run 'cvault init'") from None
    except OSError as exc:
        raise KeyringError(f"keyring {path} cannot be read ({exc.strerror})") from None
    kind = data.get("provider", "file") if isinstance(data, dict) else None
    if kind == "file":
        return KeyringSource("file")
    if kind == "pkcs11":
        module, token = data.get("module"), data.get("token")
        if isinstance(module, str) and module and isinstance(token, str) and token:
            return KeyringSource("pkcs11", module, token)
        raise KeyringError(f"keyring {path} names no PKCS#11 module and token")
    raise KeyringError(f"keyring {path} names an unknown key provider")


def open_provider(path: Path, *, pin: str | None) -> KeyProvider:
    """The provider the keyring file at ``path`` names, opened."""
    if keyring_source(path).provider == "file":
        return FileKeyProvider(path)
    return _hsm().open(path, pin=pin)


def create_pkcs11_provider(
    path: Path, *, module: str, token: str, pin: str | None, population: int
) -> tuple[KeyProvider, bool]:
    return _hsm().create(path, module=module, token=token, pin=pin, population=population)


def _hsm() -> type[Pkcs11KeyProvider]:
    try:
        from vault.crypto.hsm import Pkcs11KeyProvider  # noqa: PLC0415 - only when named
    except ImportError:
        raise KeyringError(_HSM_MISSING) from None
    return Pkcs11KeyProvider
