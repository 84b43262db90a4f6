"""The independent ingest floor: what each index and constraint of ``interactions`` costs.

The same rows as :mod:`bench.ingest`'s floor (payload as clear JSON bytes) are written
with plain binary ``COPY`` (no pre-check of stored external ids, no crypto, one
transaction per batch of 1,000) into a bare copy of the table that has only the primary
key and the unique external id, then into the same table with one more index or
constraint at a time, and last with all of them (the real table's set). Each step
reports the client's CPU and the PostgreSQL backend's CPU (``/proc/<pid>/stat`` of the
connection's server process, so only on a local server) per 1,000 rows; the difference
to the first step is the price of what that step adds.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

from bench.common import Target

__all__ = ["STEPS", "ladder"]

_TABLE = "ingest_ladder"
_COLUMNS = (
    "id", "customer_id", "channel", "type", "occurred_at", "amount_minor", "currency",
    "external_id", "payload_ct", "recorded_at",
)  # fmt: skip
_TYPES = (
    "uuid", "uuid", "varchar", "varchar", "timestamptz", "int8", "varchar", "varchar",
    "bytea", "timestamptz",
)  # fmt: skip
_TIMELINE = f"CREATE INDEX ON {_TABLE} (customer_id, occurred_at, id)"
_SEGMENT = (
    f"CREATE INDEX ON {_TABLE} (type, occurred_at, customer_id, channel, currency, amount_minor)"
)
_FK = f"ALTER TABLE {_TABLE} ADD FOREIGN KEY (customer_id) REFERENCES customers (id)"
# What replaces the FK on PostgreSQL since migration 0019: the owner check's function
# (vault.storage.models.interactions), one anti-join per COPY over the statement's new
# rows instead of a per-row index probe + FOR KEY SHARE lock of the customer row. Its
# guard on customers (refusing to delete a named customer) costs ingest nothing.
_OWNER_CHECK = (
    f"CREATE TRIGGER ingest_ladder_owners AFTER INSERT ON {_TABLE} "
    "REFERENCING NEW TABLE AS cvault_new_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION cvault_interactions_owner_check()",
)
_CHECKS = (
    f"ALTER TABLE {_TABLE} ADD CHECK ((amount_minor IS NULL) = (currency IS NULL)), "
    "ADD CHECK (channel IN ('web', 'email', 'sms', 'push', 'social', 'chat', 'phone', "
    "'store', 'app'))"
)

# (label, statements added to the bare table: primary key + unique external id)
STEPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("pk + unique external_id", ()),
    ("+ ix_interactions_customer_timeline", (_TIMELINE,)),
    ("+ ix_interactions_segment_scan", (_SEGMENT,)),
    ("+ fk customer_id -> customers", (_FK,)),
    ("+ 2 check constraints", (_CHECKS,)),
    ("+ owner check (0019, replaces the fk)", _OWNER_CHECK),
    ("all, with the fk (interactions before 0019)", (_TIMELINE, _SEGMENT, _FK, _CHECKS)),
    ("all, with the owner check (= interactions)", (_TIMELINE, _SEGMENT, _CHECKS, *_OWNER_CHECK)),
)


def _backend_cpu(pid: int) -> float | None:
    """User + system CPU seconds of a local server process, or None if unreadable."""
    try:
        with open(f"/proc/{pid}/stat") as f:  # noqa: PTH123
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _step(
    conn: Any,  # noqa: ANN401 - a psycopg connection
    statements: Sequence[str],
    batches: Sequence[Sequence[tuple[Any, ...]]],
) -> dict[str, float | None]:
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {_TABLE}")
        cur.execute(
            f"CREATE TABLE {_TABLE} (LIKE interactions INCLUDING DEFAULTS, "
            "PRIMARY KEY (id), UNIQUE (external_id))"
        )
        for sql in statements:
            cur.execute(sql)
        conn.commit()
        cur.execute("SELECT pg_backend_pid()")
        row = cur.fetchone()
        pid = int(row[0]) if row else 0
        server = _backend_cpu(pid)
        cpu = time.process_time()
        started = time.perf_counter()
        rows = 0
        copy_sql = f"COPY {_TABLE} ({', '.join(_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
        for batch in batches:
            with cur.copy(copy_sql) as copy:
                copy.set_types(_TYPES)
                for r in batch:
                    copy.write_row(r)
            conn.commit()
            rows += len(batch)
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu
        after = _backend_cpu(pid)
        cur.execute(f"DROP TABLE {_TABLE}")
        conn.commit()
    per_1k = 1e6 / rows
    return {
        "rows_per_s": rows / wall,
        "client_cpu_ms_per_1k": cpu * per_1k,
        "server_cpu_ms_per_1k": None
        if server is None or after is None
        else (after - server) * per_1k,
    }


def ladder(
    t: Target, batches: Sequence[Sequence[tuple[Any, ...]]], repeat: int
) -> list[dict[str, Any]]:
    """Each step of :data:`STEPS` ``repeat`` times, alternating steps so drift hits all;
    the medians per step."""
    import statistics  # noqa: PLC0415

    import psycopg  # noqa: PLC0415

    url = t.url.replace("postgresql+psycopg://", "postgresql://")
    runs: dict[str, list[dict[str, float | None]]] = {label: [] for label, _ in STEPS}
    with psycopg.connect(url) as conn:
        conn.execute(f'SET search_path TO "{t.schema}"')
        conn.commit()
        _step(conn, (), batches[:20])  # warm-up
        for _ in range(repeat):
            for label, statements in STEPS:
                runs[label].append(_step(conn, statements, batches))
    out = []
    for label, rs in runs.items():
        med: dict[str, Any] = {"step": label}
        for key in ("rows_per_s", "client_cpu_ms_per_1k", "server_cpu_ms_per_1k"):
            values = [v for r in rs if (v := r[key]) is not None]
            med[key] = round(statistics.median(values), 2) if values else None
        out.append(med)
    return out
