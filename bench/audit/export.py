"""The export measure: the verify measure's entries loaded into the audit tables (COPY,
queue rows, the sequencer, VACUUM ANALYZE; timed, not counted), then ``export_audit``
in a fresh interpreter beside a floor of ``COPY ... TO STDOUT``, and one verify of
the export it wrote."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from audit.checkpoint import vkey
from bench.audit.children import spawn
from bench.audit.report import Row, record, summary
from bench.audit.sequencer import sequence_vault
from bench.audit.target import Target, connect, fresh_schema
from vault.crypto.signing import load_signer


def load_entries(
    target: Target, copy_path: Path, profile: Path | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """COPY the entries into audit_entries, queue them, sequence them (timed, not counted)."""
    out: dict[str, Any] = {}
    started = time.perf_counter()
    with connect(target.schema) as conn, conn.cursor() as cur:
        columns = "entry_id, recorded_at, actor, action, customer_id, canonical"
        with (
            cur.copy(f"COPY audit_entries ({columns}) FROM STDIN") as copy,
            copy_path.open("rb") as src,
        ):
            while block := src.read(1 << 20):
                copy.write(block)
        cur.execute("INSERT INTO audit_pending (entry_pk) SELECT id FROM audit_entries")
    out["copy_s"] = round(time.perf_counter() - started, 1)
    with connect(target.schema, autocommit=True) as conn:
        conn.execute("ANALYZE audit_entries")
        conn.execute("ANALYZE audit_pending")
    seq = sequence_vault(target, str(profile / "sequence.prof") if profile else "")
    out["sequence_s"] = round(seq["wall"], 1)
    with connect(target.schema, autocommit=True) as conn:  # as autovacuum would, in time
        for table in ("audit_entries", "audit_log", "audit_checkpoints", "audit_pending"):
            conn.execute(f"VACUUM ANALYZE {table}")
    return out, seq


def phase_export(
    args: argparse.Namespace,
    workdir: Path,
    schemas: list[str],
    copy_path: Path,
    results: list[dict[str, Any]],
) -> list[Row]:
    keys = str(workdir / "keys")
    out_path = workdir / "db-export.jsonl"
    floor_path = workdir / "db-copy.txt"
    with fresh_schema(workdir, "export", schemas) as target:
        load, seq = load_entries(target, copy_path, args.profile)
        record(results, {"measure": "load (not counted)", **load})
        record(results, {"measure": "sequence", "mode": "vault, backlog", **seq})
        spawn("copyout", str(floor_path), "--schema", target.schema)  # warm the cache
        runs: dict[str, list[dict[str, Any]]] = {"copyout": [], "export": []}
        for rep in range(args.repeat):
            for mode, path in (("copyout", floor_path), ("export", out_path)):
                extra = ["--keys", keys] if mode == "export" else []
                run = spawn(mode, str(path), "--schema", target.schema, *extra)
                runs[mode].append(run)
                record(results, {"measure": "export", "mode": mode, "rep": rep, **run})
        if args.profile:  # not counted
            spawn("export", str(out_path), "--schema", target.schema, "--keys", keys,
                   "--profile", str(args.profile / "export.prof"))  # fmt: skip
        signer = load_signer(target.signer_path)
        check = spawn("verify", str(out_path), "--vkey",
                       vkey(signer.name, signer.public_key_bytes()))  # fmt: skip
        record(results, {"measure": "verify the database export", **check})
    export_s = summary(runs["export"], "wall", higher=False)
    return [
        Row(
            f"export from PostgreSQL ({runs['export'][-1]['entries']:,})",
            "s",
            export_s,
            "COPY (SELECT ... ORDER BY position) TO STDOUT",
            summary(runs["copyout"], "wall", higher=False),
            "<= 15 s, < 150 MB RSS",
            export_s["median"] <= 15.0 and export_s["hwm_mib"] < 150,
        ),
        Row(
            "verify of that export (check)",
            "s",
            summary([check], "wall", higher=False),
            "-",
            None,
            "<= 3 s",
            check["wall"] <= 3.0,
        ),
        Row(
            f"sequence a backlog ({seq['entries']:,}, 10k/batch, signed; the load)"
            + (" PROFILED" if args.profile else ""),
            "entries/s",
            summary([seq], "rate", higher=True),
            "-",
            None,
            "-",
            None,
        ),
    ]
