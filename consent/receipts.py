"""Signed receipts: a consent change or an erasure, as JSON anyone can verify offline.

A receipt is ``{"receipt": BODY, "signature": {"alg", "key", "value"}}``. The
signature is Ed25519 over ``b"cvault/receipt/v1\\n"`` followed by the canonical
JSON of BODY (sorted keys, compact, UTF-8), made with the vault's audit signing
key; ``key`` is that key's verifier text (``cvault audit public-key``). Bodies
hold ids, purposes, field names, times and enum words: never a PII value.

Verifying needs no vault: :func:`read_receipt` parses a receipt file strictly (a
duplicate key or a bare NaN is refused: what a reader sees must be what was signed),
:func:`verify_receipt` checks the signature with the key embedded in the receipt, or
against a pinned key, and that the body is the kind of receipt expected. Every failure
is one :class:`ReceiptError` whose message names the line or the field.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any

from audit.checkpoint import CheckpointError, Signer, parse_vkey, vkey

__all__ = [
    "CONSENT_RECEIPT_VERSION",
    "ERASURE_RECEIPT_VERSION",
    "ReceiptError",
    "ReceiptKind",
    "canonical",
    "key_label",
    "read_receipt",
    "receipt_kind",
    "sign_receipt",
    "verify_receipt",
]

_CONTEXT = b"cvault/receipt/v1\n"
CONSENT_RECEIPT_VERSION = "KI-CR-v1.1.0"  # Kantara Consent Receipt v1.1
ERASURE_RECEIPT_VERSION = "cvault-erasure-receipt/v1"


class ReceiptError(ValueError):
    """A receipt is malformed or its signature does not verify; the message says where."""


class ReceiptKind(StrEnum):
    CONSENT = "consent"
    ERASURE = "erasure"


# The body fields each kind must carry (as strings), beyond what identifies the kind.
_REQUIRED: dict[ReceiptKind, tuple[str, ...]] = {
    ReceiptKind.CONSENT: (
        "consentReceiptID", "piiPrincipalId", "state", "noticeVersion", "language",
        "jurisdiction",
    ),
    ReceiptKind.ERASURE: ("requestId", "piiPrincipalId", "jurisdiction", "erasedAt"),
}  # fmt: skip


_NAMED = {ReceiptKind.CONSENT: "a consent receipt", ReceiptKind.ERASURE: "an erasure receipt"}


def canonical(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign_receipt(signer: Signer, body: Mapping[str, Any]) -> dict[str, Any]:
    """The signed receipt document for ``body``."""
    signature = signer.sign(_CONTEXT + canonical(body))
    return {
        "receipt": dict(body),
        "signature": {
            "alg": "Ed25519",
            "key": vkey(signer.name, signer.public_key_bytes()),
            "value": base64.b64encode(signature).decode("ascii"),
        },
    }


def key_label(key_text: str) -> str:
    """``<name>+<key id>`` of a verifier key text: enough to tell two keys apart."""
    return key_text.rsplit("+", 1)[0]


def read_receipt(text: str) -> dict[str, Any]:
    """A receipt document parsed from JSON text; raises :class:`ReceiptError` naming the
    line and column of a syntax error, or the key that appears twice in one object."""
    try:
        document = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ReceiptError(f"line {exc.lineno}, column {exc.colno}: not JSON ({exc.msg})") from None
    if not isinstance(document, dict):
        raise ReceiptError("line 1: a receipt is a JSON object")
    return document


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ReceiptError(f"field {key!r} appears twice in one object")
        out[key] = value
    return out


def _no_constant(name: str) -> None:
    raise ReceiptError(f"{name} is not a JSON value")


def receipt_kind(body: Mapping[str, Any]) -> ReceiptKind:
    """Which receipt a body is: a consent receipt or an erasure receipt."""
    if body.get("version") == CONSENT_RECEIPT_VERSION:
        return ReceiptKind.CONSENT
    if body.get("version") == ERASURE_RECEIPT_VERSION and body.get("receiptType") == "erasure":
        return ReceiptKind.ERASURE
    raise ReceiptError(
        f"field 'receipt.version' names no known receipt ({CONSENT_RECEIPT_VERSION} or "
        f"{ERASURE_RECEIPT_VERSION})"
    )


def verify_receipt(
    document: Mapping[str, Any],
    verify: Callable[[bytes, bytes, bytes], None],
    *,
    trusted_key: str | None = None,
    kind: ReceiptKind | None = None,
) -> dict[str, Any]:
    """The receipt body if the signature verifies (against ``trusted_key`` when given)
    and, when ``kind`` is given, the body is that kind of receipt with its fields;
    raises :class:`ReceiptError` naming the field otherwise."""
    body = document.get("receipt")
    sig = document.get("signature")
    if not isinstance(body, dict):
        raise ReceiptError("field 'receipt' is missing or not an object")
    if not isinstance(sig, dict):
        raise ReceiptError("field 'signature' is missing or not an object")
    if sig.get("alg") != "Ed25519":
        raise ReceiptError("field 'signature.alg' must be 'Ed25519'")
    key_text = sig.get("key")
    if not isinstance(key_text, str):
        raise ReceiptError("field 'signature.key' is missing or not a string")
    try:
        _name, public_key = parse_vkey(key_text)
    except (CheckpointError, ValueError) as exc:
        raise ReceiptError(f"field 'signature.key' is not a verifier key ({exc})") from None
    if trusted_key is not None and key_text != trusted_key:
        raise ReceiptError(
            f"wrong key: signed by {key_label(key_text)}, not by the pinned key "
            f"{key_label(trusted_key)}"
        )
    value = sig.get("value")
    try:
        signature = base64.b64decode(str(value), validate=True) if isinstance(value, str) else b""
    except (binascii.Error, ValueError):
        signature = b""
    if len(signature) != 64:
        raise ReceiptError("field 'signature.value' is not the base64 of a 64-byte signature")
    try:
        verify(public_key, _CONTEXT + canonical(body), signature)
    except Exception as exc:  # every failure is one ReceiptError
        raise ReceiptError(
            "signature does not verify: the receipt was changed after it was signed"
        ) from exc
    if kind is not None:
        _check_kind(body, kind)
    return body


def _check_kind(body: Mapping[str, Any], kind: ReceiptKind) -> None:
    found = receipt_kind(body)
    if found is not kind:
        raise ReceiptError(f"this is {_NAMED[found]}, not {_NAMED[kind]}")
    for name in _REQUIRED[kind]:
        if not isinstance(body.get(name), str) or not body[name]:
            raise ReceiptError(f"field 'receipt.{name}' is missing or not a string")
