"""Customer import with duplicate detection, beside the same import without it.

For each backend (SQLite file, PostgreSQL) the same pre-generated CSV of N distinct
customers (email, phone, first and last name in several scripts, birth date, source +
external id) is imported twice, each time into a fresh vault:

* ``detect``: ``import_customers`` as shipped: per batch of 500, one blind-index lookup
  per field (email, phone) and one of external ids, candidates decrypted and compared,
  duplicates within the batch recognised, then the creates;
* ``floor``: the same call with ``detect_duplicates=False``: only stored external ids
  are recognised (the import before identity resolution).

Reported: rows/s (wall), CPU seconds of the process, and the ratio detect/floor of
rows/s (the target is >= 0.8). Run: ``python -m bench.importing --rows 100000``.
``--together`` runs the two imports at the same time (one process each), so that both
meet the same load on a shared machine (and the run takes half as long).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import random
import tempfile
import time
from pathlib import Path

from bench.common import drop_target, emit, fork_map, new_target, open_vault
from vault.importing import import_customers

FIRST = ["Zahra", "\u067e\u0631\u06cc\u0633\u0627", "\u0e2a\u0e21\u0e0a\u0e32\u0e22", "\u4f1f",
         "Ren\u00e9e", "Ada", "Noor", "Kenji"]  # fmt: skip
LAST = ["\u0645\u062d\u0645\u062f\u06cc", "\u0e43\u0e08\u0e14\u0e35", "\u738b",
        "Fran\u00e7ois", "Lovelace", "Silva", "Tanaka"]  # fmt: skip


def write_file(path: Path, rows: int, seed: int) -> None:
    """N distinct customers: every email, phone and external id unique."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(
            ["email", "phone", "first_name", "last_name", "birth_date", "source", "external_id"]
        )
        for i in range(rows):
            out.writerow([
                f"user{i}@example.com",
                f"+4915{i:09d}",
                rng.choice(FIRST),
                rng.choice(LAST),
                f"{rng.randint(1940, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                "shop",
                f"S{i}",
            ])  # fmt: skip


def run(backend: str, path: Path, rows: int, *, detect: bool, workdir: Path) -> dict[str, float]:
    name = "detect" if detect else "floor"
    (workdir / backend / name).mkdir(parents=True, exist_ok=True)
    target = new_target(backend, workdir / backend / name, name)
    vault = open_vault(target)
    try:
        cpu, wall = time.process_time(), time.perf_counter()
        report = import_customers(vault, path, detect_duplicates=detect)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        vault.close()
        drop_target(target)
    if report.accepted != rows:
        raise SystemExit(f"{backend}: expected {rows} accepted, got {report}")
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "rows_per_s": round(rows / wall, 1)}


def _run_task(task: tuple[str, Path, int, bool, Path]) -> dict[str, float]:
    backend, path, rows, detect, workdir = task
    return run(backend, path, rows, detect=detect, workdir=workdir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--together", action="store_true", help="floor and detect at once")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        path = workdir / "customers.csv"
        write_file(path, args.rows, args.seed)
        for backend in args.backends.split(","):
            if args.together:
                floor, detect = fork_map(
                    _run_task, [(backend, path, args.rows, d, workdir) for d in (False, True)]
                )
            else:
                floor = run(backend, path, args.rows, detect=False, workdir=workdir)
                detect = run(backend, path, args.rows, detect=True, workdir=workdir)
            emit({
                "bench": "importing", "backend": backend, "rows": args.rows,
                "floor": floor, "detect": detect, "together": args.together,
                "ratio": round(detect["rows_per_s"] / floor["rows_per_s"], 3),
                "machine": platform.machine(), "cpus": os.cpu_count(),
                "load": os.getloadavg(),
            })  # fmt: skip


if __name__ == "__main__":
    main()
