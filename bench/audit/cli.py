"""``python -m bench.audit``: the options, the phases in order (append and sequencer,
verify, export), the header of the table, and the clean-up of every schema a phase
left behind; ``python -m bench.audit _child ...`` is one measure of a fresh interpreter."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

import bench.audit
from bench.audit.append import phase_append
from bench.audit.children import child
from bench.audit.export import phase_export
from bench.audit.report import Row, print_table
from bench.audit.target import ORIGIN, connect, drop_schema
from bench.audit.verify import phase_files
from vault.crypto import Keyring
from vault.crypto.signing import Ed25519Signer, save_signer


def _postgres_version() -> str:
    try:
        with connect("public") as conn:
            row = conn.execute("SHOW server_version").fetchone()
    except psycopg.Error:
        return "PostgreSQL ?"
    return f"PostgreSQL {row[0] if row else '?'}"


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_child"]:
        child(argv[1:])
        return
    doc = bench.audit.__doc__
    parser = argparse.ArgumentParser(
        prog="python -m bench.audit", description=doc.splitlines()[0] if doc else None
    )
    parser.add_argument("--entries", type=int, default=1_000_000, help="verify/export size")
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--txn-sizes", default="1,10,100", help="entries per transaction")
    parser.add_argument(
        "--append-entries", type=int, default=0,
        help="entries per append run (default: entries / 10, at most 96,000)",
    )  # fmt: skip
    parser.add_argument(
        "--append-max-txns", type=int, default=0,
        help="transactions per append run, all writers (default: append entries / 10)",
    )  # fmt: skip
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--parts", default="append,verify,export")
    parser.add_argument("--profile", type=Path, help="write cProfile stats of vault runs here")
    parser.add_argument("--json", type=Path, help="also write raw results here")
    args = parser.parse_args(argv)
    if args.profile:
        args.profile = args.profile.resolve()
        args.profile.mkdir(parents=True, exist_ok=True)
    parts = set(args.parts.split(","))
    meta = {
        "date": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "postgres": _postgres_version(),
        "entries": args.entries,
        "writers": args.writers,
        "repeat": args.repeat,
    }
    results: list[dict[str, Any]] = []
    rows: list[Row] = []
    schemas: list[str] = []
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
            workdir = Path(tmp)
            Keyring.create(workdir / "keys" / "keyring.json", population=1_000_000)
            signer = Ed25519Signer.generate(ORIGIN)
            save_signer(workdir / "keys" / "signer.json", signer)
            if "append" in parts:
                rows += phase_append(args, workdir, schemas, results)
            if parts & {"verify", "export"}:
                _, copy_path, verify_rows = phase_files(args, workdir, signer, results)
                rows += verify_rows
                if "export" in parts:
                    rows += phase_export(args, workdir, schemas, copy_path, results)
    finally:
        for name in schemas:  # a phase interrupted between create and its finally
            drop_schema(name)
    meta["elapsed_s"] = round(time.perf_counter() - started)
    print_table(rows, meta)
    print(f"\n(total {meta['elapsed_s']} s)")
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2, default=str))
