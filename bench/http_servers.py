"""uvicorn beside granian (issue 15 item 5): one server process each, same run, alternating.

One PostgreSQL schema of the run's own (as bench/scale.py: ``cvault init`` + ``demo``,
2,000 customers by default; dropped at the end). For each of ``--rounds`` rounds, each
server in turn (the order alternates between rounds) is started with ``cvault serve
--server NAME`` (production mode, one process), warmed, then driven by wrk (two threads,
``--connections`` keep-alive connections): the support agent's profile read by id with
its 10 newest interactions (the query of bench/graphql, ids drawn with fixed seeds, so
both servers get the same sequence), then ``GET /healthz``. Server CPU per request is
the server process tree's CPU time (``/proc``) over the requests wrk counted; the table
gives the median of the rounds, and each round's figures are emitted as JSON lines.

    PYTHONPATH=$PWD .venv/bin/python -m bench.http_servers [--rounds 3] [--seconds 10]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import emit
from bench.graphql.client import OUR_QUERY
from bench.graphql.servers import Server, free_port, wait_ready
from bench.graphql.wrk import lua_script
from bench.scale import ROOT, Run, _headers, _machine, measure, prepared
from bench.soak import cvault

SERVERS = ("uvicorn", "granian")
FIELDS = ("req_s", "p50_ms", "p99_ms", "server_cpu_ms_per_req", "postgres_cpu_ms_per_req")


def start(run: Run, name: str) -> Server:
    """``cvault serve --server NAME`` (one process) on a free port, ready."""
    port = free_port()
    log = run.workdir / f"serve-{name}-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 - our own argv
            [*cvault(), "serve", "--host", "127.0.0.1", "--port", str(port), "--server", name],
            env=run.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT,
        )  # fmt: skip
    server = Server(name, 1, port, proc, log)
    try:
        probe = (OUR_QUERY, {"id": run.ids[0]}, _headers(run.tokens["support"][0], "support"))
        wait_ready(server, probe)
    except BaseException:
        server.stop()
        raise
    return server


def one(run: Run, name: str, script: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Warm up, the profile read, /healthz; then stop."""
    server = start(run, name)
    try:
        measure(run, server, args, script, args.warmup)
        profile = measure(run, server, args, script, args.seconds)
        health = measure(run, server, args, None, args.seconds)
    finally:
        server.stop()
    record = {"bench": "http_servers", "server": name,
              "profile": {k: profile[k] for k in (*FIELDS, "non_2xx", "others_cores")},
              "healthz": {k: health[k] for k in (*FIELDS, "non_2xx", "others_cores")}}  # fmt: skip
    emit(record)
    return record


def table(records: Sequence[dict[str, Any]]) -> str:
    """Medians per server and route, markdown."""
    lines = ["| server | route | req/s | p50 ms | p99 ms | server CPU-ms/req | PG CPU-ms/req |",
             "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for route in ("profile", "healthz"):
        for name in SERVERS:
            mine = [r[route] for r in records if r["server"] == name]
            cells = [f"{statistics.median(m[k] for m in mine):g}" for k in FIELDS]
            lines.append(f"| {name} | {route} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--smoke", action="store_true", help="40 customers, 1 round, 1 s")
    args = parser.parse_args(argv)
    if args.smoke:
        args.customers, args.rounds, args.seconds, args.warmup, args.connections = 40, 1, 1, 1, 4
    records: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, prepared(Path(tmp), args.customers) as run:
        emit({"bench": "http_servers", "customers": len(run.ids), "machine": _machine()})
        headers = _headers(run.tokens["support"][0], "support")
        ids = [uuid.UUID(i) for i in run.ids]
        script = lua_script(run.workdir / "profile.lua", OUR_QUERY, ids, headers)
        for n in range(args.rounds):
            order = SERVERS if n % 2 == 0 else SERVERS[::-1]
            records.extend(one(run, name, script, args) for name in order)
    print(table(records))
    failed = sum(r[route]["non_2xx"] for r in records for route in ("profile", "healthz"))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
