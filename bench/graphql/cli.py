"""``python -m bench.graphql``: check the tools, load the data, race at each process
count, print the tables; servers stop and schemas drop even on failure or SIGTERM."""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench.common import emit
from bench.graphql.load import load
from bench.graphql.plan import parse_plan
from bench.graphql.race import Race
from bench.graphql.servers import ensure_postgraphile
from bench.graphql.target import Target, schemas
from bench.graphql.wrk import SESSIONS
from vault.logs import configure_logging


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwind, so servers stop and schemas are dropped


def main(argv: Sequence[str] | None = None) -> None:
    plan, json_path = parse_plan(argv)
    signal.signal(signal.SIGTERM, _terminate)
    configure_logging("warning")  # the loaders' per-batch lines would drown the results
    for tool in ("wrk", "node", "ss"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is required (wrk: apt-get install wrk)")
    binary, peer_version = ensure_postgraphile()
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True)  # noqa: S607
    with tempfile.TemporaryDirectory(prefix="gqlbench-") as tmp, schemas() as (vs, ps):
        run = Race(plan, Target(vs, ps, Path(tmp) / "data"), Path(tmp), binary)
        try:
            started = time.perf_counter()
            ids, timings = load(plan, run.target)
            timings["total_s"] = round(time.perf_counter() - started, 1)
            emit({"event": "loaded", "customers": len(ids),
                  "interactions": plan.interactions} | timings)  # fmt: skip
            run.prepare(ids)
            run.header = {
                "date": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC", "host": platform.node(),
                "cpus": os.cpu_count(), "python": platform.python_version(),
                "node": node.stdout.strip(), "postgraphile": peer_version,
                "customers": len(ids), "interactions": plan.interactions, "ids": plan.ids,
                "subject_ids": plan.subject_ids, "threads": plan.threads,
                "connections": plan.connections, "warmup": plan.warmup,
                "repeat": plan.repeat, "duration": plan.duration,
                "load": ", ".join(f"{k} {v}" for k, v in timings.items()),
            }  # fmt: skip
            for processes in plan.processes:
                run.at_processes(processes)
        finally:
            for server in run.servers:
                server.stop()
            SESSIONS.close()
    print()
    print(run.report())
    if json_path is not None:
        everything = {"header": run.header, "results": run.results, "one_connection": run.single}
        json_path.write_text(json.dumps(everything, indent=2, default=str))
