"""The pages' secrets (vault.crypto.pages): codes, digests, signed values, MACs."""

from __future__ import annotations

import uuid

import pytest

from vault.crypto.pages import CodeMismatch, PageSecrets, SignatureInvalid

ROOT = bytes(range(32))


def test_codes_are_eight_digits_and_checked_against_a_keyed_digest() -> None:
    """A code is 8 digits; its digest depends on the challenge and the key, and only the
    right code for the right challenge passes."""
    secrets = PageSecrets(ROOT)
    challenge = uuid.uuid4()
    code, digest = secrets.new_code(challenge)
    assert (len(code), code.isdigit(), code in digest) == (8, True, False)
    secrets.check_code(challenge, code, digest)
    for other_challenge, other_code in ((uuid.uuid4(), code), (challenge, "00000000")):
        if other_code == code and other_challenge == challenge:
            continue
        with pytest.raises(CodeMismatch):
            secrets.check_code(other_challenge, other_code, digest)
    with pytest.raises(CodeMismatch):
        PageSecrets(bytes(32)).check_code(challenge, code, digest)


def test_sealed_values_and_macs_refuse_any_change() -> None:
    """A sealed value opens as itself; a changed value, a changed MAC, a MAC made for
    another use, or a malformed value raises SignatureInvalid."""
    secrets = PageSecrets(ROOT)
    sealed = secrets.seal("cookie", "token123")
    assert secrets.unseal("cookie", sealed) == "token123"
    for bad in (sealed.replace("token123", "token124"), sealed[:-1] + "A", "nodot", ".x"):
        with pytest.raises(SignatureInvalid):
            secrets.unseal("cookie", bad)
    with pytest.raises(SignatureInvalid):
        secrets.unseal("other-use", sealed)
    mac = secrets.mac("csrf", "browser")
    secrets.check("csrf", "browser", mac)
    with pytest.raises(SignatureInvalid):
        secrets.check("csrf", "browser2", mac)
    assert repr(secrets) == "PageSecrets()"
