"""Opaque handles (vault.crypto.handles): the global ids and cursors the API gives out."""

from __future__ import annotations

import base64
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.crypto.handles import HandleInvalid, Handles

ROOT = bytes(range(32))
PAYLOAD = "Customer:6f1c0a52-3b7e-4c1e-9d2a-0b5e8f3c7a41"


def test_a_handle_opens_as_its_payload_and_reads_as_base64url() -> None:
    """A handle opens as the payload it sealed, for the same use; decoded as base64url it
    starts with the payload (the type and id stay readable) followed by a 16-byte tag."""
    handles = Handles(ROOT)
    handle = handles.seal("node", PAYLOAD)
    assert handles.open("node", handle) == PAYLOAD
    raw = base64.urlsafe_b64decode(handle + "=" * (-len(handle) % 4))
    assert (raw[: len(PAYLOAD)].decode(), len(raw) - len(PAYLOAD)) == (PAYLOAD, 16)
    assert set(handle) <= set(string.ascii_letters + string.digits + "-_")


def test_a_handle_is_the_same_text_release_after_release() -> None:
    """Clients keep the ids and cursors they were given: the same root key, use and
    payload seal to the same handle as before (a known answer, made by the first
    release's construction: base64url of the payload and its keyed BLAKE2b-128)."""
    assert Handles(ROOT).seal("node", PAYLOAD) == (
        "Q3VzdG9tZXI6NmYxYzBhNTItM2I3ZS00YzFlLTlkMmEtMGI1ZThmM2M3YTQxOoPRbNzMNjtqNe2oAl1qqQ"
    )


@given(st.text(alphabet=string.printable, max_size=200))
def test_any_ascii_payload_round_trips(payload: str) -> None:
    """Every ASCII payload up to the handle's size limit opens as itself."""
    handles = Handles(ROOT)
    assert handles.open("cursor:customers", handles.seal("cursor:customers", payload)) == payload


def test_every_changed_character_is_refused() -> None:
    """Changing any one character of a handle (to any other base64url character), or
    cutting it short, makes it refused with HandleInvalid."""
    handles = Handles(ROOT)
    handle = handles.seal("node", PAYLOAD)
    alphabet = string.ascii_letters + string.digits + "-_"
    refused = 0
    for n, char in enumerate(handle):
        for other in alphabet:
            if other == char:
                continue
            with pytest.raises(HandleInvalid):
                handles.open("node", handle[:n] + other + handle[n + 1 :])
            refused += 1
    for cut in range(len(handle)):
        with pytest.raises(HandleInvalid):
            handles.open("node", handle[:cut])
    assert refused == len(handle) * (len(alphabet) - 1)


def test_a_handle_sealed_for_one_use_or_key_does_not_open_for_another() -> None:
    """A node id is not a cursor, a customers cursor is not an interactions cursor, and a
    handle made under another root key opens nowhere."""
    handles = Handles(ROOT)
    for sealed_for, opened_for in (("node", "cursor:customers"), ("cursor:a", "cursor:b")):
        with pytest.raises(HandleInvalid):
            handles.open(opened_for, handles.seal(sealed_for, PAYLOAD))
    with pytest.raises(HandleInvalid):
        handles.open("node", Handles(bytes(32)).seal("node", PAYLOAD))


@pytest.mark.parametrize(
    "garbled",
    ["", "!!!!", "é", "a" * 513, "Q3VzdG9tZXI6eA", "Q3VzdG9tZXI6eA==", " " + "A" * 40],
    ids=["empty", "not-base64", "not-ascii", "too-long", "no-tag", "padded", "space"],
)
def test_garbled_text_is_refused_without_naming_it(garbled: str) -> None:
    """Text that is not a handle at all raises HandleInvalid, whose message names no value."""
    with pytest.raises(HandleInvalid) as raised:
        Handles(ROOT).open("node", garbled)
    assert str(raised.value) in {"the handle is malformed", "the handle does not verify"}


def test_a_non_canonical_spelling_of_a_handle_is_refused() -> None:
    """A handle spelled with padding, or with the standard alphabet's + and /, is not the
    handle the vault gave out: refused (one handle, one spelling)."""
    handles = Handles(ROOT)
    handle = next(h for n in range(64) if len(h := handles.seal("node", f"x:{n}")) % 4)
    for other in (handle + "=" * (-len(handle) % 4), handle.replace("-", "+").replace("_", "/")):
        if other == handle:
            continue
        with pytest.raises(HandleInvalid):
            handles.open("node", other)


def test_a_short_root_key_is_refused_and_the_repr_shows_nothing() -> None:
    """The root key has at least 32 bytes; the object's repr holds no key material."""
    with pytest.raises(ValueError, match="at least 32 bytes"):
        Handles(bytes(31))
    assert repr(Handles(ROOT)) == "Handles()"
