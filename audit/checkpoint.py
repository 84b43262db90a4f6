"""Signed tree heads as C2SP tlog-checkpoints in the C2SP signed-note format.

A checkpoint body is three lines, ``<origin>\\n<size>\\n<base64 root hash>\\n``
(c2sp.org/tlog-checkpoint; we emit no extension lines and accept none). A
signed note is the body, a blank line, and signature lines
``\\u2014 <key name> <base64(4-byte key id || signature)>\\n`` (c2sp.org/signed-note).
For Ed25519 the key id is ``SHA-256(name || 0x0A || 0x01 || public key)[:4]``
and a verifier key is written ``<name>+<hex key id>+<base64(0x01 || public key)>``,
as golang.org/x/mod/sumdb/note does.

This package imports no cryptography: signing is done by a :class:`Signer`
and checking by a :data:`Verify` callable, both handed in by the caller
(``vault.crypto.signing`` provides them). Every failure to open a note or a
checkpoint raises :class:`CheckpointError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from audit.merkle import HASH_SIZE

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "Signer",
    "Verify",
    "key_id",
    "open_checkpoint",
    "open_note",
    "parse_vkey",
    "sign_checkpoint",
    "sign_note",
    "vkey",
]

ED25519_TYPE = 0x01
_PUBLIC_KEY_BYTES = 32
_SIGNATURE_BYTES = 64
_KEY_ID_BYTES = 4
_SIG_PREFIX = "\u2014 "  # EM DASH, SPACE
_MAX_SIGNATURES = 100  # the spec asks verifiers to accept at least 16
_MAX_SIZE = 2**64 - 1
_SIZE_RE = re.compile(r"0|[1-9][0-9]*", re.ASCII)
_KEY_ID_RE = re.compile(r"[0-9a-f]{8}", re.ASCII)
_CONTROL_RE = re.compile(r"[\x00-\x09\x0b-\x1f]")


class CheckpointError(Exception):
    """A checkpoint or signed note is malformed, unsigned by the key, or badly signed."""


class Signer(Protocol):
    """Signs note text with an Ed25519 key under a key name."""

    name: str

    def public_key_bytes(self) -> bytes: ...

    def sign(self, message: bytes) -> bytes: ...


Verify = Callable[[bytes, bytes, bytes], None]
"""``(public_key, message, signature)``; raises on a bad signature, returns None otherwise."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tree head: the log's origin line, its size, and its RFC 6962 root hash."""

    origin: str
    size: int
    root_hash: bytes

    def __post_init__(self) -> None:
        _check_line(self.origin, "origin")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise CheckpointError("checkpoint size must be an integer")
        if not 0 <= self.size <= _MAX_SIZE:
            raise CheckpointError("checkpoint size must be between 0 and 2**64 - 1")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != HASH_SIZE:
            raise CheckpointError(f"checkpoint root hash must be {HASH_SIZE} bytes")

    def __repr__(self) -> str:
        return (
            f"Checkpoint(origin={self.origin!r}, size={self.size}, "
            f"root_hash={self.root_hash.hex()!r})"
        )

    def body(self) -> bytes:
        """The note text that is signed: three lines, each ending in a newline."""
        return self._text().encode("utf-8")

    def _text(self) -> str:
        root = base64.b64encode(self.root_hash).decode("ascii")
        return f"{self.origin}\n{self.size}\n{root}\n"


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte Ed25519 key id: ``SHA-256(name || 0x0A || 0x01 || public key)[:4]``."""
    material = name.encode("utf-8") + b"\n" + bytes([ED25519_TYPE]) + public_key
    return hashlib.sha256(material).digest()[:_KEY_ID_BYTES]


def vkey(name: str, public_key: bytes) -> str:
    """The verifier key text ``<name>+<hex key id>+<base64(0x01 || public key)>``."""
    _check_key_name(name)
    _check_public_key(public_key)
    encoded = base64.b64encode(bytes([ED25519_TYPE]) + public_key).decode("ascii")
    return f"{name}+{key_id(name, public_key).hex()}+{encoded}"


def parse_vkey(text: str) -> tuple[str, bytes]:
    """The key name and 32-byte Ed25519 public key of a verifier key text.

    Strict: no surrounding whitespace, a lowercase 8-digit hex key id that
    matches the key, canonical base64, the Ed25519 type byte.
    """
    parts = text.split("+", 2)
    if len(parts) != 3:
        raise CheckpointError("verifier key must read <name>+<key id>+<key>")
    name, hex_id, encoded = parts
    _check_key_name(name)
    if not _KEY_ID_RE.fullmatch(hex_id):
        raise CheckpointError("verifier key id must be 8 lowercase hex digits")
    raw = _b64decode(encoded, "verifier key")
    if len(raw) != 1 + _PUBLIC_KEY_BYTES or raw[0] != ED25519_TYPE:
        raise CheckpointError("verifier key is not an Ed25519 key")
    public_key = raw[1:]
    if key_id(name, public_key).hex() != hex_id:
        raise CheckpointError("verifier key id does not match its name and key")
    return name, public_key


def sign_note(text: str, signer: Signer) -> str:
    """The signed note: ``text`` (ending in a newline), a blank line, one signature line."""
    if not text.endswith("\n"):
        raise CheckpointError("note text must end with a newline")
    _check_note_characters(text)
    name = signer.name
    _check_key_name(name)
    public_key = signer.public_key_bytes()
    _check_public_key(public_key)
    signature = signer.sign(text.encode("utf-8"))
    if len(signature) != _SIGNATURE_BYTES:
        raise CheckpointError("signer returned a signature of the wrong length")
    encoded = base64.b64encode(key_id(name, public_key) + signature).decode("ascii")
    return f"{text}\n{_SIG_PREFIX}{name} {encoded}\n"


def open_note(note: str, vkey_text: str, verify: Verify) -> str:
    """The text of ``note`` once a signature by the key ``vkey_text`` verifies.

    Signatures by other keys are ignored, as the spec requires; every
    signature line by this key must verify, and there must be at least one.
    """
    name, public_key = parse_vkey(vkey_text)
    wanted_id = key_id(name, public_key)
    text, lines = _split_note(note)
    message = text.encode("utf-8")
    check: Callable[[bytes, bytes, bytes], object] = verify
    verified = False
    for line in lines:
        sig_name, blob = _parse_signature_line(line)
        if sig_name != name or blob[:_KEY_ID_BYTES] != wanted_id:
            continue  # another key's signature (a witness, a rotated key): not ours to judge
        signature = blob[_KEY_ID_BYTES:]
        if len(signature) != _SIGNATURE_BYTES:
            raise CheckpointError("signature by the log key has the wrong length")
        try:
            outcome = check(public_key, message, signature)
        except Exception:  # noqa: BLE001 - the injected verifier's error type is unknown here; any failure rejects
            raise CheckpointError("signature by the log key does not verify") from None
        if outcome is not None:
            raise CheckpointError("verifier must raise on failure and return None")
        verified = True
    if not verified:
        raise CheckpointError("note carries no signature by the log key")
    return text


def sign_checkpoint(cp: Checkpoint, signer: Signer) -> str:
    """The checkpoint as a signed note, signed by ``signer``."""
    return sign_note(cp._text(), signer)


def open_checkpoint(
    note: str, vkey_text: str, verify: Verify, *, origin: str | None = None
) -> Checkpoint:
    """The checkpoint in ``note`` once its signature by ``vkey_text`` verifies.

    With ``origin``, the checkpoint must also name that log, so a key shared
    by two logs cannot pass one log's checkpoint off as the other's.
    """
    cp = _parse_body(open_note(note, vkey_text, verify))
    if origin is not None and cp.origin != origin:
        raise CheckpointError("checkpoint is for another log")
    return cp


def _parse_body(text: str) -> Checkpoint:
    lines = text[:-1].split("\n")  # the text ends in a newline (checked when split)
    if len(lines) < 3:
        raise CheckpointError("checkpoint needs an origin, a size and a root hash line")
    if len(lines) > 3:
        raise CheckpointError("checkpoint extension lines are not accepted")
    origin, size_text, root_text = lines
    if not origin:
        raise CheckpointError("checkpoint origin is empty")
    if not _SIZE_RE.fullmatch(size_text):
        raise CheckpointError("checkpoint size must be decimal digits without leading zeros")
    size = int(size_text)
    root_hash = _b64decode(root_text, "checkpoint root hash")
    if len(root_hash) != HASH_SIZE:
        raise CheckpointError(f"checkpoint root hash must be {HASH_SIZE} bytes")
    return Checkpoint(origin, size, root_hash)


def _split_note(note: str) -> tuple[str, list[str]]:
    """(text including its final newline, signature lines without newlines)."""
    if not isinstance(note, str):
        raise CheckpointError("a signed note must be text")
    _check_note_characters(note)
    split = note.rfind("\n\n")
    if split < 0:
        raise CheckpointError("note has no blank line before its signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block or not block.endswith("\n"):
        raise CheckpointError("note signatures must end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > _MAX_SIGNATURES:
        raise CheckpointError("note carries too many signatures")
    return text, lines


def _parse_signature_line(line: str) -> tuple[str, bytes]:
    if not line.startswith(_SIG_PREFIX):
        raise CheckpointError("note signature line must start with an em dash and a space")
    name, space, encoded = line[len(_SIG_PREFIX) :].partition(" ")
    if not space:
        raise CheckpointError("note signature line needs a key name and a signature")
    _check_key_name(name)
    blob = _b64decode(encoded, "note signature")
    if len(blob) <= _KEY_ID_BYTES:
        raise CheckpointError("note signature is too short")
    return name, blob


def _b64decode(text: str, what: str) -> bytes:
    """Strict standard base64 (RFC 4648 section 4), canonical encodings only."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise CheckpointError(f"{what} is not valid base64") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise CheckpointError(f"{what} is not canonical base64")
    return raw


def _check_note_characters(text: str) -> None:
    """Valid UTF-8, no ASCII control characters but newline (signed-note format)."""
    if _CONTROL_RE.search(text):
        raise CheckpointError("note contains a control character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise CheckpointError("note is not valid UTF-8") from None


def _check_line(value: str, what: str) -> None:
    if not isinstance(value, str) or not value:
        raise CheckpointError(f"checkpoint {what} must be a non-empty string")
    if "\n" in value:
        raise CheckpointError(f"checkpoint {what} must be a single line")
    _check_note_characters(value)


def _check_key_name(name: str) -> None:
    if not isinstance(name, str) or not name or "+" in name or any(ch.isspace() for ch in name):
        raise CheckpointError("key name must be non-empty, without spaces or '+'")
    _check_note_characters(name)


def _check_public_key(public_key: bytes) -> None:
    if not isinstance(public_key, bytes) or len(public_key) != _PUBLIC_KEY_BYTES:
        raise CheckpointError(f"an Ed25519 public key is {_PUBLIC_KEY_BYTES} bytes")
