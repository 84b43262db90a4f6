"""What counting an import's rows first costs, beside the reader's own pass in the same run.

``cvault import`` on a terminal counts the file's rows before importing them (the
progress bar's total). This writes a CSV and a JSONL file of ``--rows`` customers (names
in four scripts, one quoted field across two lines every 100 rows) and times, alternating
``--runs`` times, the median of:

* ``count_rows``: the first pass (rows split, nothing parsed);
* ``records``: the reader's pass alone (the peer: what an import reads anyway, before any
  validation, encryption or database write).

Run: ``python -m bench.import_count [--rows 200000] [--runs 5]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from vault.importing import CUSTOMER_COLUMNS
from vault.importing.reader import count_rows, records
from vault.importing.validation import no_required

__all__ = ["main"]

_NAMES = (
    "\u0645\u0631\u06cc\u0645",
    "\u0e2a\u0e21\u0e0a\u0e32\u0e22",
    "\u674e\u5c0f\u9f99",
    "Ana\u00efs",
)


def _write(folder: Path, rows: int) -> tuple[Path, Path]:
    csv_path, jsonl_path = folder / "people.csv", folder / "people.jsonl"
    with csv_path.open("w", encoding="utf-8") as c, jsonl_path.open("w", encoding="utf-8") as j:
        c.write("email,first_name,last_name,tier\n")
        for n in range(rows):
            name = _NAMES[n % len(_NAMES)]
            last = '"two\nlines"' if n % 100 == 0 else "x"
            c.write(f"p{n}@example.com,{name},{last},gold\n")
            j.write(f'{{"email": "p{n}@example.com", "first_name": "{name}", "tier": "gold"}}\n')
    return csv_path, jsonl_path


def _read(path: Path, fmt: str) -> int:
    return sum(1 for _ in records(path, fmt, CUSTOMER_COLUMNS, no_required))


def _timed(work: Callable[[], int], runs: list[float]) -> int:
    started = time.perf_counter()
    found = work()
    runs.append(time.perf_counter() - started)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = _write(Path(tmp), args.rows)
        for path, fmt in zip(files, ("csv", "jsonl"), strict=True):
            counted: list[float] = []
            read: list[float] = []
            total = seen = 0
            for _ in range(args.runs):
                total = _timed(partial(count_rows, path, fmt), counted)
                seen = _timed(partial(_read, path, fmt), read)
            if not total == seen == args.rows:
                raise SystemExit(f"count_rows found {total}, records {seen}")
            c, r = statistics.median(counted), statistics.median(read)
            print(f"{fmt:<6} {args.rows} rows: count_rows {c * 1000:8.1f} ms   "
                  f"records {r * 1000:8.1f} ms   count/read {c / r:5.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
