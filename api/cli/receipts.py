"""``cvault consent verify-receipt`` and ``cvault dsr verify-receipt``: check a signed
receipt offline, with no vault, database or keyring.

The receipt file is the JSON document the vault handed out (GraphQL ``consentReceipt``,
the privacy page's download, ``cvault dsr process --output``). Without ``--public-key``
the signature is checked with the key the receipt names, which proves it was not changed
since it was signed but not who signed it; ``--public-key`` (the text ``cvault audit
public-key`` prints, or a file holding it) pins the vault's key. Exit codes: 0 valid,
1 invalid (tampered, wrong key, malformed: the message names the line or the field),
2 a usage error (an unreadable file, a malformed pinned key).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from api.cli.common import EXIT_REJECTED, EXIT_USAGE, fail, out

if TYPE_CHECKING:
    from consent.receipts import ReceiptKind

__all__ = ["consent_verify_receipt", "dsr_verify_receipt"]

ReceiptFile = Annotated[Path, typer.Argument(help="The receipt JSON file.", show_default=False)]
PublicKey = Annotated[
    str | None,
    typer.Option(
        "--public-key",
        help="Pin the vault's key: the text `cvault audit public-key` prints, or a file "
        "holding it. Without it the key the receipt names is used.",
    ),
]


def consent_verify_receipt(file: ReceiptFile, public_key: PublicKey = None) -> None:
    """Check a consent receipt's signature offline; exit 0 if valid, 1 if not."""
    from consent.receipts import ReceiptKind

    _verify(file, public_key, ReceiptKind.CONSENT)


def dsr_verify_receipt(file: ReceiptFile, public_key: PublicKey = None) -> None:
    """Check an erasure receipt's signature offline; exit 0 if valid, 1 if not."""
    from consent.receipts import ReceiptKind

    _verify(file, public_key, ReceiptKind.ERASURE)


def _verify(file: Path, public_key: str | None, kind: ReceiptKind) -> None:
    from audit.checkpoint import CheckpointError, parse_vkey
    from consent.receipts import ReceiptError, ReceiptKind, key_label, read_receipt, verify_receipt
    from vault.crypto.signing import ed25519_verify

    pinned = None
    if public_key is not None:
        pinned = _pinned_key(public_key)
        try:
            parse_vkey(pinned)
        except (CheckpointError, ValueError) as exc:
            raise fail(f"--public-key: not a verifier key ({exc})", EXIT_USAGE) from None
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise fail(f"{file}: is not UTF-8 text", EXIT_REJECTED) from None
    except OSError as exc:
        raise fail(f"{file}: cannot be read ({exc.strerror})", EXIT_USAGE) from None
    try:
        document = read_receipt(text)
        body = verify_receipt(document, ed25519_verify, trusted_key=pinned, kind=kind)
    except ReceiptError as exc:
        raise fail(f"{file}: invalid: {exc}", EXIT_REJECTED) from None
    signed_by = key_label(str(document["signature"]["key"]))
    ident = body["consentReceiptID"] if kind is ReceiptKind.CONSENT else body["requestId"]
    how = "the pinned key" if pinned is not None else "the key the receipt names (not pinned)"
    out.print(
        f"valid: {kind.value} receipt {ident}, signed by {signed_by} ({how})",
        markup=False, highlight=False, soft_wrap=True,
    )  # fmt: skip


def _pinned_key(value: str) -> str:
    """The verifier key text: ``value`` itself, or the content of the file it names."""
    path = Path(value)
    if path.is_file():
        try:
            return path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            raise fail(f"--public-key: {path} cannot be read", EXIT_USAGE) from None
    return value.strip()
