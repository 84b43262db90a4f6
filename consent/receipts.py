"""Signed receipts: a consent change or an erasure, as JSON anyone can verify offline.

A receipt is ``{"receipt": BODY, "signature": {"alg", "key", "value"}}``. The
signature is Ed25519 over ``b"cvault/receipt/v1\\n"`` followed by the canonical
JSON of BODY (sorted keys, compact, UTF-8), made with the vault's audit signing
key; ``key`` is that key's verifier text (``cvault audit public-key``). Bodies
hold ids, purposes, times and enum words: never a PII value.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from typing import Any

from audit.checkpoint import Signer, parse_vkey, vkey

__all__ = ["ReceiptError", "canonical", "sign_receipt", "verify_receipt"]

_CONTEXT = b"cvault/receipt/v1\n"


class ReceiptError(ValueError):
    """A receipt is malformed or its signature does not verify."""


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


def verify_receipt(
    document: Mapping[str, Any],
    verify: Callable[[bytes, bytes, bytes], None],
    *,
    trusted_key: str | None = None,
) -> dict[str, Any]:
    """The receipt body if the signature verifies (against ``trusted_key`` when given);
    raises :class:`ReceiptError` otherwise."""
    body = document.get("receipt")
    sig = document.get("signature")
    if not isinstance(body, dict) or not isinstance(sig, dict) or sig.get("alg") != "Ed25519":
        raise ReceiptError("not a signed receipt")
    key_text = sig.get("key")
    if not isinstance(key_text, str) or (trusted_key is not None and key_text != trusted_key):
        raise ReceiptError("receipt is signed by another key")
    try:
        _name, public_key = parse_vkey(key_text)
        signature = base64.b64decode(str(sig.get("value")), validate=True)
        verify(public_key, _CONTEXT + canonical(body), signature)
    except Exception as exc:  # every failure is one ReceiptError
        raise ReceiptError("receipt signature does not verify") from exc
    return body
