"""Verifying a signed receipt offline: what passes, and the reason named for what fails
(a changed body, another key, a malformed document). No vault, no database."""

from __future__ import annotations

import json
from typing import Any

import pytest

from audit.checkpoint import vkey
from consent.receipts import (
    CONSENT_RECEIPT_VERSION,
    ERASURE_RECEIPT_VERSION,
    ReceiptError,
    ReceiptKind,
    read_receipt,
    sign_receipt,
    verify_receipt,
)
from vault.crypto.signing import Ed25519Signer, ed25519_verify

SIGNER = Ed25519Signer.from_private_bytes("customer-vault", bytes(range(32)))
OTHER = Ed25519Signer.from_private_bytes("customer-vault", bytes(range(1, 33)))
KEY = vkey(SIGNER.name, SIGNER.public_key_bytes())
OTHER_KEY = vkey(OTHER.name, OTHER.public_key_bytes())
CONTROLLER = "\u0634\u0631\u06a9\u062a \u0646\u0645\u0648\u0646\u0647"  # a company, in Persian
NOTICE = "\u0e1b\u0e23\u0e30\u0e01\u0e32\u0e28-2"  # notice-2, in Thai
PURPOSE_TEXT = "\u53d1\u9001\u8425\u9500\u90ae\u4ef6"  # send marketing e-mail, in Chinese


def consent_body() -> dict[str, Any]:
    return {
        "version": CONSENT_RECEIPT_VERSION,
        "consentReceiptID": "9b7c1d7e-0000-4000-8000-000000000001",
        "piiPrincipalId": "9b7c1d7e-0000-4000-8000-000000000002",
        "piiControllers": [{"piiController": CONTROLLER, "onBehalf": False}],
        "services": [{"service": "customer-vault", "purposes": [{"purpose": PURPOSE_TEXT}]}],
        "state": "granted",
        "noticeVersion": NOTICE,
        "language": "fa",
        "jurisdiction": "DE",
        "consentTimestamp": 1_796_000_000,
    }


def erasure_body() -> dict[str, Any]:
    return {
        "version": ERASURE_RECEIPT_VERSION,
        "receiptType": "erasure",
        "requestId": "9b7c1d7e-0000-4000-8000-000000000003",
        "piiPrincipalId": "9b7c1d7e-0000-4000-8000-000000000002",
        "piiControllers": [{"piiController": CONTROLLER}],
        "jurisdiction": "TH",
        "language": "th",
        "erasedAt": "2026-12-07T10:00:00+00:00",
        "erased": {"piiFields": ["email", "first_name", "attr:nickname"]},
    }


def test_a_receipt_in_persian_thai_and_chinese_verifies_as_written_and_as_escaped() -> None:
    """The body round-trips exactly, whether the file holds the characters or \\u escapes."""
    signed = sign_receipt(SIGNER, consent_body())
    for text in (json.dumps(signed, ensure_ascii=False, indent=2), json.dumps(signed)):
        body = verify_receipt(read_receipt(text), ed25519_verify, trusted_key=KEY,
                              kind=ReceiptKind.CONSENT)  # fmt: skip
        assert consent_body() == body


def test_an_erasure_receipt_verifies_as_an_erasure_receipt() -> None:
    """The erasure kind checks its own fields; asking for a consent receipt names the kind."""
    signed = sign_receipt(SIGNER, erasure_body())
    assert erasure_body() == verify_receipt(signed, ed25519_verify, kind=ReceiptKind.ERASURE)
    with pytest.raises(ReceiptError) as caught:
        verify_receipt(signed, ed25519_verify, kind=ReceiptKind.CONSENT)
    assert str(caught.value) == "this is an erasure receipt, not a consent receipt"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("state",), "withdrawn"),
        (("noticeVersion",), NOTICE + " "),
        (("piiControllers", 0, "piiController"), "\u0634\u0631\u06a9\u062a"),
        (("services", 0, "purposes", 0, "purpose"), "\u53d1\u9001"),
        (("consentTimestamp",), 1_796_000_001),
    ],
)
def test_any_change_to_the_body_breaks_the_signature(
    path: tuple[str | int, ...], value: object
) -> None:
    """One changed value anywhere, in any script, and the receipt no longer verifies."""
    signed = json.loads(json.dumps(sign_receipt(SIGNER, consent_body())))
    target = signed["receipt"]
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    with pytest.raises(ReceiptError) as caught:
        verify_receipt(signed, ed25519_verify, trusted_key=KEY)
    expected = "signature does not verify: the receipt was changed after it was signed"
    assert expected == str(caught.value)


def test_a_receipt_re_signed_with_another_key_fails_against_the_pinned_key() -> None:
    """A forger's own key verifies its own signature; pinning the vault's key catches it."""
    forged = sign_receipt(OTHER, {**consent_body(), "state": "withdrawn"})
    verify_receipt(forged, ed25519_verify)  # self-consistent, proves nothing about origin
    with pytest.raises(ReceiptError) as caught:
        verify_receipt(forged, ed25519_verify, trusted_key=KEY)
    expected = (
        f"wrong key: signed by {OTHER_KEY.rsplit('+', 1)[0]}, not by the pinned key "
        f"{KEY.rsplit('+', 1)[0]}"
    )
    assert expected == str(caught.value)


def test_a_signature_swapped_in_from_another_key_does_not_verify() -> None:
    """The vault's key left in place over another key's signature: it does not verify."""
    signed = sign_receipt(SIGNER, consent_body())
    signed["signature"]["value"] = sign_receipt(OTHER, consent_body())["signature"]["value"]
    with pytest.raises(ReceiptError) as caught:
        verify_receipt(signed, ed25519_verify, trusted_key=KEY)
    assert str(caught.value).startswith("signature does not verify")


def _mangled(change: str) -> dict[str, Any]:
    signed = sign_receipt(SIGNER, consent_body())
    sig = signed["signature"]
    if change == "no receipt":
        del signed["receipt"]
    elif change == "no signature":
        signed["signature"] = "x"
    elif change == "alg":
        sig["alg"] = "RS256"
    elif change == "key":
        sig["key"] = "customer-vault+00000000+AAAA"
    elif change == "value":
        sig["value"] = "not base64!"
    elif change == "short value":
        sig["value"] = "AAAA"
    return signed


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("no receipt", "field 'receipt' is missing or not an object"),
        ("no signature", "field 'signature' is missing or not an object"),
        ("alg", "field 'signature.alg' must be 'Ed25519'"),
        ("key", "field 'signature.key' is not a verifier key"),
        ("value", "field 'signature.value' is not the base64 of a 64-byte signature"),
        ("short value", "field 'signature.value' is not the base64 of a 64-byte signature"),
    ],
)
def test_a_malformed_document_names_the_field(change: str, reason: str) -> None:
    """Each structural fault is refused with the field it is in."""
    with pytest.raises(ReceiptError) as caught:
        verify_receipt(_mangled(change), ed25519_verify, trusted_key=KEY)
    assert str(caught.value).startswith(reason)


def test_a_signed_body_missing_a_required_field_is_refused_by_name() -> None:
    """Authentic but incomplete: the kind check names the missing field."""
    body = consent_body()
    del body["noticeVersion"]
    with pytest.raises(ReceiptError) as caught:
        verify_receipt(sign_receipt(SIGNER, body), ed25519_verify, kind=ReceiptKind.CONSENT)
    assert str(caught.value) == "field 'receipt.noticeVersion' is missing or not a string"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{\n  "receipt": {},\n  "signature": {,}\n}', "line 3, column 17: not JSON"),
        ("[1, 2]", "line 1: a receipt is a JSON object"),
        ('{"receipt": {"state": "granted", "state": "withdrawn"}}', "field 'state' appears twice"),
        ('{"receipt": {"n": NaN}}', "NaN is not a JSON value"),
        ("", "line 1, column 1: not JSON"),
    ],
)
def test_reading_a_malformed_file_names_the_line_or_the_field(text: str, reason: str) -> None:
    """JSON errors name line and column; a duplicate key (one reader would see one value,
    the signature covers the other) is refused by name."""
    with pytest.raises(ReceiptError) as caught:
        read_receipt(text)
    assert str(caught.value).startswith(reason)
