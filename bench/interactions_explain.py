"""Which index of ``interactions`` each query of ours uses (PostgreSQL EXPLAIN).

Loads a small data set (customers, interactions over 300 days, ANALYZEd), then prints
the plan of every compiled segment rule of :mod:`bench.segments.rules` and of the
timeline reads (one customer's page, with and without a filter), naming the
``interactions`` indexes each plan touches. Run: ``python -m bench.interactions_explain``.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from bench.common import BENCH, drop_target, open_vault
from bench.ingest import _batches, _floor_rows, _prepare
from bench.segments.rules import NOW, RULES
from vault.interactions.copy import copy_rows_postgresql
from vault.segments.compile import compile_rule
from vault.segments.parse import parse_rule
from vault.storage.db import make_engine

_INDEX = re.compile(r"(?:Index|Index Only|Bitmap Index) Scan(?: Backward)? (?:using|on) (\w+)")


@contextmanager
def _captured(engine: Any) -> Iterator[list[tuple[str, Any]]]:  # noqa: ANN401 - an Engine
    seen: list[tuple[str, Any]] = []

    def before(_c: Any, _cur: Any, statement: str, params: Any, *_a: Any) -> None:  # noqa: ANN401
        seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


def _explain(session: Session, statement: str, params: Any) -> list[str]:  # noqa: ANN401
    raw: Any = session.connection().connection.driver_connection
    with raw.cursor() as cur:
        cur.execute("EXPLAIN " + statement, params)
        return [line for (line,) in cur.fetchall()]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--rows", type=int, default=300_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        target, ids = _prepare("postgresql", Path(tmp), args.customers)
        try:
            engine = make_engine(target.url, schema=target.schema)
            now = datetime.now(UTC)
            with engine.begin() as conn:
                raw: Any = conn.connection.driver_connection
                for batch in _batches(ids, args.rows, seed=7):
                    copy_rows_postgresql(raw, _floor_rows(batch, now))
                raw.execute("ANALYZE interactions")
            with Session(engine) as session:
                for name, document in RULES.items():
                    stmt = compile_rule(parse_rule(document), now=NOW, dialect="postgresql")
                    with _captured(engine) as seen:
                        session.execute(stmt).all()
                    statement, params = seen[-1]
                    _show(f"segment rule {name}", _explain(session, statement, params))
            vault = open_vault(target)
            with _captured(vault.db.engine) as seen, vault.unit(BENCH) as s:
                vault.interactions.timeline(s, ids[0], first=20, with_payload=False)
                vault.interactions.timeline(
                    s, ids[1], first=20, type="purchase", with_payload=False
                )
                for statement, params in seen:
                    if "interactions" in statement and statement.lstrip().startswith("SELECT"):
                        _show(
                            "timeline: " + " ".join(statement.split())[:90],
                            _explain(s, statement, params),
                        )
            vault.close()
        finally:
            drop_target(target)


def _show(title: str, plan: list[str]) -> None:
    used = sorted({m.group(1) for line in plan for m in _INDEX.finditer(line)})
    print(f"### {title}\nindexes: {', '.join(used) or '(none)'}")
    print("\n".join("    " + line for line in plan))


if __name__ == "__main__":
    main()
