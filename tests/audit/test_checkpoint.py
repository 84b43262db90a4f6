"""Signed checkpoints (C2SP tlog-checkpoint + signed-note) and the Ed25519 signer behind them."""

# ruff: noqa: SIM300 - assertions read `expected == actual`.

from __future__ import annotations

import base64
import hashlib
import json
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    key_id,
    open_checkpoint,
    open_note,
    parse_vkey,
    sign_checkpoint,
    sign_note,
    vkey,
)
from audit.merkle import root
from vault.crypto.errors import CryptoError, KeyringError
from vault.crypto.signing import (
    Ed25519Signer,
    SignatureError,
    ed25519_verify,
    load_signer,
    save_signer,
)

EM = "\u2014"

# -- external vectors ----------------------------------------------------------
# golang.org/x/mod, sumdb/note/note.go (package example) and note_test.go:
# a signer key, its verifier key, and the note it signs.
GO_SIGNER_KEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n"
    f"{EM} PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)

# transparency-dev/formats, log/note_test.go (TestSumDBNoteParsing): a real
# checkpoint of the Go checksum database and its published verifier key.
SUMDB_VKEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
SUMDB_NOTE = (
    "go.sum database tree\n"
    "6476701\n"
    "mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=\n"
    "\n"
    f"{EM} sum.golang.org "
    "Az3grsLX85Gz+s1SiTbgkuqxgItqFq7gsMUEyVnrsa9LM7Us9S+1xbFIGu95949rj4nPRYfvimWEPWL+o3GeoWwOoAw=\n"
)

# RFC 8032 section 7.1, TEST 1: Ed25519 over the empty message.
RFC8032_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)

# -- our own known answer --------------------------------------------------------
# Private key bytes(range(32)); the tree is the 8 RFC 6962 test leaves
# (transparency-dev/merkle testonly/constants.go), root 5dc9da79...
ORIGIN = "example.com/cvault/audit"
TEST_LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
ROOT_8 = bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")
KNOWN_VKEY = "example.com/cvault/audit+0928335f+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4"
KNOWN_NOTE = (
    "example.com/cvault/audit\n"
    "8\n"
    "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n"
    "\n"
    f"{EM} example.com/cvault/audit "
    "CSgzX+uywh+gmt+7/w+oiL8VrCjDLY9QNfHVWeR3W17VCtzM0sdGBrToS6vQmsdYwP3/Rz9Sb/ShiqQIKvdakfj9SgM=\n"
)


@pytest.fixture
def signer() -> Ed25519Signer:
    return Ed25519Signer.from_private_bytes(ORIGIN, bytes(range(32)))


def _go_signer() -> Ed25519Signer:
    *_, name, _hash, encoded = GO_SIGNER_KEY.split("+", 4)
    raw = base64.b64decode(encoded)
    assert 0x01 == raw[0]
    return Ed25519Signer.from_private_bytes(name, raw[1:])


def _known_vkey(s: Ed25519Signer) -> str:
    return vkey(s.name, s.public_key_bytes())


# -- known answers -------------------------------------------------------------


def test_go_note_vector_is_reproduced_exactly() -> None:
    """Signing the sumdb/note example text with its key gives the published note, byte for byte."""
    s = _go_signer()
    assert GO_VKEY == _known_vkey(s)
    assert GO_NOTE == sign_note(GO_TEXT, s)
    assert GO_TEXT == open_note(GO_NOTE, GO_VKEY, ed25519_verify)


def test_real_sumdb_checkpoint_opens() -> None:
    """A checkpoint signed by sum.golang.org opens under its published verifier key."""
    cp = open_checkpoint(SUMDB_NOTE, SUMDB_VKEY, ed25519_verify, origin="go.sum database tree")
    expected_root = base64.b64decode("mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=")
    assert Checkpoint("go.sum database tree", 6476701, expected_root) == cp


def test_checkpoint_for_another_origin_is_refused() -> None:
    """Naming the expected origin rejects a validly signed checkpoint of another log."""
    with pytest.raises(CheckpointError, match="another log"):
        open_checkpoint(SUMDB_NOTE, SUMDB_VKEY, ed25519_verify, origin="Go rocks")


def test_signed_checkpoint_matches_the_known_answer(signer: Ed25519Signer) -> None:
    """Ed25519 is deterministic: a fixed key and tree give this exact note and verifier key."""
    cp = Checkpoint(ORIGIN, 8, root(TEST_LEAVES))
    assert ROOT_8 == cp.root_hash
    assert KNOWN_NOTE == sign_checkpoint(cp, signer)
    assert KNOWN_VKEY == _known_vkey(signer)
    assert cp == open_checkpoint(KNOWN_NOTE, KNOWN_VKEY, ed25519_verify)


def test_checkpoint_body_is_origin_size_and_base64_root() -> None:
    """The signed body is three newline-terminated lines, the root in standard base64."""
    cp = Checkpoint(ORIGIN, 8, ROOT_8)
    expected = b"example.com/cvault/audit\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n"
    assert expected == cp.body()


def test_key_id_follows_the_signed_note_definition(signer: Ed25519Signer) -> None:
    """key id = SHA-256(name || 0x0A || 0x01 || public key)[:4], and it leads the signature."""
    pk = signer.public_key_bytes()
    expected = hashlib.sha256(ORIGIN.encode() + b"\x0a" + b"\x01" + pk).digest()[:4]
    assert expected == key_id(ORIGIN, pk)
    assert expected.hex() == KNOWN_VKEY.split("+")[1]
    signature_blob = base64.b64decode(KNOWN_NOTE.rsplit(" ", 1)[1])
    assert expected == signature_blob[:4]
    go_pk = base64.b64decode(GO_VKEY.split("+")[2])[1:]
    assert bytes.fromhex("c74f20a3") == key_id("PeterNeumann", go_pk)


def test_vkey_round_trips(signer: Ed25519Signer) -> None:
    """parse_vkey(vkey(name, key)) gives back the name and the key; the Go key parses too."""
    assert (ORIGIN, signer.public_key_bytes()) == parse_vkey(_known_vkey(signer))
    assert ("PeterNeumann", _go_signer().public_key_bytes()) == parse_vkey(GO_VKEY)


def test_round_trip_with_a_generated_key() -> None:
    """A checkpoint signed by a fresh key opens under that key's verifier key."""
    s = Ed25519Signer.generate("log.example/42")
    cp = Checkpoint("log.example/42", 0, hashlib.sha256(b"").digest())
    assert cp == open_checkpoint(sign_checkpoint(cp, s), _known_vkey(s), ed25519_verify)


# -- tampering -----------------------------------------------------------------


def _resign_blob(note: str, edit: Callable[[bytes], bytes]) -> str:
    body, line = note[:-1].rsplit("\n", 1)
    prefix, encoded = line.rsplit(" ", 1)
    blob = edit(base64.b64decode(encoded))
    return f"{body}\n{prefix} {base64.b64encode(blob).decode()}\n"


TAMPERINGS: dict[str, Callable[[str], str]] = {
    "size changed": lambda n: n.replace("\n8\n", "\n9\n", 1),
    "root changed": lambda n: n.replace("XcnaeacG", "XcnaeacH", 1),
    "origin changed": lambda n: n.replace("example.com/cvault/audit\n", "example.com/other\n", 1),
    "signature byte flipped": lambda n: _resign_blob(
        n, lambda b: b[:10] + bytes([b[10] ^ 1]) + b[11:]
    ),
    "key id changed": lambda n: _resign_blob(n, lambda b: bytes([b[0] ^ 1]) + b[1:]),
    "signature truncated": lambda n: _resign_blob(n, lambda b: b[:-1]),
    "key name changed": lambda n: n.replace(f"{EM} example.com/cvault/audit ", f"{EM} other ", 1),
    "trailing line": lambda n: n + "trailing\n",
    "trailing blank line": lambda n: n + "\n",
    "missing final newline": lambda n: n[:-1],
    "missing blank line": lambda n: n.replace("=\n\n", "=\n", 1),
    "ascii dash": lambda n: n.replace(EM, "-", 1),
    "en dash": lambda n: n.replace(EM, "\u2013", 1),
    "no space after dash": lambda n: n.replace(f"{EM} ", EM, 1),
    "extension line inserted": lambda n: n.replace("=\n\n", "=\nextra\n\n", 1),
    "carriage return": lambda n: n.replace("\n", "\r\n"),
    "signatures removed": lambda n: n.split("\n\n")[0] + "\n\n",
    "empty": lambda n: "",
}


@pytest.mark.parametrize("tamper", TAMPERINGS.values(), ids=TAMPERINGS.keys())
def test_any_change_to_the_note_raises(tamper: Callable[[str], str]) -> None:
    """Changing the size, root, origin, signature, key name or layout raises CheckpointError."""
    tampered = tamper(KNOWN_NOTE)
    assert KNOWN_NOTE != tampered
    with pytest.raises(CheckpointError):
        open_checkpoint(tampered, KNOWN_VKEY, ed25519_verify)


def test_another_key_with_the_same_name_is_not_trusted() -> None:
    """A verifier key of another key pair, even under the same name, opens nothing."""
    impostor = Ed25519Signer.generate(ORIGIN)
    with pytest.raises(CheckpointError, match="no signature by the log key"):
        open_checkpoint(KNOWN_NOTE, _known_vkey(impostor), ed25519_verify)


def test_signatures_by_unknown_keys_are_ignored(signer: Ed25519Signer) -> None:
    """A witness cosignature by a key we do not know neither helps nor hurts (signed-note)."""
    witness = Ed25519Signer.generate("witness.example")
    cosigned = KNOWN_NOTE + sign_note("x\n", witness).split("\n\n")[1]
    assert Checkpoint(ORIGIN, 8, ROOT_8) == open_checkpoint(cosigned, KNOWN_VKEY, ed25519_verify)
    only_witness = (
        KNOWN_NOTE.split("\n\n", maxsplit=1)[0] + "\n\n" + cosigned.split("\n")[-2] + "\n"
    )
    with pytest.raises(CheckpointError, match="no signature by the log key"):
        open_checkpoint(only_witness, KNOWN_VKEY, ed25519_verify)


def test_every_signature_by_the_log_key_must_verify() -> None:
    """A second, bad signature line by the log key rejects the note even after a good one."""
    good_line = KNOWN_NOTE.split("\n")[-2]
    bad_note = _resign_blob(KNOWN_NOTE, lambda b: b[:-1] + bytes([b[-1] ^ 1]))
    bad_line = bad_note.split("\n")[-2]
    with pytest.raises(CheckpointError, match="does not verify"):
        open_checkpoint(KNOWN_NOTE + bad_line + "\n", KNOWN_VKEY, ed25519_verify)
    doubled = KNOWN_NOTE + good_line + "\n"
    assert ROOT_8 == open_checkpoint(doubled, KNOWN_VKEY, ed25519_verify).root_hash


def test_a_verifier_that_returns_instead_of_raising_is_refused() -> None:
    """A verify callable returning False (instead of raising) never lets a note through."""

    def lenient(public_key: bytes, message: bytes, signature: bytes) -> bool:
        return False

    with pytest.raises(CheckpointError, match="must raise"):
        open_checkpoint(KNOWN_NOTE, KNOWN_VKEY, lenient)  # type: ignore[arg-type]


def test_the_verifiers_error_becomes_a_checkpoint_error() -> None:
    """A SignatureError from ed25519_verify surfaces as CheckpointError."""
    tampered = TAMPERINGS["signature byte flipped"](KNOWN_NOTE)
    with pytest.raises(CheckpointError, match="does not verify") as caught:
        open_checkpoint(tampered, KNOWN_VKEY, ed25519_verify)
    assert caught.value.__cause__ is None


# -- well signed, badly formed bodies ------------------------------------------

ROOT_B64 = "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg="
URLSAFE_ROOT = base64.urlsafe_b64encode(bytes([0xFB]) * 32).decode()
BAD_BODIES = {
    "leading zero in size": f"{ORIGIN}\n08\n{ROOT_B64}\n",
    "plus sign in size": f"{ORIGIN}\n+8\n{ROOT_B64}\n",
    "space in size": f"{ORIGIN}\n 8\n{ROOT_B64}\n",
    "underscore in size": f"{ORIGIN}\n1_000\n{ROOT_B64}\n",
    "arabic-indic digit as size": f"{ORIGIN}\n\u0668\n{ROOT_B64}\n",
    "size past uint64": f"{ORIGIN}\n{2**64}\n{ROOT_B64}\n",
    "empty size": f"{ORIGIN}\n\n{ROOT_B64}\n",
    "root of 31 bytes": f"{ORIGIN}\n8\n{base64.b64encode(ROOT_8[:31]).decode()}\n",
    "root of 33 bytes": f"{ORIGIN}\n8\n{base64.b64encode(ROOT_8 + b'x').decode()}\n",
    "root in url-safe base64": f"{ORIGIN}\n8\n{URLSAFE_ROOT}\n",
    "root in non-canonical base64": f"{ORIGIN}\n8\n{ROOT_B64[:-2]}h=\n",
    "root without padding": f"{ORIGIN}\n8\n{ROOT_B64.rstrip('=')}\n",
    "root in hex": f"{ORIGIN}\n8\n{ROOT_8.hex()}\n",
    "two lines only": f"{ORIGIN}\n8\n",
    "extension line": f"{ORIGIN}\n8\n{ROOT_B64}\nextension\n",
    "not a checkpoint": "if this is a valid checkpoint then I'll eat my hat\n",
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_validly_signed_malformed_bodies_raise(signer: Ed25519Signer, body: str) -> None:
    """The body is checked after the signature: sizes, roots and line counts must be canonical."""
    note = sign_note(body, signer)
    assert body == open_note(note, KNOWN_VKEY, ed25519_verify)
    with pytest.raises(CheckpointError):
        open_checkpoint(note, KNOWN_VKEY, ed25519_verify)


def test_empty_origin_raises(signer: Ed25519Signer) -> None:
    """A checkpoint without an origin is refused, when built and when opened."""
    with pytest.raises(CheckpointError, match="origin"):
        Checkpoint("", 8, ROOT_8)
    note = sign_note(f"\n8\n{ROOT_B64}\n", signer)
    with pytest.raises(CheckpointError):
        open_checkpoint(note, KNOWN_VKEY, ed25519_verify)


@pytest.mark.parametrize(
    ("origin", "size", "root_hash"),
    [
        ("two\nlines", 8, ROOT_8),
        ("tab\there", 8, ROOT_8),
        (ORIGIN, -1, ROOT_8),
        (ORIGIN, 2**64, ROOT_8),
        (ORIGIN, True, ROOT_8),
        (ORIGIN, 8, ROOT_8[:31]),
        (ORIGIN, 8, ROOT_8.hex().encode()),
    ],
)
def test_checkpoint_refuses_invalid_fields(origin: str, size: int, root_hash: bytes) -> None:
    """A multi-line origin, a size outside uint64 or a root that is not 32 bytes is refused."""
    with pytest.raises(CheckpointError):
        Checkpoint(origin, size, root_hash)


@pytest.mark.parametrize(
    "text",
    [
        "Nope",
        "Nope+0928335f",
        "+0928335f+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4",
        "example.com/cvault/audit+0928335F+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4",
        "example.com/cvault/audit+0928335e+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4",
        "example.com/cvault/audit+928335f+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4",
        "example.com/cvault/audit+0928335f+AgOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4",
        "example.com/cvault/audit+0928335f+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG",
        "example.com/cvault/audit+0928335f+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4\n",
        "other+0928335f+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4",
        "two words+0928335f+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4",
    ],
)
def test_malformed_verifier_keys_raise(text: str) -> None:
    """Wrong part count, key id case, length or value, type byte, or key length all raise."""
    with pytest.raises(CheckpointError):
        parse_vkey(text)


@pytest.mark.parametrize("name", ["", "two words", "a+b", "tab\tname"])
def test_invalid_key_names_are_refused_by_vkey(name: str) -> None:
    """Key names are non-empty and hold neither spaces nor plus signs (signed-note)."""
    with pytest.raises(CheckpointError, match="key name"):
        vkey(name, bytes(32))


# -- vault.crypto.signing --------------------------------------------------------


def test_signer_matches_the_rfc8032_test_vector() -> None:
    """Ed25519Signer reproduces RFC 8032 TEST 1 (public key and signature of the empty message)."""
    s = Ed25519Signer.from_private_bytes("rfc8032", RFC8032_SECRET)
    assert RFC8032_PUBLIC == s.public_key_bytes()
    assert RFC8032_SIGNATURE == s.sign(b"")
    assert RFC8032_SECRET == s.private_bytes()
    ed25519_verify(RFC8032_PUBLIC, b"", RFC8032_SIGNATURE)


def test_verify_raises_signature_error_on_a_bad_signature(signer: Ed25519Signer) -> None:
    """A changed message, signature or key, or a wrong length, raises SignatureError."""
    pk, sig = signer.public_key_bytes(), signer.sign(b"message")
    ed25519_verify(pk, b"message", sig)
    other = Ed25519Signer.generate("other").public_key_bytes()
    flipped = bytes([sig[0] ^ 1]) + sig[1:]
    for args in [
        (pk, b"messagE", sig),
        (pk, b"message", flipped),
        (other, b"message", sig),
        (pk, b"message", sig[:-1]),
        (pk[:-1], b"message", sig),
    ]:
        with pytest.raises(SignatureError):
            ed25519_verify(*args)
    assert issubclass(SignatureError, CryptoError)


def test_signer_repr_shows_the_name_only(signer: Ed25519Signer) -> None:
    """The repr names the key and never shows private or public key material."""
    text = repr(signer)
    assert f"Ed25519Signer(name={ORIGIN!r})" == text
    secret = signer.private_bytes()
    for form in (secret.hex(), base64.b64encode(secret).decode(), str(secret)):
        assert form not in text


@pytest.mark.parametrize("name", ["", "two words", "a+b", "new\nline"])
def test_signer_refuses_names_a_note_cannot_carry(name: str) -> None:
    """A signer name must be usable as a signed-note key name."""
    with pytest.raises(ValueError, match="signer name"):
        Ed25519Signer.generate(name)


def test_signer_refuses_a_private_key_of_the_wrong_length() -> None:
    """Private keys are 32-byte seeds."""
    with pytest.raises(ValueError, match="32 bytes"):
        Ed25519Signer.from_private_bytes("x", bytes(31))


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_saved_key_file_is_owner_only_and_loads_back(tmp_path: Path, signer: Ed25519Signer) -> None:
    """save_signer writes mode 0600 JSON {name, private_key}; load_signer restores the key."""
    path = tmp_path / "keys" / "checkpoint.key"
    save_signer(path, signer)
    assert 0o600 == _mode(path)
    expected = {
        "name": ORIGIN,
        "private_key": base64.b64encode(bytes(range(32))).decode(),
    }
    assert expected == json.loads(path.read_text(encoding="utf-8"))
    loaded = load_signer(path)
    assert (signer.name, signer.public_key_bytes()) == (loaded.name, loaded.public_key_bytes())
    assert ["checkpoint.key"] == sorted(p.name for p in path.parent.iterdir())


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_load_refuses_a_key_file_others_can_read(
    tmp_path: Path, signer: Ed25519Signer, mode: int
) -> None:
    """A key file readable or writable by group or others raises KeyringError."""
    path = tmp_path / "checkpoint.key"
    save_signer(path, signer)
    path.chmod(mode)
    with pytest.raises(KeyringError, match="chmod 600"):
        load_signer(path)


def test_save_never_overwrites_an_existing_key(tmp_path: Path, signer: Ed25519Signer) -> None:
    """Saving over an existing file raises KeyringError and leaves the old key intact."""
    path = tmp_path / "checkpoint.key"
    save_signer(path, signer)
    before = path.read_bytes()
    with pytest.raises(KeyringError, match="refusing to overwrite"):
        save_signer(path, Ed25519Signer.generate("other"))
    assert before == path.read_bytes()
    assert ["checkpoint.key"] == sorted(p.name for p in tmp_path.iterdir())


def test_load_refuses_a_missing_key_file(tmp_path: Path) -> None:
    """A key file that does not exist raises KeyringError."""
    with pytest.raises(KeyringError, match="does not exist"):
        load_signer(tmp_path / "absent.key")


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        '{"name": "x"}',
        '{"name": "x", "private_key": "AAAA", "extra": 1}',
        '{"name": "x", "private_key": 5}',
        '{"name": "x", "private_key": "not base64!"}',
        '{"name": "x", "private_key": "AAAA"}',
        '{"name": "two words", "private_key": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}',
        '{"name": 7, "private_key": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}',
    ],
)
def test_load_refuses_a_malformed_key_file(tmp_path: Path, content: str) -> None:
    """Bad JSON, unknown fields, a bad name or a key that is not 32 bytes raise KeyringError."""
    path = tmp_path / "checkpoint.key"
    path.write_text(content, encoding="utf-8")
    path.chmod(0o600)
    with pytest.raises(KeyringError):
        load_signer(path)
