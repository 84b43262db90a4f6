"""The vault's only crypto. A safe recipe on top, the primitive behind ``_aead``.

* :class:`Keyring` creates, opens, re-wraps and shreds per-customer data keys, over a
  :class:`KeyProvider`: the key file (:class:`FileKeyProvider`, the default) or a PKCS#11
  token (:mod:`vault.crypto.hsm`, loaded only when a keyring file names it).
* :class:`DataKey` encrypts and decrypts field values bound to customer, field and record.
* :class:`BlindIndexer` computes short keyed indexes for exact lookup with the
  provider's MAC.
* Every failure to open is a :class:`DecryptionError`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from uuid import UUID

from vault.crypto._aead import random_key
from vault.crypto.blind import BlindIndexer
from vault.crypto.datakeys import DataKey, decryption_counts, token_key_id
from vault.crypto.errors import CryptoError, DecryptionError, KeyringError
from vault.crypto.keyring import FileKeyProvider, KeyProvider, WrappedKey, blind_index_bits
from vault.crypto.providers import (
    KeyringSource,
    create_pkcs11_provider,
    keyring_source,
    open_provider,
)
from vault.crypto.shredding import shred_list_path

__all__ = [
    "BlindIndexer",
    "CryptoError",
    "DataKey",
    "DecryptionError",
    "FileKeyProvider",
    "KeyProvider",
    "Keyring",
    "KeyringError",
    "KeyringSource",
    "WrappedKey",
    "blind_index_bits",
    "decryption_counts",
    "keyring_source",
    "shred_list_path",
    "token_key_id",
]


class Keyring:
    """Per-customer data keys, wrapped by a versioned key-encryption key."""

    def __init__(self, provider: KeyProvider) -> None:
        self._provider = provider
        self._indexer = BlindIndexer(provider, provider.blind_index_bits())

    def __repr__(self) -> str:
        return f"Keyring(provider={self._provider!r})"

    @classmethod
    def open(cls, path: Path, *, pin: str | None = None) -> Keyring:
        """The keyring at ``path``: a key file, or a file naming a PKCS#11 token whose user
        ``pin`` logs in (not kept)."""
        return cls(open_provider(path, pin=pin))

    @classmethod
    def create(cls, path: Path, *, population: int) -> Keyring:
        """A new key file (the embedded default)."""
        return cls(FileKeyProvider.create(path, population=population))

    @classmethod
    def create_pkcs11(
        cls, path: Path, *, module: str, token: str, pin: str | None, population: int
    ) -> tuple[Keyring, bool]:
        """Keys made in a PKCS#11 token (kept if the token holds them already) and a
        keyring file at ``path`` naming it. Returns the keyring and whether keys were made."""
        provider, made = create_pkcs11_provider(
            path, module=module, token=token, pin=pin, population=population
        )
        return cls(provider), made

    def close(self) -> None:
        """Let go of the provider's session (a PKCS#11 token); a key file holds none."""
        self._provider.close()

    @property
    def provider(self) -> KeyProvider:
        return self._provider

    @property
    def blind_indexer(self) -> BlindIndexer:
        return self._indexer

    def current_version(self) -> int:
        return self._provider.current_version()

    def versions(self) -> list[int]:
        return self._provider.versions()

    def new_data_key(self, customer_id: UUID, key_id: int = 1) -> tuple[DataKey, WrappedKey]:
        """A fresh random data key for a customer, and its wrapped form to store."""
        key = random_key()
        return DataKey(customer_id, key_id, key), self._provider.wrap(customer_id, key_id, key)

    def open_data_key(self, customer_id: UUID, key_id: int, wrapped: WrappedKey) -> DataKey:
        return DataKey(customer_id, key_id, self._provider.unwrap(customer_id, key_id, wrapped))

    def rewrap(self, customer_id: UUID, key_id: int, wrapped: WrappedKey) -> WrappedKey:
        """The same data key under the current key-encryption key; values stay as they are."""
        if wrapped.kek_version == self._provider.current_version():
            return wrapped
        key = self._provider.unwrap(customer_id, key_id, wrapped)
        return self._provider.wrap(customer_id, key_id, key)

    def rotate(self) -> int:
        """Add a key-encryption key version and make it current. Returns the new version."""
        return self._provider.rotate()

    def retire(self, version: int) -> None:
        self._provider.retire(version)

    def shred(self, customer_id: UUID) -> None:
        """Crypto-shredding in the keyring: this customer's wrapped data key is refused from
        now on, even when a restored database backup still holds it (durable on return)."""
        self._provider.shred(customer_id)

    def shredded(self, customer_ids: Iterable[UUID]) -> set[UUID]:
        """The ids among ``customer_ids`` whose data keys were shredded."""
        return self._provider.shredded(customer_ids)
