"""Measures in a fresh interpreter (verify, export and their floors): the parent's
:func:`spawn` runs ``python -m bench.audit _child MODE PATH ...``, and :func:`child`,
in that interpreter, opens what the mode needs, times its work and prints one JSON line
with wall and CPU time, the backend's CPU, the machine's load and peak memory."""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from audit.verify import verify_file
from bench.audit.probes import machine, machine_share, memory, profiled, status_kb, timed
from bench.audit.target import Target, connect, open_vault
from bench.common import BENCH
from vault.audit_trail.export import export_audit
from vault.crypto.signing import ed25519_verify
from vault.runtime import Vault

ROOT = Path(__file__).resolve().parents[2]
_ENTRY_KEY = b'","entry":'
_ENTRY_PREFIX = b'{"type":"entry",'


def spawn(*args: str) -> dict[str, Any]:
    """Run ``python -m bench.audit _child ARGS`` and return the JSON line it prints."""
    done = subprocess.run(  # noqa: S603 - this interpreter and module, our own arguments
        [sys.executable, "-m", "bench.audit", "_child", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"child {args[0]} failed:\n{done.stderr[-4000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


_COPY_OUT = (
    "COPY (SELECT l.position, l.leaf_hash, e.canonical FROM audit_log l "
    "JOIN audit_entries e ON e.id = l.entry_pk ORDER BY l.position) TO STDOUT"
)


@dataclass
class _ChildState:
    vault: Vault | None = None
    conn: psycopg.Connection[Any] | None = None
    server_pid: int | None = None
    data: list[bytes] | None = None


def _entry_bytes(line: bytes) -> bytes:
    return line[line.index(_ENTRY_KEY) + len(_ENTRY_KEY) : -2]


def _child_prepare(a: argparse.Namespace) -> _ChildState:
    """What a child needs before its clock starts (connections, the in-memory entries)."""
    state = _ChildState()
    if a.mode == "sha":  # the entries' bytes in memory first: SHA-256 alone is timed
        with a.path.open("rb") as fh:
            state.data = [_entry_bytes(line) for line in fh if line.startswith(_ENTRY_PREFIX)]
    elif a.mode == "export":
        t = Target(a.schema, a.keys / "keyring.json", a.keys / "signer.json")
        state.vault = open_vault(t)
        with state.vault.db.engine.connect() as conn:  # the pooled connection the export reuses
            state.server_pid = int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
    elif a.mode == "copyout":
        state.conn = connect(a.schema)
        state.server_pid = state.conn.info.backend_pid
    return state


def _work_verify(a: argparse.Namespace, _: _ChildState) -> dict[str, Any]:
    # What `cvault audit verify` runs: entry lines hashed by two worker processes.
    report = verify_file(a.path, trusted_vkey=a.vkey, verify=ed25519_verify)
    return {"entries": report.entries, "checkpoints": report.checkpoints}


def _work_read(a: argparse.Namespace, _: _ChildState) -> dict[str, Any]:
    count = 0
    with a.path.open("rb") as fh:
        for _line in fh:
            count += 1
    return {"lines": count}


def _work_readsha(a: argparse.Namespace, _: _ChildState) -> dict[str, Any]:
    sha = hashlib.sha256
    count = 0
    with a.path.open("rb") as fh:
        for line in fh:
            if line.startswith(_ENTRY_PREFIX):
                sha(b"\x00" + _entry_bytes(line)).digest()
                count += 1
    return {"entries": count}


def _work_readtree(a: argparse.Namespace, _: _ChildState) -> dict[str, Any]:
    """Read, leaf hashes, then the RFC 6962 root level by level: all the hashing a full
    verify must do, with no parsing, checking or signatures."""
    sha = hashlib.sha256
    with a.path.open("rb") as fh:
        level = [sha(b"\x00" + _entry_bytes(line)).digest() for line in fh
                 if line.startswith(_ENTRY_PREFIX)]  # fmt: skip
    count = len(level)
    while len(level) > 1:
        pairs = iter(level)
        odd = [level[-1]] if len(level) % 2 else []
        level = [sha(b"\x01" + x + y).digest() for x, y in zip(pairs, pairs, strict=False)]
        level += odd
    return {"entries": count, "root": level[0].hex() if level else ""}


def _work_sha(_: argparse.Namespace, state: _ChildState) -> dict[str, Any]:
    sha = hashlib.sha256
    count = 0
    for d in state.data or []:
        sha(b"\x00" + d).digest()
        count += 1
    return {"entries": count}


def _work_export(a: argparse.Namespace, state: _ChildState) -> dict[str, Any]:
    if state.vault is None:
        raise RuntimeError("no vault opened")
    with a.path.open("w", encoding="utf-8", newline="") as out:
        summary = export_audit(state.vault, out, context=BENCH)
    return {"entries": summary.entries, "tree_size": summary.tree_size}


def _work_copyout(a: argparse.Namespace, state: _ChildState) -> dict[str, Any]:
    if state.conn is None:
        raise RuntimeError("no connection opened")
    with state.conn.cursor() as cur, a.path.open("wb") as out, cur.copy(_COPY_OUT) as copy:
        for block in copy:
            out.write(block)
    state.conn.commit()
    return {"bytes": a.path.stat().st_size}


_WORK: dict[str, Callable[[argparse.Namespace, _ChildState], dict[str, Any]]] = {
    "verify": _work_verify,
    "read": _work_read,
    "readsha": _work_readsha,
    "readtree": _work_readtree,
    "sha": _work_sha,
    "export": _work_export,
    "copyout": _work_copyout,
}


def child(argv: Sequence[str]) -> None:
    """One timed measure in this fresh interpreter; prints one JSON line."""
    parser = argparse.ArgumentParser(prog="bench.audit _child")
    parser.add_argument("mode", choices=sorted(_WORK))
    parser.add_argument("path", type=Path)
    parser.add_argument("--vkey", default="")
    parser.add_argument("--schema", default="")
    parser.add_argument("--keys", type=Path)
    parser.add_argument("--profile", default="")
    a = parser.parse_args(argv)
    result: dict[str, Any] = {"base_rss_mib": round(status_kb("VmRSS") / 1024, 1)}
    state = _child_prepare(a)
    before = machine()
    with timed(state.server_pid) as span, profiled(a.profile):
        result |= _WORK[a.mode](a, state)
    result["wall"] = span.wall
    result["cpu"] = span.cpu
    if span.server_cpu is not None:
        result["server_cpu"] = span.server_cpu
    result |= machine_share(before, result["cpu"] + result.get("server_cpu", 0.0))
    result |= memory()
    if state.vault is not None:
        state.vault.close()
    if state.conn is not None:
        state.conn.close()
    print(json.dumps(result), flush=True)
