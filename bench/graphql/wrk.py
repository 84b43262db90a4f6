"""Load and measurement: the wrk Lua script (the same ids in the same order for every
server), one wrk run with the CPU of the server tree and of PostgreSQL read before
and after, how connections split between workers, and PostgreSQL sessions opened."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg

from bench.graphql.cpu import delta, postgres_cpu, tree_cpu
from bench.graphql.plan import Plan
from bench.graphql.servers import Server
from bench.graphql.target import LIBPQ_URL


def lua_script(path: Path, query: str, ids: Sequence[uuid.UUID], headers: dict[str, str],
               tokens: Sequence[str] = ()) -> Path:  # fmt: skip
    """A wrk script: POST the query for a random id of the list; fixed seeds per thread,
    so every server gets the same sequence of ids. With tokens, token i goes with id i."""

    def table(values: Sequence[str]) -> str:
        return "{\n" + ",\n".join(f'"{v}"' for v in values) + "\n}"

    lines = [
        f"local ids = {table([str(i) for i in ids])}",
        f"local tokens = {table(list(tokens))}",
        f"local query = [==[{json.dumps(query)}]==]",
        'wrk.method = "POST"',
        'wrk.headers["Content-Type"] = "application/json"',
        *(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()),
        "local counter = 0",
        "function setup(thread)",
        '  thread:set("tid", counter)',
        "  counter = counter + 1",
        "end",
        "local bodies = {}",
        "function init(args)",
        "  math.randomseed(4242 + 7919 * tid)",
        "  for i, id in ipairs(ids) do",
        '    bodies[i] = \'{"query":\' .. query .. \',"variables":{"id":"\' .. id .. \'"}}\'',
        "  end",
        "end",
        "function request()",
        "  local i = math.random(#ids)",
        '  if #tokens > 0 then wrk.headers["Authorization"] = "Bearer " .. tokens[i] end',
        '  return wrk.format(nil, "/graphql", nil, bodies[i])',
        "end",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if match is None:
        raise ValueError(f"unreadable wrk latency {value!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for pct in ("50", "75", "90", "99"):
        match = re.search(rf"^\s+{pct}(?:\.0+)?%\s+(\S+)", output, re.MULTILINE)
        if match:
            result[f"p{pct}_ms"] = round(_ms(match.group(1)), 2)
    match = re.search(r"(\d+) requests in ([\d.]+)(\w+),", output)
    if match is None:
        raise RuntimeError(f"unreadable wrk output:\n{output}")
    result["requests"] = int(match.group(1))
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    result["req_s"] = round(float(rps.group(1)), 1) if rps else 0.0
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    result["non_2xx"] = int(bad.group(1)) if bad else 0
    errors = re.search(r"Socket errors: (.*)", output)
    result["socket_errors"] = errors.group(1) if errors else None
    return result


def _connections(port: int) -> dict[int, int]:
    """Established server-side connections on the port, by owning pid."""
    out = subprocess.run(  # noqa: S603
        ["ss", "-Htnp", "state", "established", f"( sport = :{port} )"],  # noqa: S607
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    owners: Counter[int] = Counter()
    for line in out.splitlines():
        match = re.search(r"pid=(\d+)", line)
        owners[int(match.group(1)) if match else 0] += 1
    return dict(owners)


def _local_ports_to_postgres(pids: set[int]) -> set[int]:
    """The local ports of the established connections to PostgreSQL that ``pids`` own."""
    out = subprocess.run(
        ["ss", "-Htnp", "state", "established", "( dport = :5432 )"],  # noqa: S607
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    ports: set[int] = set()
    for line in out.splitlines():
        owner = re.search(r"pid=(\d+)", line)
        fields = line.split()
        if owner is None or int(owner.group(1)) not in pids or len(fields) < 3:
            continue
        ports.add(int(fields[2].rsplit(":", 1)[1]))
    return ports


class Sessions:
    """PostgreSQL sessions opened on the database so far (``pg_stat_database``): a
    server whose pool is smaller than its concurrency opens and closes connections.
    Also which backends serve a server: PostgreSQL is shared with other work on this
    box, so its CPU as a whole is an upper bound of what a server costs it."""

    def __init__(self) -> None:
        self._conn: psycopg.Connection[Any] | None = None

    def count(self) -> int:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(LIBPQ_URL, autocommit=True)
        row = self._conn.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        return int(row[0]) if row else 0

    def backends_of(self, server: Server) -> set[int]:
        """Pids of the PostgreSQL backends connected to a process of ``server`` now."""
        ports = _local_ports_to_postgres(set(tree_cpu(server.proc.pid)))
        if not ports:
            return set()
        self.count()  # connects if needed
        if self._conn is None:
            return set()
        rows = self._conn.execute(
            "SELECT pid, client_port FROM pg_stat_activity WHERE client_port IS NOT NULL"
        ).fetchall()
        return {int(pid) for pid, port in rows if port in ports}

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


SESSIONS = Sessions()


def run_wrk(
    plan: Plan, server: Server, script: Path, seconds: float, connections: int | None = None
) -> dict[str, Any]:
    """One wrk run; CPU of the server tree and of PostgreSQL before and after."""
    connections = connections or plan.connections
    threads = min(plan.threads, connections)
    sampled: dict[int, int] = {}
    sessions = SESSIONS.count()
    backends = SESSIONS.backends_of(server)

    def sample() -> None:
        time.sleep(min(3.0, seconds / 3))
        sampled.update(_connections(server.port))
        backends.update(SESSIONS.backends_of(server))

    sampler = threading.Thread(target=sample, daemon=True)
    server_before, pg_before = tree_cpu(server.proc.pid), postgres_cpu()
    sampler.start()
    done = subprocess.run(  # noqa: S603
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s",  # noqa: S607
         "--latency", "--timeout", "10s", "-s", str(script), server.url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    server_cpu = delta(server_before, tree_cpu(server.proc.pid))
    pg_cpu = delta(pg_before, postgres_cpu())
    sampler.join()
    backends.update(SESSIONS.backends_of(server))
    result = parse_wrk(done.stdout)
    requests = max(1, result["requests"])
    result["pg_sessions_opened"] = SESSIONS.count() - sessions
    result["server_cpu_ms_per_req"] = round(sum(server_cpu.values()) * 1000 / requests, 3)
    result["postgres_cpu_ms_per_req"] = round(sum(pg_cpu.values()) * 1000 / requests, 3)
    # only the backends connected to this server (live at the start, a third in, or the
    # end): without other work's sessions, PostgreSQL's background writers or backends
    # that came and went, a lower bound
    own = sum(pg_cpu.get(pid, 0.0) for pid in backends)
    result["postgres_own_cpu_ms_per_req"] = round(own * 1000 / requests, 3)
    result["postgres_own_backends"] = len(backends)
    if server.processes > 1:
        workers = server.workers()
        result["connections_by_worker"] = [sampled.get(p, 0) for p in workers]
        total = sum(server_cpu.get(p, 0.0) for p in workers) or 1.0
        result["cpu_share_by_worker"] = [round(server_cpu.get(p, 0.0) / total, 2)
                                         for p in workers]  # fmt: skip
    return result
