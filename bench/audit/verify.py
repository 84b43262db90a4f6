"""The verify measure: a full export file of ``--entries`` entries built without the
database (laid out as ``export_audit`` writes one, plus a COPY file of the same entries
for the export measure), then ``verify_file`` on it in fresh interpreters beside its
floors (read alone, read + SHA-256, read + every hash of the tree, SHA-256 alone)."""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import time
from pathlib import Path
from typing import Any

from audit.checkpoint import Checkpoint, sign_checkpoint, vkey
from audit.export import checkpoint_line, end_line, entry_line, header_line
from audit.merkle import Frontier, leaf_hash
from bench.audit.children import spawn
from bench.audit.entries import make_entries
from bench.audit.report import Row, record, summary
from bench.audit.target import ORIGIN
from vault.crypto.signing import Ed25519Signer

CHECKPOINT_EVERY = 4_096  # as vault.audit_export.export_audit lays them out
GEN_CHUNK = 20_000


def _gen_chunk(job: tuple[int, int, int]) -> tuple[list[bytes], bytes]:
    """Canonical bytes, and COPY text rows for audit_entries, of one chunk of entries."""
    start, count, seed = job
    canon: list[bytes] = []
    copy: list[str] = []
    for e in make_entries(count, seed + start, start):
        c = e.canonical()
        canon.append(c)
        customer = "\\N" if e.customer_id is None else str(e.customer_id)
        copy.append(f"{e.entry_id}\t{e.time.isoformat()}\t{e.actor}\t{e.action.value}\t"
                    f"{customer}\t\\\\x{c.hex()}\n")  # fmt: skip
    return canon, "".join(copy).encode("ascii")


def build_export(n: int, workdir: Path, signer: Ed25519Signer) -> tuple[Path, Path, dict[str, Any]]:
    """An export file of ``n`` entries laid out as ``export_audit`` writes a full export,
    and a COPY file holding the same entries for audit_entries."""
    export_path, body_path, copy_path = (
        workdir / f for f in ("full.jsonl", "body.part", "copy.txt")
    )
    frontier = Frontier()
    notes = 0
    started = time.perf_counter()
    jobs = [(s, min(GEN_CHUNK, n - s), 7) for s in range(0, n, GEN_CHUNK)]
    with (
        mp.get_context("fork").Pool(os.cpu_count() or 2) as pool,
        body_path.open("w", encoding="utf-8", newline="") as body,
        copy_path.open("wb") as copy_out,
    ):
        position = 0
        for canon, copy_rows in pool.imap(_gen_chunk, jobs):
            copy_out.write(copy_rows)
            for c in canon:
                digest = leaf_hash(c)
                frontier.append(digest)
                body.write(entry_line(position, digest, c))
                position += 1
                if position % CHECKPOINT_EVERY == 0 and position < n:
                    cp = Checkpoint(ORIGIN, position, frontier.root())
                    body.write(checkpoint_line(sign_checkpoint(cp, signer)))
                    notes += 1
        body.write(end_line(position))
    head = sign_checkpoint(Checkpoint(ORIGIN, frontier.size, frontier.root()), signer)
    with export_path.open("w", encoding="utf-8", newline="") as out:
        out.write(
            header_line(
                origin=ORIGIN,
                vkey=vkey(signer.name, signer.public_key_bytes()),
                tree_size=frontier.size,
                checkpoint=head,
                filter_=None,
                previous=None,
            )
        )
        out.flush()
        with body_path.open("rb") as src:
            shutil.copyfileobj(src, out.buffer, 1 << 20)
    body_path.unlink()
    info = {
        "entries": n,
        "checkpoints": notes + 1,
        "file_mb": round(export_path.stat().st_size / 1e6, 1),
        "build_s": round(time.perf_counter() - started, 1),
    }
    return export_path, copy_path, info


def phase_files(
    args: argparse.Namespace, workdir: Path, signer: Ed25519Signer, results: list[dict[str, Any]]
) -> tuple[Path, Path, list[Row]]:
    export_path, copy_path, info = build_export(args.entries, workdir, signer)
    record(results, {"measure": "build export file", **info})
    if "verify" not in args.parts:
        return export_path, copy_path, []
    key = vkey(signer.name, signer.public_key_bytes())
    path = str(export_path)
    spawn("read", path)  # warm the file cache right before the timed runs
    modes = ("read", "readsha", "readtree", "sha", "verify")
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    for rep in range(args.repeat):
        for mode in modes:
            run = spawn(mode, path, *(["--vkey", key] if mode == "verify" else []))
            runs[mode].append(run)
            record(results, {"measure": "verify", "mode": mode, "rep": rep, **run})
    if args.profile:  # not counted
        spawn("verify", path, "--vkey", key, "--profile", str(args.profile / "verify.prof"))
    n = runs["verify"][0]["entries"]
    if n != args.entries:
        raise RuntimeError(f"verify saw {n} entries, expected {args.entries}")
    verify_s = summary(runs["verify"], "wall", higher=False)
    rows = [
        Row(
            f"verify full export ({args.entries:,}, {info['file_mb']:,} MB, rb)",
            "s",
            verify_s,
            "read lines + SHA-256 of entries",
            summary(runs["readsha"], "wall", higher=False),
            "<= 3 s",
            verify_s["median"] <= 3.0,
        ),
        Row("  floor: read + leaf SHA-256 + RFC 6962 root (all verify must hash)", "s",
            summary(runs["readtree"], "wall", higher=False), "-", None, "-", None),
        Row("  floor: read lines only", "s", summary(runs["read"], "wall", higher=False),
            "-", None, "-", None),
        Row("  floor: leaf SHA-256 only (entries in memory)", "s",
            summary(runs["sha"], "wall", higher=False), "-", None, "-", None),
    ]  # fmt: skip
    return export_path, copy_path, rows
