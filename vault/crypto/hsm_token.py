"""The token side of the PKCS#11 key provider: loading a module, one logged-in session
per token, the objects customer-vault keeps in a token and the calls made with them.

See :mod:`vault.crypto.hsm` for what the objects are and why every call into one module
takes one lock. Nothing here holds a PIN after logging in.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from typing import Any

import pkcs11
from pkcs11 import (
    Attribute,
    DecryptMixin,
    EncryptMixin,
    KeyType,
    Mechanism,
    MechanismFlag,
    ObjectClass,
    SecretKey,
    Session,
    SignMixin,
)
from pkcs11.exceptions import (
    KeyHandleInvalid,
    NoSuchToken,
    ObjectHandleInvalid,
    PinIncorrect,
    PinLocked,
    PKCS11Error,
    UserAlreadyLoggedIn,
)
from pkcs11.mechanisms import GCMParams

from vault.crypto.errors import KeyringError

__all__ = [
    "APPLICATION",
    "BLIND",
    "DERIVE",
    "KEEP",
    "KEK_ID",
    "KEK_PREFIX",
    "SETTINGS",
    "STALE",
    "Module",
    "Shared",
    "decrypt",
    "destroy",
    "encrypt",
    "generate_kek",
    "hmac_sha256",
    "kek_label",
    "login",
    "make_keys",
    "module_for",
    "open_sessions",
    "settings_template",
]

KEK_ID = b"cvault-kek"
KEK_PREFIX = "cvault-kek-"
BLIND = "cvault-blind-index"
DERIVE = "cvault-derive"
SETTINGS = "cvault-settings"
APPLICATION = "customer-vault"
KEEP = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.MODIFIABLE: False,
}
# A handle that went stale (another process destroyed or re-created the object).
STALE = (KeyHandleInvalid, ObjectHandleInvalid)


def kek_label(version: int) -> str:
    return f"{KEK_PREFIX}{version}"


class Module:
    """One loaded PKCS#11 module: the lock all its calls take, its open sessions."""

    def __init__(self, path: str) -> None:
        try:
            self.lib = pkcs11.lib(path)
        except PKCS11Error:
            raise KeyringError(f"PKCS#11 module {path} cannot be loaded") from None
        self.path = path
        self.lock = threading.RLock()
        self.shared: dict[str, Shared] = {}


class Shared:
    """A logged-in session with one token, shared by the providers opened on it."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.refs = 0
        self.keys: dict[str, SecretKey] = {}


_MODULES: dict[str, Module] = {}
_REGISTRY = threading.Lock()


def module_for(path: str) -> Module:
    with _REGISTRY:
        module = _MODULES.get(path)
        if module is None:
            module = _MODULES[path] = Module(path)
        return module


def open_sessions(path: str) -> list[str]:
    """The labels of the tokens this process holds a session with through module ``path``
    (the providers not closed yet)."""
    with _REGISTRY:
        module = _MODULES.get(path)
    if module is None:
        return []
    with module.lock:
        return sorted(module.shared)


def login(module: Module, label: str, pin: str | None) -> Shared:
    """A session on the token labelled ``label``, logged in as its user."""
    if pin is None:
        raise KeyringError(f"PKCS#11 token {label!r} needs its user PIN (CVAULT_PKCS11_PIN)")
    try:
        token = module.lib.get_token(token_label=label)
    except NoSuchToken:
        if module.shared:
            raise KeyringError(f"PKCS#11 token {label!r} is not in {module.path}") from None
        # SoftHSM2 reads its token directory at C_Initialize: see tokens made since.
        module.lib.reinitialize()
        try:
            token = module.lib.get_token(token_label=label)
        except NoSuchToken:
            raise KeyringError(f"PKCS#11 token {label!r} is not in {module.path}") from None
    except PKCS11Error as exc:
        raise KeyringError(f"PKCS#11 token {label!r}: {type(exc).__name__}") from None
    try:
        session = token.open(rw=True, user_pin=pin)
    except UserAlreadyLoggedIn:  # this process logged in by another way: the login holds
        session = token.open(rw=True)
    except PinIncorrect:
        raise KeyringError(f"PKCS#11 token {label!r} refused the PIN") from None
    except PinLocked:
        raise KeyringError(f"PKCS#11 token {label!r} has locked its user PIN") from None
    except PKCS11Error as exc:
        raise KeyringError(f"PKCS#11 token {label!r}: {type(exc).__name__}") from None
    return Shared(session)


def one(result: bytes | Iterator[bytes]) -> bytes:
    """python-pkcs11 answers bytes for bytes (a generator only for a generator)."""
    if not isinstance(result, bytes):
        raise KeyringError("PKCS#11 binding answered a stream for one value")
    return result


def encrypt(kek: SecretKey, data: bytes, params: GCMParams) -> bytes:
    if not isinstance(kek, EncryptMixin):
        raise KeyringError("PKCS#11 key-encryption key cannot encrypt")
    return one(kek.encrypt(data, mechanism=Mechanism.AES_GCM, mechanism_param=params))


def decrypt(kek: SecretKey, data: bytes, params: GCMParams) -> bytes:
    if not isinstance(kek, DecryptMixin):
        raise KeyringError("PKCS#11 key-encryption key cannot decrypt")
    return one(kek.decrypt(data, mechanism=Mechanism.AES_GCM, mechanism_param=params))


def hmac_sha256(key: SecretKey, message: bytes) -> bytes:
    if not isinstance(key, SignMixin):
        raise KeyringError("PKCS#11 HMAC key cannot sign")
    return key.sign(message, mechanism=Mechanism.SHA256_HMAC)


def destroy(key: SecretKey) -> None:
    key.destroy()


def settings_template() -> dict[Attribute, Any]:
    return {Attribute.CLASS: ObjectClass.DATA, Attribute.LABEL: SETTINGS}


def generate_kek(session: Session, version: int) -> SecretKey:
    template = {**KEEP, Attribute.ENCRYPT: True, Attribute.DECRYPT: True}
    return session.generate_key(
        KeyType.AES,
        256,
        id=KEK_ID,
        label=kek_label(version),
        store=True,
        capabilities=MechanismFlag(0),
        template=template,
    )


def generate_hmac_key(session: Session, label: str) -> SecretKey:
    template = {**KEEP, Attribute.SIGN: True}
    return session.generate_key(
        KeyType.GENERIC_SECRET,
        256,
        label=label,
        store=True,
        capabilities=MechanismFlag(0),
        template=template,
    )


def make_keys(module: Module, label: str, pin: str | None, *, bits: int, population: int) -> bool:
    """Generate in the token whatever of the vault's keys it lacks. A token that already
    holds a KEK must hold the rest: then nothing is made (another host made them). Returns
    whether keys were made."""
    with module.lock:
        shared = module.shared.get(label)
        own = shared is None
        if shared is None:
            shared = login(module, label, pin)
        session = shared.session
        try:
            labels = {
                str(obj[Attribute.LABEL])
                for obj in session.get_objects({Attribute.APPLICATION: APPLICATION})
            } | {
                str(obj[Attribute.LABEL])
                for obj in session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY})
            }
            has_kek = any(name.startswith(KEK_PREFIX) for name in labels)
            missing = [name for name in (SETTINGS, BLIND, DERIVE) if name not in labels]
            if has_kek and missing:
                raise KeyringError(
                    f"PKCS#11 token {label!r} holds key-encryption keys but lacks "
                    f"{', '.join(missing)}; it was not made by 'cvault init'"
                )
            if has_kek:
                return False
            if SETTINGS in missing:
                value = json.dumps({"blind_index_bits": bits, "population": population})
                session.create_object(
                    {
                        **settings_template(),
                        Attribute.TOKEN: True,
                        Attribute.PRIVATE: True,
                        Attribute.MODIFIABLE: False,
                        Attribute.APPLICATION: APPLICATION,
                        Attribute.VALUE: value.encode("ascii"),
                    }
                )
            for name in (BLIND, DERIVE):
                if name in missing:
                    generate_hmac_key(session, name)
            generate_kek(session, 1)  # last: a KEK means the set is complete
        except PKCS11Error as exc:
            raise KeyringError(
                f"PKCS#11 token {label!r} could not make the keys ({type(exc).__name__})"
            ) from None
        finally:
            if own:
                with contextlib.suppress(PKCS11Error):
                    shared.session.close()
        return True
