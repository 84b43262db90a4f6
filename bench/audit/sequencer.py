"""The sequencer measure: ``vault.audit.sequence`` over the pending entries (10,000 a
batch, one signed checkpoint a batch), and its floor, the same work in hand-written SQL
on plain tables."""

from __future__ import annotations

import hashlib
from typing import Any

import psycopg

from audit.checkpoint import Checkpoint, sign_checkpoint
from audit.merkle import Frontier
from bench.audit.probes import Span, machine, machine_share, profiled, timed
from bench.audit.target import ORIGIN, Target, connect, open_vault
from vault.crypto.signing import Ed25519Signer, load_signer

SEQUENCE_BATCH = 10_000


def sequence_floor(target: Target) -> dict[str, Any]:
    """The sequencer's work by hand on plain tables; reads audit_entries like the vault."""
    with connect(target.schema, autocommit=True) as conn:
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
    conn = connect(target.schema)
    pid = conn.info.backend_pid
    frontier = Frontier()
    before = machine()
    with timed(pid) as span:
        _sequence_by_hand(conn, frontier, signer)
    conn.close()
    return _sequenced(frontier.size, span, before)


def _sequence_by_hand(
    conn: psycopg.Connection[Any], frontier: Frontier, signer: Ed25519Signer
) -> None:
    """Batches of pending entries: leaf hashes, log rows, a signed checkpoint, dequeue."""
    sha = hashlib.sha256
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


def _sequenced(n: int, span: Span, before: tuple[float, float, float]) -> dict[str, Any]:
    server = span.server_cpu
    return {
        "entries": n,
        "wall": span.wall,
        "rate": n / span.wall if span.wall else 0.0,
        "cpu_ms_per_1k": span.cpu / max(n, 1) * 1e6,
        "server_cpu_ms_per_1k": None if server is None else server / max(n, 1) * 1e6,
        **machine_share(before, span.cpu + (0.0 if server is None else server)),
    }


def sequence_vault(target: Target, profile: str = "") -> dict[str, Any]:
    """``vault.audit.sequence`` over every pending entry, ``profile``d if given."""
    vault = open_vault(target)
    with vault.db.engine.connect() as conn:
        pid = int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
    before = machine()
    with timed(pid) as span, profiled(profile):
        n = vault.audit.sequence(vault.db, batch_size=SEQUENCE_BATCH)
    vault.close()
    return _sequenced(n, span, before)
