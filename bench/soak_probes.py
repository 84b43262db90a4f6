"""What bench/soak.py watches beside the load: the server's memory (VmRSS of a process
tree), the vault's slow or waiting SQL statements (``pg_stat_activity``, by
``application_name``), and the ANALYZE it runs when asked, in place of autovacuum."""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path

from sqlalchemy import Engine, create_engine, text

from bench.common import PG_URL

__all__ = ["analyze", "slow_statements", "tree_rss_kb"]


def tree_rss_kb(root: int) -> int:
    """VmRSS of ``root`` and every descendant, in kB."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    family, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [p for p, pp in parents.items() if pp == parent and p not in family]
        family.update(children)
        frontier.extend(children)
    total = 0
    for pid in family:
        with suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


_WAITING = text(  # waiting on a lock, or running for over 2 s
    "SELECT coalesce(wait_event, 'cpu'), left(regexp_replace(query, '\\s+', ' ', 'g'), 120)"
    " FROM pg_stat_activity WHERE application_name = :app AND state = 'active'"
    " AND (wait_event_type = 'Lock' OR now() - query_start > interval '2 seconds')"
)


def slow_statements(engine: Engine, app: str) -> list[str]:
    """The statements of connections named ``app`` that wait on a lock or have run for
    over 2 s, now: what they wait on (or ``cpu``) and their first 120 characters."""
    with engine.connect() as conn:
        return [f"{event}: {query}" for event, query in conn.execute(_WAITING, {"app": app})]


def analyze(schema: str) -> None:
    """What autovacuum would do (it is off on the test server): fresh planner statistics."""
    engine = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            tables = conn.scalars(text("SELECT tablename FROM pg_tables WHERE schemaname = :s"),
                                  {"s": schema}).all()  # fmt: skip
            for table in tables:
                conn.execute(text(f'ANALYZE "{schema}"."{table}"'))
    finally:
        engine.dispose()
