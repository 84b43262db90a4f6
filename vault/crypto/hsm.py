"""Keys in a PKCS#11 token (an HSM; SoftHSM2 in the tests): none of them ever leaves it.

The keyring file (``CVAULT_KEYRING``, mode 0600) only names the module and the token;
it holds no key. The token holds (every key ``CKA_TOKEN``, ``CKA_PRIVATE``,
``CKA_SENSITIVE``, not ``CKA_EXTRACTABLE``, not ``CKA_MODIFIABLE``, generated inside it):

``cvault-kek-<N>`` (``CKA_ID`` ``cvault-kek``)
    AES-256, encrypt and decrypt only: key-encryption key version N. A data key is
    sealed inside the token by ``C_Encrypt`` with ``CKM_AES_GCM``, a random 96-bit IV and
    as additional authenticated data the file provider's binding (customer id, key id,
    KEK version; :func:`~vault.crypto.keyring.wrap_associated_data`), so a wrapped key
    moved to another customer or key id does not open. Stored blob:
    ``0x02 | KEK version (u32) | IV (12) | ciphertext (32) | tag (16)``. The current
    version is the highest in the token: several hosts sharing one HSM agree without
    sharing a file (each process asks the token at most once a second whether version
    current + 1 exists; ``rotate`` returns a second after making it).
``cvault-blind-index``
    a 256-bit generic secret, sign only: blind-index MACs, ``CKM_SHA256_HMAC`` over
    ``"cvault/blind-index/v1/" | len(field) (u16) | field | value``, one ``C_Sign`` per
    value.
``cvault-derive``
    a 256-bit generic secret, sign only: the secrets that must live in memory (the
    pages' MAC root, once per process; webhook secrets, which their owners are shown).
``cvault-settings``
    a data object: the blind index bits, fixed when the keys were made.

The user PIN is passed in (``CVAULT_PKCS11_PIN``), used to log in, and not kept; no
repr, message or log line holds it. python-pkcs11 initialises the module without
locking callbacks (``C_Initialize(NULL)``), which tells it that one thread at a time
calls it: every call into one module is serialised by one lock, and a process keeps one
session per token, shared by every provider opened on it.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar
from uuid import UUID

from pkcs11 import Attribute, ObjectClass, SecretKey, Session
from pkcs11.exceptions import NoSuchKey, PKCS11Error
from pkcs11.mechanisms import GCMParams

from vault.crypto.blind import BLIND_INDEX_LABEL
from vault.crypto.errors import DecryptionError, KeyringError
from vault.crypto.files import create_private_json, file_lock, read_private_json
from vault.crypto.hsm_token import (
    BLIND,
    DERIVE,
    KEK_ID,
    KEK_PREFIX,
    SETTINGS,
    STALE,
    Shared,
    decrypt,
    destroy,
    encrypt,
    generate_kek,
    hmac_sha256,
    kek_label,
    login,
    make_keys,
    module_for,
    settings_template,
)
from vault.crypto.keyring import (
    WrappedKey,
    blind_index_bits,
    check_derive_label,
    wrap_associated_data,
)
from vault.crypto.shredding import ShredList, shred_list_path

__all__ = ["Pkcs11KeyProvider"]

_T = TypeVar("_T")
_FORMAT = 1
_WRAP_VERSION = 0x02
_HEADER = struct.Struct(">BI")
_IV_BYTES = 12
_TAG_BITS = 128
_DATA_KEY_BYTES = 32
# How stale a process's idea of the current KEK version may be (seconds): a C_FindObjects
# per wrap costs more than the wrap itself (~110 us on SoftHSM2, a round trip on a
# network HSM), so each process asks the token at most this often, and rotate() waits
# this long before it returns.
_CURRENT_TTL = 1.0


class Pkcs11KeyProvider:
    """Key-encryption keys, the blind-index key and the derivation key in a PKCS#11 token."""

    def __init__(self, path: Path, module_path: str, token_label: str, pin: str | None) -> None:
        self._path = path
        self._label = token_label
        self._module = module_for(module_path)
        with self._module.lock:
            shared = self._module.shared.get(token_label)
            if shared is None:
                shared = login(self._module, token_label, pin)
                self._module.shared[token_label] = shared
            shared.refs += 1
        self._shared: Shared | None = shared
        self._current: int | None = None
        self._checked = 0.0  # time.monotonic() of the last look-up for a newer version
        self._shreds = ShredList(shred_list_path(path))
        try:
            self._bits = self._read_bits()
            for label in (BLIND, DERIVE):
                self._key(label)
            self.current_version()
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"Pkcs11KeyProvider(module={self._module.path!r}, token={self._label!r})"

    # -- opening and creating ---------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, pin: str | None) -> Pkcs11KeyProvider:
        """The provider a keyring file names (``"provider": "pkcs11"``)."""
        data = read_private_json(path, "keyring")
        module, token = data.get("module"), data.get("token")
        if not (isinstance(module, str) and module and isinstance(token, str) and token):
            raise KeyringError(f"keyring {path} names no PKCS#11 module and token")
        return cls(path, module, token, pin)

    @classmethod
    def create(
        cls, path: Path, *, module: str, token: str, pin: str | None, population: int
    ) -> tuple[Pkcs11KeyProvider, bool]:
        """Make the vault's keys in the token (unless it holds them: another host made
        them) and write the keyring file naming it. Returns the provider and whether keys
        were made."""
        if path.exists():
            raise KeyringError(f"keyring {path} already exists; refusing to overwrite it")
        bits = blind_index_bits(population)
        made = make_keys(module_for(module), token, pin, bits=bits, population=population)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.parent.chmod(0o700)
        descriptor = {"format": _FORMAT, "provider": "pkcs11", "module": module, "token": token}
        if not create_private_json(path, descriptor):
            raise KeyringError(f"keyring {path} already exists; refusing to overwrite it")
        return cls(path, module, token, pin), made

    def close(self) -> None:
        """Give the shared session back; the last provider on a token closes it."""
        with self._module.lock:
            shared, self._shared = self._shared, None
            if shared is None:
                return
            shared.refs -= 1
            if shared.refs == 0:
                del self._module.shared[self._label]
                with contextlib.suppress(PKCS11Error):  # the session is gone either way
                    shared.session.close()

    # -- calls into the token ---------------------------------------------------------

    def _call(self, what: str, fn: Callable[[Session], _T]) -> _T:
        with self._module.lock:
            shared = self._shared
            if shared is None:
                raise KeyringError("the PKCS#11 key provider is closed")
            try:
                return fn(shared.session)
            except PKCS11Error as exc:
                raise KeyringError(
                    f"PKCS#11 token failed to {what} ({type(exc).__name__})"
                ) from None

    def _key(self, label: str) -> SecretKey:
        """The key labelled ``label`` (its handle kept); KeyringError if absent."""
        with self._module.lock:
            shared = self._shared
            if shared is None:
                raise KeyringError("the PKCS#11 key provider is closed")
            key = shared.keys.get(label)
            if key is None:
                try:
                    found = shared.session.get_key(ObjectClass.SECRET_KEY, label=label)
                except NoSuchKey:
                    raise KeyringError(f"PKCS#11 token {self._label!r} lacks {label}") from None
                except PKCS11Error as exc:
                    name = type(exc).__name__
                    raise KeyringError(f"PKCS#11 token {self._label!r}: {label}: {name}") from None
                if not isinstance(found, SecretKey):
                    raise KeyringError(f"PKCS#11 object {label} is not a secret key")
                key = shared.keys[label] = found
            return key

    def _with_key(
        self,
        label: str,
        fn: Callable[[SecretKey], _T],
        failed: Callable[[PKCS11Error], Exception],
    ) -> _T:
        """``fn(key)``; a handle gone stale (another process re-made the object) is looked
        up again once; any other failure of the token raises ``failed(error)``."""
        with self._module.lock:
            for attempt in (1, 2):
                key = self._key(label)
                try:
                    return fn(key)
                except STALE as exc:
                    if self._shared is not None:
                        self._shared.keys.pop(label, None)
                    if attempt == 2:
                        raise failed(exc) from None
                except PKCS11Error as exc:
                    raise failed(exc) from None
            raise KeyringError(f"PKCS#11 object {label} cannot be used")  # not reached

    def _failed(self, what: str) -> Callable[[PKCS11Error], Exception]:
        def failed(exc: PKCS11Error) -> Exception:
            return KeyringError(f"PKCS#11 token failed to {what} ({type(exc).__name__})")

        return failed

    def _read_bits(self) -> int:
        def read(session: Session) -> bytes:
            found = list(session.get_objects(settings_template()))
            if len(found) != 1:
                raise KeyringError(f"PKCS#11 token {self._label!r} lacks {SETTINGS}")
            return bytes(found[0][Attribute.VALUE])

        try:
            settings = json.loads(self._call("read its settings", read))
            bits = int(settings["blind_index_bits"])
        except (ValueError, KeyError, TypeError):
            raise KeyringError(f"PKCS#11 object {SETTINGS} is malformed") from None
        if not 1 <= bits <= 63:
            raise KeyringError(f"PKCS#11 object {SETTINGS} has blind index bits outside 1..63")
        return bits

    # -- key-encryption keys ----------------------------------------------------------

    def _scan_versions(self) -> list[int]:
        def scan(session: Session) -> list[int]:
            template = {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.ID: KEK_ID}
            labels = [str(obj[Attribute.LABEL]) for obj in session.get_objects(template)]
            return sorted(
                int(label[len(KEK_PREFIX) :])
                for label in labels
                if label.startswith(KEK_PREFIX) and label[len(KEK_PREFIX) :].isdigit()
            )

        return self._call("list its key-encryption keys", scan)

    def _count(self, label: str) -> int:
        """How many secret keys the token holds under ``label`` (one C_FindObjects)."""
        template = {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.LABEL: label}
        return self._call("look a key up", lambda s: len(list(s.get_objects(template))))

    def current_version(self) -> int:
        """The highest version in the token, as seen at most ``_CURRENT_TTL`` ago: a look-up
        (is there a newer one?) at most once a second, not on every wrap."""
        with self._module.lock:
            current, now = self._current, time.monotonic()
            if current is not None and now - self._checked < _CURRENT_TTL:
                return current
            if current is None or self._count(kek_label(current + 1)):
                current = self._current = self._newest()
            self._checked = now
            return current

    def _newest(self) -> int:
        versions = self._scan_versions()
        if not versions:
            raise KeyringError(f"PKCS#11 token {self._label!r} holds no key-encryption key")
        return versions[-1]

    def versions(self) -> list[int]:
        return self._scan_versions()

    def wrap(self, customer_id: UUID, key_id: int, key: bytes) -> WrappedKey:
        if len(key) != _DATA_KEY_BYTES:
            raise KeyringError("a data key must hold 32 bytes")
        iv = os.urandom(_IV_BYTES)
        with self._module.lock:
            version = self.current_version()
            params = GCMParams(iv, wrap_associated_data(customer_id, key_id, version), _TAG_BITS)
            sealed = self._with_key(
                kek_label(version),
                lambda kek: encrypt(kek, key, params),
                self._failed("wrap a data key"),
            )
        return WrappedKey(version, _HEADER.pack(_WRAP_VERSION, version) + iv + bytes(sealed))

    def unwrap(self, customer_id: UUID, key_id: int, wrapped: WrappedKey) -> bytes:
        if customer_id in self._shreds.current():
            raise DecryptionError("data key belongs to an erased customer and is shredded")
        blob = wrapped.blob
        if len(blob) < _HEADER.size + _IV_BYTES + _TAG_BITS // 8 or blob[0] != _WRAP_VERSION:
            raise DecryptionError("wrapped data key has an unknown version")
        version = int(_HEADER.unpack_from(blob)[1])
        if version != wrapped.kek_version:
            raise DecryptionError("wrapped data key does not match its recorded version")
        iv = blob[_HEADER.size : _HEADER.size + _IV_BYTES]
        params = GCMParams(iv, wrap_associated_data(customer_id, key_id, version), _TAG_BITS)
        body = blob[_HEADER.size + _IV_BYTES :]
        label = kek_label(version)
        with self._module.lock:
            cached = self._shared is not None and label in self._shared.keys
            if not cached and not self._count(label):
                raise DecryptionError("key-encryption key version is not in the token")
            key = self._with_key(
                label,
                lambda kek: decrypt(kek, body, params),
                _unopened,
            )
        return bytes(key)

    def rotate(self) -> int:
        """Generate the next KEK version in the token; it is current from now on. Returns
        ``_CURRENT_TTL`` after making it: by then every process wraps under it, so the
        re-wrap that follows sees every data key wrapped under an older version."""
        with file_lock(self._path):
            with self._module.lock:
                version = max(self._scan_versions(), default=0) + 1
                made = self._call("generate a key", lambda s: generate_kek(s, version))
                if self._count(kek_label(version)) != 1:  # another host rotated at once
                    self._call("destroy a key", lambda _s: made.destroy())
                    raise KeyringError("another process rotated the token's keys; run it again")
                self._current, self._checked = version, time.monotonic()
            time.sleep(_CURRENT_TTL)  # the module stays free for other threads meanwhile
            return version

    def retire(self, version: int) -> None:
        """Destroy an old KEK version in the token (never the current one: the token's
        newest, looked up now)."""
        with file_lock(self._path), self._module.lock:
            if version == self._newest():
                raise KeyringError("the current key-encryption key cannot be retired")
            if not self._count(kek_label(version)):
                raise KeyringError(f"key-encryption key version {version} is not in the token")
            self._with_key(kek_label(version), destroy, self._failed("destroy a key"))
            if self._shared is not None:
                self._shared.keys.pop(kek_label(version), None)

    # -- blind indexes and derived secrets --------------------------------------------

    def blind_index_bits(self) -> int:
        return self._bits

    def blind_mac(self, field: str, data: bytes) -> bytes:
        """``HMAC-SHA256(token key, "cvault/blind-index/v1/" | len(field) | field | data)``,
        computed by the token."""
        name = field.encode("utf-8")
        if len(name) > 0xFFFF:
            raise ValueError("field name too long")
        message = BLIND_INDEX_LABEL + struct.pack(">H", len(name)) + name + data
        return self._sign(BLIND, message, "compute a blind index")

    def derive_secret(self, label: bytes) -> bytes:
        """``HMAC-SHA256(token derivation key, label)``, computed by the token."""
        check_derive_label(label)
        return self._sign(DERIVE, label, "derive a secret")

    def _sign(self, label: str, message: bytes, what: str) -> bytes:
        mac = self._with_key(
            label,
            lambda key: hmac_sha256(key, message),
            self._failed(what),
        )
        return bytes(mac)

    # -- shred list -------------------------------------------------------------------

    @property
    def shred_list_path(self) -> Path:
        return self._shreds.path

    def shred(self, customer_id: UUID) -> None:
        """Append the id to the shred list beside the keyring file and fsync it."""
        self._shreds.add(customer_id)

    def shredded(self, customer_ids: Iterable[UUID]) -> set[UUID]:
        return self._shreds.among(customer_ids)


def _unopened(_exc: PKCS11Error) -> Exception:
    # SoftHSM2 answers a failed tag check with CKR_GENERAL_ERROR, others with
    # CKR_ENCRYPTED_DATA_INVALID: either way this blob does not open here.
    return DecryptionError("wrapped data key does not open under this KEK")
