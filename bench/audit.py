"""Audit trail: concurrent append, sequencer, offline verify and export, each beside a floor.

Four measures, each with a floor measured in the same run:

* **append**: ``--writers`` processes (fork) each open a Vault and append
  pre-built :class:`AuditEntry` objects with ``vault.audit.write`` inside
  ``vault.db.transaction()``, at each of ``--txn-sizes`` entries per
  transaction (entry rows with ``RETURNING id``, then their queue rows, into
  the vault's tables: five indexes besides the primary key, a foreign key from
  the queue, append-only triggers). Floor: the same processes insert the same
  canonical bytes with hand-written psycopg SQL (executemany below 10 entries
  per transaction, COPY from 10) into a plain table with the same columns, no
  trigger, no queue table, no index but the primary key. Reported: entries/s
  (wall, first start to last end), client CPU-ms and PostgreSQL backend CPU-ms
  per 1,000 entries (read from /proc), and the rate that CPU would allow.
* **sequence**: ``vault.audit.sequence`` over every entry the append runs left
  pending (10,000 per batch, one Ed25519 checkpoint per batch). Floor: the same
  work in hand-written SQL on plain tables (read a batch of pending entries,
  SHA-256 leaf hashes, extend the tree, COPY the log rows, sign, dequeue with
  one ``= ANY(array)``).
* **verify**: an export of ``--entries`` entries is built without the database
  (the file format only: canonical entries, leaf hashes, a signed checkpoint
  line every 4,096 entries, header and end lines from ``audit.export``, laid
  out as ``export_audit`` does) and ``audit.verify.verify_file`` (what
  ``cvault audit verify`` runs: two hashing workers) reads it in a fresh
  interpreter. Floor: reading the file's lines plus SHA-256 (leaf prefix) of
  each entry's bytes. Also shown: the read alone,
  SHA-256 alone over the entries in memory, and read + leaf hashes + the
  RFC 6962 root (every hash a full verify must compute, nothing else).
* **export**: the same entries are loaded into the audit tables (COPY, queue
  rows, ``vault.audit.sequence``, VACUUM ANALYZE; timed but not counted), then
  ``export_audit`` writes a full JSONL export in a fresh interpreter, which is
  then verified once. Floor: ``COPY (SELECT position, leaf_hash, canonical ...
  ORDER BY position) TO STDOUT`` streamed to a file with psycopg, also in a
  fresh interpreter.

Peak memory is VmHWM of each fresh interpreter. Its ``ru_maxrss`` (also in the
JSON lines) is not usable here: Linux carries the parent's high-water mark
across fork and exec, and ``RUSAGE_CHILDREN`` in this process would report the
largest of all its children, the forked writers included.

The machine is shared: each result carries how many cores other processes kept
busy meanwhile (``other_cores``, from /proc/stat), and CPU per entry, steadier
than rates, is reported beside every rate.

Each PostgreSQL phase runs in a fresh schema, dropped at the end even on failure.
Run: ``python -m bench.audit`` (1,000,000 entries, 10-15 minutes here) or
``python -m bench.audit --entries 20000`` (under a minute). ``--profile DIR``
adds one profiled, uncounted vault run per measure (cProfile, CPU time) and
profiles the backlog sequencer (then marked PROFILED).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import hashlib
import json
import multiprocessing as mp
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import create_engine, make_url, text

from audit.checkpoint import Checkpoint, sign_checkpoint, vkey
from audit.entries import AuditAction, AuditEntry, Outcome
from audit.export import checkpoint_line, end_line, entry_line, header_line
from audit.merkle import Frontier, leaf_hash
from audit.verify import verify_file
from vault.audit_trail.export import export_audit
from vault.authorization.context import AccessContext
from vault.config import Environment, Settings
from vault.crypto import Keyring
from vault.crypto.signing import Ed25519Signer, ed25519_verify, load_signer, save_signer
from vault.runtime import Vault
from vault.storage.db import Database, make_engine
from vault.storage.models import Base

PG_URL = os.environ.get(
    "CVAULT_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
PSYCOPG_URL = make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)
ORIGIN = "customer-vault/bench"
CHECKPOINT_EVERY = 4_096  # as vault.audit_export.export_audit lays them out
SEQUENCE_BATCH = 10_000
GEN_CHUNK = 20_000
ROOT = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")
_BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)
_ENTRY_KEY = b'","entry":'
_ENTRY_PREFIX = b'{"type":"entry",'

# -- entries ------------------------------------------------------------------------

_PEOPLE = (
    [(f"agent-{i}", "support_agent", "support") for i in range(40)]
    + [(f"analyst-{i}", "marketing_analyst", "marketing") for i in range(8)]
    + [("svc-ingest", "service", "ingest"), ("officer-1", "compliance_officer", "compliance")]
)
_ACTIONS = [
    (AuditAction.PII_READ, 600), (AuditAction.INTERACTIONS_READ, 150),
    (AuditAction.CUSTOMER_UPDATE, 80), (AuditAction.CUSTOMER_CREATE, 50),
    (AuditAction.INTERACTIONS_RECORD, 50), (AuditAction.CUSTOMER_LOOKUP, 30),
    (AuditAction.CONSENT_CHANGE, 20), (AuditAction.ACCESS_DENIED, 10),
    (AuditAction.TOKEN_FAILURE, 5), (AuditAction.CUSTOMER_EXPORT, 5),
]  # fmt: skip
_PII = ("email", "phone", "first_name", "last_name", "birth_date", "address")
_RESOLUTIONS = ("clear", "clear", "clear", "masked", "hidden")
_CUSTOMERS = 100_000


def _customer(index: int) -> uuid.UUID:
    return uuid.UUID(int=(0x5A17 << 100) | index, version=4)


def make_entries(count: int, seed: int, start: int = 0) -> list[AuditEntry]:
    """Varied, deterministic entries (actors, actions, customers, fields, details)."""
    rng = random.Random(seed)
    actions = [a for a, _ in _ACTIONS]
    weights = [w for _, w in _ACTIONS]
    entries = []
    for n, action in enumerate(rng.choices(actions, weights, k=count), start=start):
        actor, role, purpose = _PEOPLE[rng.randrange(len(_PEOPLE))]
        customer: uuid.UUID | None = _customer(rng.randrange(_CUSTOMERS))
        fields: dict[str, str] = {}
        detail: dict[str, Any] = {}
        outcome = Outcome.SUCCESS
        if action is AuditAction.PII_READ:
            fields = {f: rng.choice(_RESOLUTIONS) for f in rng.sample(_PII, rng.randint(2, 6))}
        elif action in (AuditAction.CUSTOMER_UPDATE, AuditAction.CUSTOMER_CREATE):
            fields = {f: rng.choice(("written", "cleared")) for f in rng.sample(_PII, 2)}
        elif action in (AuditAction.INTERACTIONS_RECORD, AuditAction.INTERACTIONS_READ):
            detail = {"count": rng.randrange(1, 200)}
        elif action is AuditAction.CONSENT_CHANGE:
            detail = {
                "channel": rng.choice(("email", "sms", "phone")),
                "granted": rng.random() < 0.7,
            }
        elif action is AuditAction.ACCESS_DENIED:
            outcome, detail = Outcome.DENIED, {"reason": "policy", "rule": "p.support.address"}
        elif action is AuditAction.TOKEN_FAILURE:
            customer, outcome, detail = None, Outcome.FAILED, {"reason": "expired"}
        entries.append(
            AuditEntry(
                action=action,
                outcome=outcome,
                actor=actor,
                role=role,
                purpose=purpose,
                request_id=f"req-{rng.getrandbits(64):016x}",
                time=_BASE_TIME + timedelta(milliseconds=n),
                customer_id=customer,
                fields=fields,
                client=f"c:{rng.getrandbits(64):016x}",
                detail=detail,
                entry_id=uuid.UUID(int=rng.getrandbits(128), version=4),
            )
        )
    return entries


def _row(e: AuditEntry) -> tuple[uuid.UUID, datetime, str, str, uuid.UUID | None, bytes]:
    return (e.entry_id, e.time, e.actor, e.action.value, e.customer_id, e.canonical())


# -- process, CPU and memory probes ------------------------------------------------


def _backend_cpu(pid: int | None) -> float | None:
    """CPU seconds a PostgreSQL backend has used (None if /proc does not show it)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _machine() -> tuple[float, float, float]:
    """(busy, steal, total) jiffies of the whole machine, from /proc/stat."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return (0.0, 0.0, 0.0)
    idle = values[3] + values[4]
    steal = values[7] if len(values) > 7 else 0
    total = sum(values[:8])
    return (float(total - idle - steal), float(steal), float(total))


def _machine_share(before: tuple[float, float, float], ours: float = 0.0) -> dict[str, float]:
    """Busy and steal shares of the machine since ``before``, and how many cores others
    (not ``ours`` CPU seconds) kept busy meanwhile: the machine is shared."""
    after = _machine()
    total = after[2] - before[2]
    if total <= 0:
        return {}
    cores = os.cpu_count() or 1
    wall = total / CLK_TCK / cores
    busy = (after[0] - before[0]) / CLK_TCK
    return {
        "machine_busy_pct": round(100 * busy / wall / cores, 1),
        "steal_pct": round(100 * (after[1] - before[1]) / total, 1),
        "other_cores": round(max(0.0, busy - ours) / wall, 2),
    }


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _memory() -> dict[str, float]:
    return {
        "maxrss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "hwm_mib": round(_status_kb("VmHWM") / 1024, 1),
    }


# -- PostgreSQL schemas -------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    schema: str
    keyring_path: Path
    signer_path: Path


def _settings(t: Target) -> Settings:
    return Settings(
        data_dir=t.keyring_path.parent,
        database_url=PG_URL,
        keyring_path=t.keyring_path,
        environment=Environment.TEST,
        audit_origin=ORIGIN,
    )


def _open(t: Target) -> Vault:
    return Vault.open(
        _settings(t),
        keyring=Keyring.open(t.keyring_path),
        signer=load_signer(t.signer_path),
        database=Database(make_engine(PG_URL, schema=t.schema)),
    )


def _connect(schema: str, *, autocommit: bool = False) -> psycopg.Connection[Any]:
    return psycopg.connect(
        PSYCOPG_URL, options=f"-c jit=off -c search_path={schema}", autocommit=autocommit
    )


@contextmanager
def _schema(workdir: Path, tag: str, schemas: list[str]) -> Iterator[Target]:
    """A fresh schema with the vault's tables (triggers included), dropped on the way out."""
    name = f"bench_audit_{tag}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
        schemas.append(name)
        engine = make_engine(PG_URL, schema=name)
        Base.metadata.create_all(engine)
        engine.dispose()
        yield Target(name, workdir / "keys" / "keyring.json", workdir / "keys" / "signer.json")
    finally:
        _drop(name)
        if name in schemas:
            schemas.remove(name)
        admin.dispose()


def _drop(name: str) -> None:
    admin = create_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    finally:
        admin.dispose()


# -- fresh interpreters (verify, export and their floors) ---------------------------


def _spawn(*args: str) -> dict[str, Any]:
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


@contextmanager
def _profiled(path: str | None) -> Iterator[None]:
    if not path:
        yield
        return
    profile = cProfile.Profile(time.process_time)  # CPU time: waits on the server drop out
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        profile.dump_stats(path)


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
        state.vault = _open(t)
        with state.vault.db.engine.connect() as conn:  # the pooled connection the export reuses
            state.server_pid = int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
    elif a.mode == "copyout":
        state.conn = _connect(a.schema)
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
        summary = export_audit(state.vault, out, context=AccessContext.system("bench"))
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


def _child(argv: Sequence[str]) -> None:
    """One timed measure in this fresh interpreter; prints one JSON line."""
    parser = argparse.ArgumentParser(prog="bench.audit _child")
    parser.add_argument("mode", choices=sorted(_WORK))
    parser.add_argument("path", type=Path)
    parser.add_argument("--vkey", default="")
    parser.add_argument("--schema", default="")
    parser.add_argument("--keys", type=Path)
    parser.add_argument("--profile", default="")
    a = parser.parse_args(argv)
    result: dict[str, Any] = {"base_rss_mib": round(_status_kb("VmRSS") / 1024, 1)}
    state = _child_prepare(a)
    server = _backend_cpu(state.server_pid)
    machine = _machine()
    cpu = time.process_time()
    started = time.perf_counter()
    with _profiled(a.profile):
        result |= _WORK[a.mode](a, state)
    result["wall"] = time.perf_counter() - started
    result["cpu"] = time.process_time() - cpu
    after = _backend_cpu(state.server_pid)
    if server is not None and after is not None:
        result["server_cpu"] = after - server
    result |= _machine_share(machine, result["cpu"] + result.get("server_cpu", 0.0))
    result |= _memory()
    if state.vault is not None:
        state.vault.close()
    if state.conn is not None:
        state.conn.close()
    print(json.dumps(result), flush=True)


# -- 1. append ----------------------------------------------------------------------

_FLOOR_TABLE = (
    "CREATE TABLE audit_floor (id bigserial PRIMARY KEY, entry_id uuid NOT NULL, "
    "recorded_at timestamptz NOT NULL, actor varchar(128) NOT NULL, "
    "action varchar(32) NOT NULL, customer_id uuid, canonical bytea NOT NULL)"
)
_FLOOR_COLUMNS = "entry_id, recorded_at, actor, action, customer_id, canonical"
_FLOOR_INSERT = f"INSERT INTO audit_floor ({_FLOOR_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)"  # noqa: S608
_FLOOR_COPY = f"COPY audit_floor ({_FLOOR_COLUMNS}) FROM STDIN"


@dataclass(frozen=True)
class AppendJob:
    mode: str
    target: Target
    per_txn: int
    count: int
    seed: int
    profile: str


def _append_vault(job: AppendJob, barrier: Barrier) -> dict[str, Any]:
    k = job.per_txn
    entries = make_entries(job.count + k, job.seed)
    vault = _open(job.target)
    with vault.db.transaction() as s:  # connect, warm the statement caches (not counted)
        pid = int(s.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
        vault.audit.write(s, entries[:k])
    batches = [entries[i : i + k] for i in range(k, len(entries), k)]
    barrier.wait()
    server = _backend_cpu(pid)
    cpu = time.process_time()
    started = time.perf_counter()
    with _profiled(job.profile):
        for batch in batches:
            with vault.db.transaction() as s:
                vault.audit.write(s, batch)
    ended = time.perf_counter()
    cpu = time.process_time() - cpu
    after = _backend_cpu(pid)
    vault.close()
    return {
        "entries": job.count,
        "start": started,
        "end": ended,
        "cpu": cpu,
        "server_cpu": None if server is None or after is None else after - server,
    }


def _append_floor(job: AppendJob, barrier: Barrier) -> dict[str, Any]:
    k = job.per_txn
    rows = [_row(e) for e in make_entries(job.count + k, job.seed)]
    batches = [rows[i : i + k] for i in range(0, len(rows), k)]
    conn = _connect(job.target.schema)
    pid = conn.info.backend_pid

    def insert(batch: list[tuple[Any, ...]]) -> None:
        with conn.transaction(), conn.cursor() as cur:
            if k < 10:
                cur.executemany(_FLOOR_INSERT, batch)
            else:
                with cur.copy(_FLOOR_COPY) as copy:
                    for row in batch:
                        copy.write_row(row)

    insert(batches[0])  # connect and warm up (not counted)
    barrier.wait()
    server = _backend_cpu(pid)
    cpu = time.process_time()
    started = time.perf_counter()
    for batch in batches[1:]:
        insert(batch)
    ended = time.perf_counter()
    cpu = time.process_time() - cpu
    after = _backend_cpu(pid)
    conn.close()
    return {
        "entries": job.count,
        "start": started,
        "end": ended,
        "cpu": cpu,
        "server_cpu": None if server is None or after is None else after - server,
    }


def _append_process(job: AppendJob, barrier: Barrier, results: mp.Queue[dict[str, Any]]) -> None:
    try:
        run = _append_vault if job.mode == "vault" else _append_floor
        results.put(run(job, barrier))
    except BaseException as exc:
        barrier.abort()
        results.put({"error": f"{type(exc).__name__}: {exc}"})
        raise


def _append_run(
    *, mode: str, target: Target, per_txn: int, total: int, writers: int, seed: int, profile: str
) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(writers + 1)  # this process too: it samples the machine at the start
    results: mp.Queue[dict[str, Any]] = ctx.Queue()
    share = total // writers // per_txn * per_txn
    jobs = [
        AppendJob(mode, target, per_txn, share, seed + w, profile if w == 0 else "")
        for w in range(writers)
    ]
    procs = [ctx.Process(target=_append_process, args=(j, barrier, results)) for j in jobs]
    for p in procs:
        p.start()
    with contextlib.suppress(threading.BrokenBarrierError):  # a writer failed: reported below
        barrier.wait(timeout=900)
    machine = _machine()
    got = [results.get(timeout=1800) for _ in procs]
    for p in procs:
        p.join()
    errors = [g["error"] for g in got if "error" in g]
    if errors:
        raise RuntimeError(f"{mode} writer failed: {errors[0]}")
    entries = sum(g["entries"] for g in got)
    wall = max(g["end"] for g in got) - min(g["start"] for g in got)
    server = [g["server_cpu"] for g in got]
    return {
        "entries": entries,
        "wall": wall,
        "rate": entries / wall,
        "cpu_ms_per_1k": sum(g["cpu"] for g in got) / entries * 1e6,
        "server_cpu_ms_per_1k": None if None in server else sum(server) / entries * 1e6,
        "start_skew_ms": (max(g["start"] for g in got) - min(g["start"] for g in got)) * 1e3,
        **_machine_share(machine, sum(g["cpu"] + (g["server_cpu"] or 0) for g in got)),
    }


# -- 1b. sequencer ------------------------------------------------------------------


def _sequence_floor(target: Target) -> dict[str, Any]:
    """The sequencer's work by hand on plain tables; reads audit_entries like the vault."""
    with _connect(target.schema, autocommit=True) as conn:
        conn.execute("CREATE TABLE seq_pending (entry_pk bigint PRIMARY KEY)")
        conn.execute("INSERT INTO seq_pending SELECT entry_pk FROM audit_pending")
        conn.execute(
            "CREATE TABLE seq_log (position bigint PRIMARY KEY, entry_pk bigint NOT NULL, "
            "leaf_hash bytea NOT NULL)"
        )
        conn.execute(
            "CREATE TABLE seq_checkpoints (tree_size bigint PRIMARY KEY, root_hash bytea, "
            "frontier bytea, note text, created_at timestamptz)"
        )
        conn.execute("VACUUM ANALYZE seq_pending")
        conn.execute("ANALYZE audit_pending")
        conn.execute("SELECT sum(length(canonical)) FROM audit_entries")  # warm, for both
    signer = load_signer(target.signer_path)
    sha = hashlib.sha256
    conn = _connect(target.schema)
    pid = conn.info.backend_pid
    frontier = Frontier()
    machine = _machine()
    server = _backend_cpu(pid)
    cpu = time.process_time()
    started = time.perf_counter()
    while True:
        with conn.transaction(), conn.cursor() as cur:
            pending = cur.execute(
                "SELECT p.entry_pk, e.canonical FROM seq_pending p "
                "JOIN audit_entries e ON e.id = p.entry_pk ORDER BY p.entry_pk LIMIT %s",
                (SEQUENCE_BATCH,),
            ).fetchall()
            if not pending:
                break
            start = frontier.size
            with cur.copy("COPY seq_log (position, entry_pk, leaf_hash) FROM STDIN") as copy:
                for offset, (pk, canonical) in enumerate(pending):
                    digest = sha(b"\x00" + canonical).digest()
                    frontier.append(digest)
                    copy.write_row((start + offset, pk, digest))
            root_hash = frontier.root()
            note = sign_checkpoint(Checkpoint(ORIGIN, frontier.size, root_hash), signer)
            cur.execute(
                "INSERT INTO seq_checkpoints VALUES (%s, %s, %s, %s, now())",
                (frontier.size, root_hash, frontier.to_bytes(), note),
            )
            cur.execute(
                "DELETE FROM seq_pending WHERE entry_pk = ANY(%s)", ([pk for pk, _ in pending],)
            )
        if len(pending) < SEQUENCE_BATCH:
            break
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu
    after = _backend_cpu(pid)
    conn.close()
    return _sequenced(
        n=frontier.size, wall=wall, cpu=cpu, server=server, after=after, machine=machine,
    )  # fmt: skip


def _sequenced(
    *,
    n: int,
    wall: float,
    cpu: float,
    server: float | None,
    after: float | None,
    machine: tuple[float, float, float],
) -> dict[str, Any]:
    return {
        "entries": n,
        "wall": wall,
        "rate": n / wall if wall else 0.0,
        "cpu_ms_per_1k": cpu / max(n, 1) * 1e6,
        "server_cpu_ms_per_1k": None
        if server is None or after is None
        else (after - server) / max(n, 1) * 1e6,
        **_machine_share(
            machine, cpu + (0.0 if server is None or after is None else after - server)
        ),
    }


def _sequence_vault(target: Target, profile: str = "") -> dict[str, Any]:
    vault = _open(target)
    with vault.db.engine.connect() as conn:
        pid = int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
    machine = _machine()
    server = _backend_cpu(pid)
    cpu = time.process_time()
    started = time.perf_counter()
    with _profiled(profile):
        n = vault.audit.sequence(vault.db, batch_size=SEQUENCE_BATCH)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu
    after = _backend_cpu(pid)
    vault.close()
    return _sequenced(
        n=n, wall=wall, cpu=cpu, server=server, after=after, machine=machine,
    )  # fmt: skip


# -- 2. the export file, built without the database ---------------------------------


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


# -- 3. the same entries in PostgreSQL ---------------------------------------------


def load_entries(
    target: Target, copy_path: Path, profile: Path | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """COPY the entries into audit_entries, queue them, sequence them (timed, not counted)."""
    out: dict[str, Any] = {}
    started = time.perf_counter()
    with _connect(target.schema) as conn, conn.cursor() as cur:
        columns = "entry_id, recorded_at, actor, action, customer_id, canonical"
        with (
            cur.copy(f"COPY audit_entries ({columns}) FROM STDIN") as copy,
            copy_path.open("rb") as src,
        ):
            while block := src.read(1 << 20):
                copy.write(block)
        cur.execute("INSERT INTO audit_pending (entry_pk) SELECT id FROM audit_entries")
    out["copy_s"] = round(time.perf_counter() - started, 1)
    with _connect(target.schema, autocommit=True) as conn:
        conn.execute("ANALYZE audit_entries")
        conn.execute("ANALYZE audit_pending")
    seq = _sequence_vault(target, str(profile / "sequence.prof") if profile else "")
    out["sequence_s"] = round(seq["wall"], 1)
    with _connect(target.schema, autocommit=True) as conn:  # as autovacuum would, in time
        for table in ("audit_entries", "audit_log", "audit_checkpoints", "audit_pending"):
            conn.execute(f"VACUUM ANALYZE {table}")
    return out, seq


# -- results ------------------------------------------------------------------------


def _summary(runs: list[dict[str, Any]], key: str, *, higher: bool) -> dict[str, Any]:
    values = [r[key] for r in runs]
    out: dict[str, Any] = {
        "best": max(values) if higher else min(values),
        "median": statistics.median(values),
        "runs": len(runs),
    }
    extras = ("cpu_ms_per_1k", "server_cpu_ms_per_1k", "cpu",
              "server_cpu", "hwm_mib", "maxrss_mib", "base_rss_mib", "steal_pct",
              "machine_busy_pct", "other_cores")  # fmt: skip
    for extra in extras:
        got = [r[extra] for r in runs if r.get(extra) is not None]
        if got:
            out[extra] = statistics.median(got)
    return out


@dataclass
class Row:
    measure: str
    unit: str  # "entries/s" (higher is better) or "s" (lower is better)
    vault: dict[str, Any]
    floor_name: str
    floor: dict[str, Any] | None
    target: str
    met: bool | None
    note: str = ""


def _fmt(value: float, unit: str) -> str:
    return f"{value:,.0f}" if unit == "entries/s" else f"{value:.2f}"


def _cpu_text(s: dict[str, Any], unit: str) -> str:
    if unit == "entries/s":
        client, server = s["cpu_ms_per_1k"], s.get("server_cpu_ms_per_1k")
        if server is None:
            return f"{client:.1f}"
        capacity = (os.cpu_count() or 1) * 1e6 / (client + server) if client + server else 0
        return f"{client:.1f} + {server:.1f} (CPU-bound: {capacity / 1000:,.1f}k/s)"
    server = s.get("server_cpu")
    return f"{s['cpu']:.2f} s" + ("" if server is None else f" + {server:.2f} s")


def print_table(rows: list[Row], meta: dict[str, Any]) -> None:
    print()
    print(f"{meta['date']} on {meta['host']} ({meta['cpus']} CPUs, {meta['python']}, "
          f"{meta['postgres']}); {meta['entries']:,} entries, {meta['writers']} writers, "
          f"median and best of {meta['repeat']} runs")  # fmt: skip
    print()
    print(
        "| measure | result (median / best) | CPU client + server | floor "
        "| floor (median / best) | floor CPU client + server | time vs floor (median) "
        "| others' load (cores) | target | met |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        u = r.unit
        result = f"{_fmt(r.vault['median'], u)} / {_fmt(r.vault['best'], u)} {u}"
        if "hwm_mib" in r.vault:
            result += f", peak RSS {r.vault['hwm_mib']:.0f} MiB"
        if r.floor is None:
            floor_result = floor_cpu = ratio = "-"
        else:
            floor_result = f"{_fmt(r.floor['median'], u)} / {_fmt(r.floor['best'], u)} {u}"
            floor_cpu = _cpu_text(r.floor, u)
            times = (
                r.floor["median"] / r.vault["median"]
                if u == "entries/s"
                else r.vault["median"] / r.floor["median"]
            )
            ratio = f"{times:.2f}x"
        others = r.vault.get("other_cores")
        load = "-" if others is None else f"{others:.2f}"
        met = "-" if r.met is None else ("yes" if r.met else "**no**")
        cells = [f"{r.measure}{r.note}", result, _cpu_text(r.vault, u), r.floor_name,
                 floor_result, floor_cpu, ratio, load, r.target, met]  # fmt: skip
        print("| " + " | ".join(cells) + " |")
    print()
    print(
        "CPU: for rates, CPU-ms per 1,000 entries, client processes + their PostgreSQL\n"
        "backends, and the rate those would allow if they had every core; for times, CPU\n"
        "seconds. Others' load: cores kept busy meanwhile by processes not measured here\n"
        "(the machine is shared). Peak RSS: VmHWM of the fresh interpreter that ran it\n"
        "(its ru_maxrss is floored at its parent's peak, inherited across fork and exec)."
    )


# -- main ---------------------------------------------------------------------------


def _emit(results: list[dict[str, Any]], record: dict[str, Any]) -> None:
    results.append(record)
    print(json.dumps(record, default=str), flush=True)


def _phase_append(
    args: argparse.Namespace, workdir: Path, schemas: list[str], results: list[dict[str, Any]]
) -> list[Row]:
    rows: list[Row] = []
    sizes = [int(s) for s in args.txn_sizes.split(",")]
    per_run = args.append_entries or max(args.writers * max(sizes), min(96_000, args.entries // 10))
    max_txns = args.append_max_txns or max(args.writers, per_run // 10)
    with _schema(workdir, "append", schemas) as target:
        with _connect(target.schema, autocommit=True) as conn:
            conn.execute(_FLOOR_TABLE)
        for k in sizes:
            total = min(per_run, max_txns * k)
            runs: dict[str, list[dict[str, Any]]] = {"floor": [], "vault": []}
            for rep in range(args.repeat):
                for mode in ("floor", "vault"):  # alternate, so drift hits both
                    seed = 1_000_000 * k + 1000 * rep
                    run = _append_run(
                        mode=mode, target=target, per_txn=k, total=total,
                        writers=args.writers, seed=seed, profile="",
                    )  # fmt: skip
                    runs[mode].append(run)
                    _emit(results, {"measure": "append", "mode": mode, "per_txn": k, "rep": rep,
                                    **{x: round(v, 2) if isinstance(v, float) else v
                                       for x, v in run.items()}})  # fmt: skip
            if args.profile:  # one more vault run, profiled in its first writer, not counted
                _append_run(
                    mode="vault", target=target, per_txn=k, total=total, writers=args.writers,
                    seed=1_000_000 * k + 999_000, profile=str(args.profile / f"append-{k}.prof"),
                )  # fmt: skip
            vault_s = _summary(runs["vault"], "rate", higher=True)
            floor_s = _summary(runs["floor"], "rate", higher=True)
            rows.append(
                Row(
                    f"append, {args.writers} writers, {k}/txn ({runs['vault'][0]['entries']:,})",
                    "entries/s",
                    vault_s,
                    "plain table, psycopg " + ("executemany" if k < 10 else "COPY"),
                    floor_s,
                    ">= 20,000 entries/s",
                    vault_s["median"] >= 20_000,
                )
            )
        seq_floor = _sequence_floor(target)
        _emit(results, {"measure": "sequence", "mode": "floor", **seq_floor})
        seq = _sequence_vault(target)
        _emit(results, {"measure": "sequence", "mode": "vault", **seq})
        if seq["entries"] != seq_floor["entries"]:
            raise RuntimeError(f"sequenced {seq['entries']}, floor {seq_floor['entries']}")
        rows.append(
            Row(
                f"sequence pending ({seq['entries']:,}, 10k/batch, signed)",
                "entries/s",
                _summary([seq], "rate", higher=True),
                "hand-written SQL, plain tables",
                _summary([seq_floor], "rate", higher=True),
                "(keeps up with append)",
                None,
            )
        )
    return rows


def _phase_files(
    args: argparse.Namespace, workdir: Path, signer: Ed25519Signer, results: list[dict[str, Any]]
) -> tuple[Path, Path, list[Row]]:
    export_path, copy_path, info = build_export(args.entries, workdir, signer)
    _emit(results, {"measure": "build export file", **info})
    if "verify" not in args.parts:
        return export_path, copy_path, []
    key = vkey(signer.name, signer.public_key_bytes())
    path = str(export_path)
    _spawn("read", path)  # warm the file cache right before the timed runs
    modes = ("read", "readsha", "readtree", "sha", "verify")
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    for rep in range(args.repeat):
        for mode in modes:
            run = _spawn(mode, path, *(["--vkey", key] if mode == "verify" else []))
            runs[mode].append(run)
            _emit(results, {"measure": "verify", "mode": mode, "rep": rep, **run})
    if args.profile:  # not counted
        _spawn("verify", path, "--vkey", key, "--profile", str(args.profile / "verify.prof"))
    n = runs["verify"][0]["entries"]
    if n != args.entries:
        raise RuntimeError(f"verify saw {n} entries, expected {args.entries}")
    verify_s = _summary(runs["verify"], "wall", higher=False)
    rows = [
        Row(
            f"verify full export ({args.entries:,}, {info['file_mb']:,} MB, rb)",
            "s",
            verify_s,
            "read lines + SHA-256 of entries",
            _summary(runs["readsha"], "wall", higher=False),
            "<= 3 s",
            verify_s["median"] <= 3.0,
        ),
        Row("  floor: read + leaf SHA-256 + RFC 6962 root (all verify must hash)", "s",
            _summary(runs["readtree"], "wall", higher=False), "-", None, "-", None),
        Row("  floor: read lines only", "s", _summary(runs["read"], "wall", higher=False),
            "-", None, "-", None),
        Row("  floor: leaf SHA-256 only (entries in memory)", "s",
            _summary(runs["sha"], "wall", higher=False), "-", None, "-", None),
    ]  # fmt: skip
    return export_path, copy_path, rows


def _phase_export(
    args: argparse.Namespace,
    workdir: Path,
    schemas: list[str],
    copy_path: Path,
    results: list[dict[str, Any]],
) -> list[Row]:
    keys = str(workdir / "keys")
    out_path = workdir / "db-export.jsonl"
    floor_path = workdir / "db-copy.txt"
    with _schema(workdir, "export", schemas) as target:
        load, seq = load_entries(target, copy_path, args.profile)
        _emit(results, {"measure": "load (not counted)", **load})
        _emit(results, {"measure": "sequence", "mode": "vault, backlog", **seq})
        _spawn("copyout", str(floor_path), "--schema", target.schema)  # warm the cache
        runs: dict[str, list[dict[str, Any]]] = {"copyout": [], "export": []}
        for rep in range(args.repeat):
            for mode, path in (("copyout", floor_path), ("export", out_path)):
                extra = ["--keys", keys] if mode == "export" else []
                run = _spawn(mode, str(path), "--schema", target.schema, *extra)
                runs[mode].append(run)
                _emit(results, {"measure": "export", "mode": mode, "rep": rep, **run})
        if args.profile:  # not counted
            _spawn("export", str(out_path), "--schema", target.schema, "--keys", keys,
                   "--profile", str(args.profile / "export.prof"))  # fmt: skip
        signer = load_signer(target.signer_path)
        check = _spawn("verify", str(out_path), "--vkey",
                       vkey(signer.name, signer.public_key_bytes()))  # fmt: skip
        _emit(results, {"measure": "verify the database export", **check})
    export_s = _summary(runs["export"], "wall", higher=False)
    return [
        Row(
            f"export from PostgreSQL ({runs['export'][-1]['entries']:,})",
            "s",
            export_s,
            "COPY (SELECT ... ORDER BY position) TO STDOUT",
            _summary(runs["copyout"], "wall", higher=False),
            "<= 15 s, < 150 MB RSS",
            export_s["median"] <= 15.0 and export_s["hwm_mib"] < 150,
        ),
        Row(
            "verify of that export (check)",
            "s",
            _summary([check], "wall", higher=False),
            "-",
            None,
            "<= 3 s",
            check["wall"] <= 3.0,
        ),
        Row(
            f"sequence a backlog ({seq['entries']:,}, 10k/batch, signed; the load)"
            + (" PROFILED" if args.profile else ""),
            "entries/s",
            _summary([seq], "rate", higher=True),
            "-",
            None,
            "-",
            None,
        ),
    ]


def _postgres_version() -> str:
    try:
        with _connect("public") as conn:
            row = conn.execute("SHOW server_version").fetchone()
    except psycopg.Error:
        return "PostgreSQL ?"
    return f"PostgreSQL {row[0] if row else '?'}"


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_child"]:
        _child(argv[1:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
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
                rows += _phase_append(args, workdir, schemas, results)
            if parts & {"verify", "export"}:
                _, copy_path, verify_rows = _phase_files(args, workdir, signer, results)
                rows += verify_rows
                if "export" in parts:
                    rows += _phase_export(args, workdir, schemas, copy_path, results)
    finally:
        for name in schemas:  # a phase interrupted between create and its finally
            _drop(name)
    meta["elapsed_s"] = round(time.perf_counter() - started)
    print_table(rows, meta)
    print(f"\n(total {meta['elapsed_s']} s)")
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2, default=str))


if __name__ == "__main__":
    main()
