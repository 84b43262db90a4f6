"""Key providers (issue 17): the key file against a PKCS#11 token (SoftHSM2), same run.

For each provider, N blind indexes (``BlindIndexer.index`` of distinct e-mail addresses),
N data keys wrapped and N unwrapped (``KeyProvider.wrap`` / ``unwrap``), with the floor
measured beside them: the same HMAC-SHA256 (the standard library's) and AES-256-GCM
(seal + open, the vault's own field encryption, ``DataKey``) computed in process with no
provider in between. One row runs the token's blind indexes on two
threads (the provider serialises its calls into one module: it shows what that costs).
Rows run in rotation, ``--repeat`` times; the median decides.

The token is made for the run in a temporary folder (its own ``softhsm2.conf``), so
nothing touches the machine's tokens.
Run: ``python -m bench.key_providers [--n 10000] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import secrets
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

from vault.crypto import BlindIndexer, DataKey, KeyProvider, Keyring, WrappedKey

__all__ = ["main"]

_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
_TOKEN = "PKCS#11 (SoftHSM2)"  # noqa: S105 - a row name, not a password


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _softhsm(folder: Path) -> tuple[str, str]:
    """A token in a SoftHSM2 of this run's own: its label and user PIN."""
    util = shutil.which("softhsm2-util")
    if util is None or not Path(_MODULE).exists():
        raise SystemExit("SoftHSM2 is missing: apt-get install softhsm2")
    (folder / "tokens").mkdir()
    conf = folder / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {folder / 'tokens'}\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    label, pin = "bench", secrets.token_hex(8)
    subprocess.run(  # noqa: S603
        [util, "--init-token", "--free", "--label", label, "--so-pin", pin, "--pin", pin],
        check=True,
        capture_output=True,
    )
    return label, pin


def _row(name: str, n: int, runs: list[float], floor: float) -> str:
    best, median = min(runs), statistics.median(runs)
    us = median / n * 1e6
    return f"| {name} | {n:,} | {best:.3f} | {median:.3f} | {us:.1f} | {median / floor:.1f}x |"


def _two_threads(indexer: BlindIndexer, emails: list[str]) -> None:
    half = len(emails) // 2
    workers = [
        threading.Thread(target=lambda part=part: [indexer.index("email", e) for e in part])
        for part in (emails[:half], emails[half:])
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def _indexes(indexer: BlindIndexer, emails: list[str]) -> list[int]:
    return [indexer.index("email", e) for e in emails]


def _wraps(provider: KeyProvider, customers: list[uuid.UUID], key: bytes) -> list[WrappedKey]:
    return [provider.wrap(cid, 1, key) for cid in customers]


def _unwraps(
    provider: KeyProvider, customers: list[uuid.UUID], wrapped: list[WrappedKey]
) -> list[bytes]:
    return [provider.unwrap(c, 1, w) for c, w in zip(customers, wrapped, strict=True)]


def _work(rings: dict[str, Keyring], n: int) -> dict[str, Callable[[], object]]:
    """Each row's work, by name: floors first, then each provider."""
    emails = [f"customer.{i}@example.com" for i in range(n)]
    customers = [uuid.uuid4() for _ in range(n)]
    data_key = os.urandom(32)
    subkey = hmac.new(os.urandom(32), b"cvault/blind-index/v1/email", "sha256").digest()
    keyed = hmac.new(subkey, digestmod=hashlib.sha256)
    sealer = DataKey(uuid.uuid4(), 1, os.urandom(32))

    def floor_index() -> None:
        for email in emails:
            mac = keyed.copy()
            mac.update(email.encode())
            mac.digest()

    def floor_wrap() -> None:
        for cid in customers:
            sealed = sealer.encrypt(data_key, field="wrap", record_id=cid)
            sealer.decrypt(sealed, field="wrap", record_id=cid)

    work: dict[str, Callable[[], object]] = {
        "blind index, floor (HMAC in process)": floor_index,
        "wrap + unwrap, floor (AES-GCM in process)": floor_wrap,
    }
    for name, ring in rings.items():
        indexer, provider = ring.blind_indexer, ring.provider
        wrapped = [provider.wrap(cid, 1, data_key) for cid in customers]
        work[f"blind index, {name}"] = partial(_indexes, indexer, emails)
        work[f"wrap, {name}"] = partial(_wraps, provider, customers, data_key)
        work[f"unwrap, {name}"] = partial(_unwraps, provider, customers, wrapped)
    token = rings[_TOKEN].blind_indexer
    work[f"blind index, {_TOKEN}, 2 threads"] = lambda: _two_threads(token, emails)
    return work


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000, help="operations per row")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each row (alternating)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        label, pin = _softhsm(folder)
        token_ring, _ = Keyring.create_pkcs11(
            folder / "hsm" / "keyring.json", module=_MODULE, token=label, pin=pin,
            population=1_000_000,
        )  # fmt: skip
        rings = {
            "key file": Keyring.create(folder / "file" / "keyring.json", population=1_000_000),
            _TOKEN: token_ring,
        }
        work = _work(rings, args.n)
        runs: dict[str, list[float]] = {name: [] for name in work}
        for _ in range(args.repeat):
            for name, fn in work.items():
                runs[name].append(_timed(fn))
        token_ring.close()
    floors = {
        "blind index": statistics.median(runs["blind index, floor (HMAC in process)"]),
        "wrap": statistics.median(runs["wrap + unwrap, floor (AES-GCM in process)"]),
    }
    print("| what | operations | best s | median s | us per operation (median) | vs floor |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    order = [
        "blind index, floor (HMAC in process)",
        *(f"blind index, {name}" for name in rings),
        f"blind index, {_TOKEN}, 2 threads",
        "wrap + unwrap, floor (AES-GCM in process)",
        *(f"{op}, {name}" for name in rings for op in ("wrap", "unwrap")),
    ]
    for name in order:
        floor = floors["blind index" if name.startswith("blind") else "wrap"]
        print(_row(name, args.n, runs[name], floor))


if __name__ == "__main__":
    main()
