"""bench/scale.py still measures what it says: in its smoke mode (40 demo customers, two
seconds of load) it sets up a real ``cvault serve`` with 1 and then 2 processes over a
PostgreSQL schema of its own, and every request of the mix (profile read, customers page,
segment members page, interaction write) and of the ``/healthz`` floor is a good answer.
Counted, never timed. PostgreSQL only: the bench measures processes sharing one
PostgreSQL (SQLite has no place in it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.processes import unavailable

pytestmark = pytest.mark.processes

ROOT = Path(__file__).resolve().parents[2]
POSTGRESQL = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
KINDS = ("read", "page", "members", "write")


@POSTGRESQL
def test_the_smoke_run_gets_a_good_answer_to_every_request(
    tmp_path: Path, database_url: tuple[str, str | None]
) -> None:
    """Exit 0; at 1 and 2 processes every kind of the mix got good answers and none
    failed, the floor answered 200 every time, both workers of the 2-process server did
    work, and the run's schema is gone afterwards."""
    if shutil.which("wrk") is None:
        unavailable("wrk is not installed (apt-get install wrk)")
    url, _ = database_url
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path),
           "CVAULT_BENCH_POSTGRES_URL": url}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "bench.scale", "--smoke", "--workers", "1,2"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
    runs = {r["workers"]: r for r in lines if "workers" in r}
    expected = {
        workers: {"every kind answered": dict.fromkeys(KINDS, True), "failed": 0,
                  "non-2xx": 0, "failure example": "", "floor non-2xx": 0,
                  "floor answered": True}
        for workers in (1, 2)
    }  # fmt: skip
    actual = {
        workers: {"every kind answered": {k: run["mix"]["good"][k] > 0 for k in KINDS},
                  "failed": run["mix"]["good"]["failed"], "non-2xx": run["mix"]["non_2xx"],
                  "failure example": run["mix"]["good"]["example"],
                  "floor non-2xx": run["floor"]["non_2xx"],
                  "floor answered": run["floor"]["requests"] > 0}
        for workers, run in runs.items()
    }  # fmt: skip
    assert expected == actual
    shares = runs[2]["mix"]["cpu_share_by_worker"]
    expected_workers = [True, True]  # two workers, each did some of the work
    assert expected_workers == [share > 0 for share in shares]
    schema = next(r["schema"] for r in lines if r.get("event") == "init")
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            left = conn.scalar(
                text("SELECT count(*) FROM information_schema.schemata WHERE schema_name = :s"),
                {"s": schema},
            )
    finally:
        engine.dispose()
    assert left == 0
