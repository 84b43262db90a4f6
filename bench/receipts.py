"""Offline receipt verification, beside its floor in the same run.

* in process, per receipt (a consent receipt with Persian, Thai and Chinese text):
  the floor is one Ed25519 verification of the same signed bytes (``ed25519_verify``);
  ours reads the file's JSON strictly, re-encodes the body canonically, checks the key,
  the signature and the kind (``read_receipt`` + ``verify_receipt``);
* as a command, per run (a fresh process): the floor is ``python -c pass``, the peer
  ``cvault --help``; ours ``cvault consent verify-receipt FILE --public-key KEY``.

Run: ``python -m bench.receipts [--receipts 5000] [--runs 7]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from audit.checkpoint import vkey
from consent.receipts import (
    _CONTEXT,
    ReceiptKind,
    canonical,
    read_receipt,
    sign_receipt,
    verify_receipt,
)
from tests.consent.test_receipt_verification import consent_body
from vault.crypto.signing import Ed25519Signer, ed25519_verify

__all__ = ["main"]


def _in_process(count: int) -> tuple[float, float]:
    signer = Ed25519Signer.generate("bench")
    key = vkey(signer.name, signer.public_key_bytes())
    signed = sign_receipt(signer, consent_body())
    text = json.dumps(signed, ensure_ascii=False, indent=2)
    message = _CONTEXT + canonical(signed["receipt"])
    raw = signer.sign(message)
    public = signer.public_key_bytes()
    started = time.perf_counter()
    for _ in range(count):
        ed25519_verify(public, message, raw)
    floor = (time.perf_counter() - started) / count
    started = time.perf_counter()
    for _ in range(count):
        verify_receipt(read_receipt(text), ed25519_verify, trusted_key=key,
                       kind=ReceiptKind.CONSENT)  # fmt: skip
    ours = (time.perf_counter() - started) / count
    return floor, ours


def _command(runs: int) -> dict[str, float]:
    signer = Ed25519Signer.generate("bench")
    with tempfile.TemporaryDirectory() as tmp:
        receipt = Path(tmp) / "r.json"
        receipt.write_text(json.dumps(sign_receipt(signer, consent_body())), encoding="utf-8")
        key = vkey(signer.name, signer.public_key_bytes())
        py = sys.executable
        rows = {
            "floor: python -c pass": [py, "-c", "pass"],
            "peer: cvault --help": [py, "-m", "api.cli", "--help"],
            "cvault consent verify-receipt": [
                py, "-m", "api.cli", "consent", "verify-receipt", str(receipt),
                "--public-key", key,
            ],
        }  # fmt: skip
        env = {**os.environ, "CVAULT_DATA_DIR": tmp}
        times: dict[str, list[float]] = {name: [] for name in rows}
        for _ in range(runs):  # alternating, so that drift hits every row alike
            for name, argv in rows.items():
                started = time.perf_counter()
                subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)  # noqa: S603
                times[name].append(time.perf_counter() - started)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receipts", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    floor, ours = _in_process(args.receipts)
    print(f"in process, {args.receipts} receipts (per receipt):")
    print(f"  floor: ed25519_verify          {floor * 1e6:8.1f} us")
    print(f"  read_receipt + verify_receipt  {ours * 1e6:8.1f} us  ({ours / floor:.2f}x floor)")
    print(f"as a command, median of {args.runs} runs:")
    for name, median in _command(args.runs).items():
        print(f"  {name:32} {median * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
