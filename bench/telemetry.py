"""What the domain metrics cost on the hot path, beside the floor and the peer in one run.

Under ``cvault serve`` every increment of a prometheus_client metric takes a lock and
writes to a shared file (multiprocess mode). Field decryptions are therefore tallied in
process (an ``itertools.count``) and added to the metric once per unit of work. Each
row is timed in a child process of its own (the mode is chosen when prometheus_client is
first imported), ``--rounds`` rounds of ``--fields`` field decryptions followed by what
one unit of work adds (a flush and an audit append observation):

* ``floor``: the decryptions alone, the tally switched off (a no-op counter);
* ``tally``: what the vault does (multiprocess mode);
* ``peer``: a multiprocess ``Counter.inc()`` per field, the obvious design;
* ``tally, single process``: the vault's way without multiprocess mode (tests, one
  worker started outside ``cvault serve``).

Run: ``python -m bench.telemetry [--fields 12] [--rounds 20000]``. Prints microseconds per
round (the best of 3 alternating runs of each row's median of 5) and per field.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

__all__ = ["main"]

_CHILD = r"""
import json, os, sys, time, uuid
mode, fields, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
from prometheus_client import Counter
from vault import telemetry
from vault.crypto import datakeys

key = datakeys.DataKey(uuid.uuid4(), 1, os.urandom(32))
tokens = [key.encrypt_text("Ada Lovelace", field=f"f{i}") for i in range(fields)]
peer = Counter("bench_decryptions", "per-field increments")
if mode == "floor":
    class _Off:
        def add(self): pass
        def total(self): return 0
    datakeys._OPENED = _Off()

def one_round():
    for i, token in enumerate(tokens):
        key.decrypt(token, field=f"f{i}")
        if mode == "peer":
            peer.inc()
    telemetry.flush()
    telemetry.audit_appended(0.0002, 2)

times = []
for _ in range(5):
    started = time.perf_counter()
    for _ in range(rounds):
        one_round()
    times.append((time.perf_counter() - started) / rounds * 1e6)
print(json.dumps(times))
"""


def _row(mode: str, fields: int, rounds: int, *, multiprocess: bool) -> list[float]:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    with tempfile.TemporaryDirectory(prefix="cvault-bench-metrics-") as folder:
        if multiprocess:
            env["PROMETHEUS_MULTIPROC_DIR"] = folder
        done = subprocess.run(  # noqa: S603 - this interpreter, our own child script
            [sys.executable, "-c", _CHILD, mode, str(fields), str(rounds)],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
    times: list[float] = json.loads(done.stdout)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fields", type=int, default=12, help="field decryptions per round")
    parser.add_argument("--rounds", type=int, default=20_000)
    args = parser.parse_args()
    rows = {
        "floor: decryptions, no tally": ("floor", True),
        "the vault: tally, one flush per unit": ("tally", True),
        "peer: Counter.inc per field": ("peer", True),
        "the vault, single process": ("tally", False),
    }
    print(f"{args.fields} field decryptions + one unit's metrics, us per round (median of 5)")
    best: dict[str, float] = {}
    for _ in range(3):  # the rows alternate, so drift on a shared machine hits each alike
        for label, (mode, multiprocess) in rows.items():
            times = _row(mode, args.fields, args.rounds, multiprocess=multiprocess)
            best[label] = min(best.get(label, float("inf")), statistics.median(times))
    floor = best["floor: decryptions, no tally"]
    for label, median in best.items():
        print(
            f"{label:40} {median:8.2f} us  {median / args.fields:6.2f} us/field  "
            f"+{median - floor:6.2f} us over the floor"
        )


if __name__ == "__main__":
    main()
