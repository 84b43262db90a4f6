"""Scale (issue 17 item 10): 1, 2 and 4 server processes on one PostgreSQL.

One PostgreSQL schema of the run's own (``CVAULT_BENCH_POSTGRES_URL``, default the local
``test`` database; dropped at the end) gets ``cvault init``, ``cvault demo --customers``
(2,000 by default) and one segment (purchased in 90 days, consented to marketing email),
refreshed once. Then, for each N of ``--workers`` (1,2,4), ``cvault serve --workers N``
(production mode; uvicorn's workers share one listening socket, as an operator runs it on
one host) is started, warmed, and driven by wrk (a separate C process, two threads,
``--connections`` keep-alive connections) with a fixed mix, drawn per request:

* 50% a support agent's profile read by id with the first 10 timeline entries
  (the query of bench/graphql);
* 20% a page of 20 customers (support agent);
* 15% a page of 20 members of the segment (marketing, ``marketing_email``);
* 15% ``recordInteractions`` with one interaction (the ingest service), a new
  ``externalId`` each.

Tokens: 8 subjects per role, so the shared per-subject rate limit (on PostgreSQL here:
``docs/propagation.md``; the limit itself is set out of reach) is not one hot row.
A response counts as good when it is HTTP 200 with no GraphQL error; wrk's Lua sorts
good ones by kind from the body. The floor, in the same run at each N: wrk on
``GET /healthz`` (no vault work) for ``--floor-seconds``.

Reported per N: req/s, p50/p99 (wrk), good responses by kind, failures; server CPU-ms
per request (the whole ``cvault serve`` tree from ``/proc/<pid>/stat``; the share per
worker), PostgreSQL CPU-ms per request (the backends whose ``application_name`` is the
run's, from ``pg_stat_activity`` and ``/proc``), wrk's own CPU, and what the rest of the
machine used meanwhile (``/proc/stat`` busy time minus ours: other engineers' work), with
the load average. Run: ``python -m bench.scale`` (``--smoke`` for a quick check).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, text

from api.auth import LocalTokenIssuer
from bench.common import CLK_TCK, PG_URL, admin_sql, emit
from bench.graphql.client import OUR_QUERY, post
from bench.graphql.cpu import all_stats, delta, tree_cpu
from bench.graphql.servers import Server, free_port, wait_ready
from bench.graphql.wrk import parse_wrk
from bench.soak import REFRESH, RULE, SEGMENT, cvault
from policies import Role
from vault.config import Environment, Settings

ROOT = Path(__file__).resolve().parents[1]
PAGE = "{ customers(first: 20) { edges { node { customerId firstName lastName email } } } }"
MEMBERS = ("query($id: ID!) { segment(id: $id) { members(first: 20) { edges { node { "
           "customerId firstName email } } } } }")  # fmt: skip
WRITE = "mutation($i: [InteractionInput!]!) { recordInteractions(interactions: $i) { inserted } }"
KINDS = ("read", "page", "members", "write")
MIX = (0.50, 0.20, 0.15, 0.15)  # in the order of KINDS
ROLES = {  # who sends what: role and purpose
    "support": (Role.SUPPORT_AGENT, "support"),
    "marketing": (Role.MARKETING, "marketing_email"),
    "ingest": (Role.INGEST_SERVICE, "service_delivery"),
}
SUBJECTS = 8  # tokens per role


def lua_mix(path: Path, ids: Sequence[str], segment: str, tokens: dict[str, list[str]],
            tag: str) -> Path:  # fmt: skip
    """The wrk script: the mix above with fixed seeds per thread; ``done`` prints one
    ``SCALE {json}`` line with good responses by kind and failures (one example)."""

    def table(values: Sequence[str]) -> str:
        return "{" + ",".join(f'"{v}"' for v in values) + "}"

    def lua_json(query: str) -> str:
        return f"[==[{json.dumps(query)}]==]"

    when = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    edges = [sum(MIX[: k + 1]) for k in range(len(MIX))]
    lines = [
        f"local ids = {table(ids)}",
        *(f"local tok_{who} = {table(values)}" for who, values in tokens.items()),
        f'local seg = "{segment}"',
        f"local q_read, q_page = {lua_json(OUR_QUERY)}, {lua_json(PAGE)}",
        f"local q_members, q_write = {lua_json(MEMBERS)}, {lua_json(WRITE)}",
        "local counter, threads, n = 0, {}, 0",
        "ok_read, ok_page, ok_members, ok_write, failed, example = 0, 0, 0, 0, 0, ''",
        "function setup(thread)",
        '  thread:set("tid", counter); counter = counter + 1; table.insert(threads, thread)',
        "end",
        "function init(args) math.randomseed(4242 + 7919 * tid) end",
        "local function post(toks, purpose, body)",
        "  local h = {['Content-Type'] = 'application/json', ['X-Purpose'] = purpose,",
        "             ['Authorization'] = 'Bearer ' .. toks[math.random(#toks)]}",
        '  return wrk.format("POST", "/graphql", h, body)',
        "end",
        "function request()",
        "  local r, id = math.random(), ids[math.random(#ids)]",
        f"  if r < {edges[0]} then return post(tok_support, 'support',",
        '      \'{"query":\' .. q_read .. \',"variables":{"id":"\' .. id .. \'"}}\')',
        f"  elseif r < {edges[1]} then",
        "    return post(tok_support, 'support', '{\"query\":' .. q_page .. '}')",
        f"  elseif r < {edges[2]} then return post(tok_marketing, 'marketing_email',",
        '      \'{"query":\' .. q_members .. \',"variables":{"id":"\' .. seg .. \'"}}\')',
        "  end",
        "  n = n + 1",
        "  return post(tok_ingest, 'service_delivery', '{\"query\":' .. q_write ..",
        '    \',"variables":{"i":[{"customerId":"\' .. id .. \'","channel":"WEB",\' ..',
        f'    \'"type":"PAGE_VIEW","occurredAt":"{when}",\' ..',
        f"    '\"externalId\":\"scale-{tag}-' .. tid .. '-' .. n .. '\"}}]}}}}')",
        "end",
        "local function has(body, s) return string.find(body, s, 1, true) ~= nil end",
        "function response(status, headers, body)",
        "  if status == 200 and not has(body, '\"errors\"') then",
        "    if has(body, '\"recordInteractions\"') then ok_write = ok_write + 1; return end",
        "    if has(body, '\"segment\"') then ok_members = ok_members + 1; return end",
        "    if has(body, '\"customers\"') then ok_page = ok_page + 1; return end",
        "    if has(body, '\"customer\"') then ok_read = ok_read + 1; return end",
        "  end",
        "  failed = failed + 1",
        "  if example == '' then",
        "    example = status .. ' ' .. (string.gsub(string.sub(body, 1, 300), '[%c\\\\\"]', ' '))",
        "  end",
        "end",
        "function done(summary, latency, requests)",
        "  local t = {read = 0, page = 0, members = 0, write = 0, failed = 0}",
        "  local ex = ''",
        "  for _, th in ipairs(threads) do",
        "    for _, k in ipairs({'read', 'page', 'members', 'write'}) do",
        "      t[k] = t[k] + th:get('ok_' .. k)",
        "    end",
        "    t.failed = t.failed + th:get('failed')",
        "    if ex == '' then ex = th:get('example') end",
        "  end",
        '  io.write(string.format(\'SCALE {"read":%d,"page":%d,"members":%d,\' ..',
        '    \'"write":%d,"failed":%d,"example":"%s"}\\n\', t.read, t.page, t.members,',
        "    t.write, t.failed, ex))",
        "end",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Run:
    """The run's database, data dir, environment and what the load needs."""

    schema: str
    env: dict[str, str]
    workdir: Path
    tokens: dict[str, list[str]]
    ids: list[str]
    segment: str

    @property
    def app(self) -> str:
        return self.schema


def _env(schema: str, workdir: Path) -> dict[str, str]:
    url = f"{PG_URL}?options={quote(f'-csearch_path={schema}')}&application_name={schema}"
    return {k: v for k, v in os.environ.items() if not k.startswith("CVAULT_")} | {
        "CVAULT_DATA_DIR": str(workdir / "data"),
        "CVAULT_DATABASE_URL": url,
        "CVAULT_ENV": Environment.PRODUCTION.value,
        "CVAULT_TRUSTED_DOCUMENTS": "allow",  # wrk sends the operations as text
        "CVAULT_RATE_LIMIT_PER_MINUTE": str(10**7),
        "CVAULT_LOG_LEVEL": "warning",
    }


def _headers(token: str, purpose: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-Purpose": purpose}


@contextmanager
def prepared(workdir: Path, customers: int) -> Iterator[Run]:
    """A fresh schema with ``cvault init`` + ``demo``, tokens, the customer ids and the
    segment's id (made and refreshed through a one-process server); dropped at the end."""
    schema = f"scale_{uuid.uuid4().hex[:10]}"
    admin_sql([f'CREATE SCHEMA "{schema}"'])
    try:
        env = _env(schema, workdir)
        for step in (["init"], ["demo", "--customers", str(customers)]):
            started = time.monotonic()
            done = subprocess.run([*cvault(), *step], env=env, capture_output=True, cwd=ROOT)  # noqa: S603, PLW1510
            if done.returncode != 0:
                raise RuntimeError(f"cvault {step[0]}: {done.stderr.decode()[-2000:]}")
            emit({"bench": "scale", "event": step[0], "schema": schema,
                  "seconds": round(time.monotonic() - started, 1)})  # fmt: skip
        settings = Settings.from_env(env)
        issuer = LocalTokenIssuer.load_or_create(
            settings.jwt_signing_key, settings.jwt_issuer, settings.jwt_audience
        )
        tokens = {
            who: [issuer.issue(f"scale-{who}-{k}", role, ttl=timedelta(hours=6))
                  for k in range(SUBJECTS)]
            for who, (role, _) in ROLES.items()
        }  # fmt: skip
        engine = create_engine(env["CVAULT_DATABASE_URL"])
        try:
            with engine.connect() as conn:
                ids = [str(r[0]) for r in conn.execute(text("SELECT id FROM customers"))]
        finally:
            engine.dispose()
        run = Run(schema, env, workdir, tokens, ids, "")
        server = start(run, 1)
        try:
            marketing = _headers(tokens["marketing"][0], "marketing_email")
            made = post(server.url, SEGMENT, {"s": {"name": "scale", "rule": RULE}}, marketing)
            run.segment = made["data"]["createSegment"]["id"]
            post(server.url, REFRESH, {"id": run.segment}, marketing)
        finally:
            server.stop()
        yield run
    finally:
        admin_sql([f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'])


def start(run: Run, workers: int) -> Server:
    """``cvault serve --workers N`` on a free port, ready (every worker up)."""
    port = free_port()
    log = run.workdir / f"serve-{workers}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 - our own argv
            [*cvault(), "serve", "--host", "127.0.0.1", "--port", str(port),
             "--workers", str(workers)],
            env=run.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT,
        )  # fmt: skip
    server = Server("cvault", workers, port, proc, log)
    try:
        probe: tuple[str, dict[str, Any], dict[str, str]] = (
            PAGE,
            {},
            _headers(run.tokens["support"][0], "support"),
        )
        wait_ready(server, probe)
    except BaseException:
        server.stop()
        raise
    return server


def backends(app: str) -> list[int]:
    """The PostgreSQL backends the run's servers hold (by ``application_name``)."""
    engine = create_engine(PG_URL, pool_size=1)
    try:
        with engine.connect() as conn:
            query = text("SELECT pid FROM pg_stat_activity WHERE application_name = :a")
            return [int(r[0]) for r in conn.execute(query, {"a": app})]
    finally:
        engine.dispose()


def machine_busy() -> float:
    """CPU seconds the whole machine has spent busy (``/proc/stat``, all cores)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / CLK_TCK


def measure(run: Run, server: Server, args: argparse.Namespace, script: Path | None,
            seconds: float) -> dict[str, Any]:  # fmt: skip
    """One wrk run (the mix with ``script``, else ``GET /healthz``) with CPU around it."""
    url = server.url if script is not None else server.url.replace("/graphql", "/healthz")
    argv = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds:g}s", "--latency",
            "--timeout", "10s", *(["-s", str(script)] if script else []), url]  # fmt: skip
    pg_pids = backends(run.app)
    stats = all_stats()
    pg_before = {p: stats[p].cpu for p in pg_pids if p in stats}
    srv_before, busy_before = tree_cpu(server.proc.pid), machine_busy()
    wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_before = os.getloadavg()[0]
    began = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, check=True)  # noqa: S603
    wall = time.monotonic() - began
    wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    srv = delta(srv_before, tree_cpu(server.proc.pid))
    busy = machine_busy() - busy_before
    stats = all_stats()
    pg_now = set(backends(run.app))
    pg = {p: stats[p].cpu - pg_before.get(p, 0.0) for p in pg_now if p in stats}
    result = parse_wrk(done.stdout)
    n = max(1, result["requests"])
    wrk_cpu = (wrk_after.ru_utime + wrk_after.ru_stime) - (wrk_before.ru_utime
                                                            + wrk_before.ru_stime)  # fmt: skip
    ours = sum(srv.values()) + sum(pg.values()) + wrk_cpu
    result |= {
        "server_cpu_ms_per_req": round(sum(srv.values()) * 1000 / n, 3),
        "postgres_cpu_ms_per_req": round(sum(pg.values()) * 1000 / n, 3),
        "wrk_cpu_ms_per_req": round(wrk_cpu * 1000 / n, 3),
        "server_cores": round(sum(srv.values()) / wall, 2),
        "postgres_cores": round(sum(pg.values()) / wall, 2),
        "others_cores": round(max(0.0, busy - ours) / wall, 2),
        "postgres_backends": len(pg_now),
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }
    if server.processes > 1:
        workers = server.workers()
        total = sum(srv.get(p, 0.0) for p in workers) or 1.0
        result["cpu_share_by_worker"] = [round(srv.get(p, 0.0) / total, 2) for p in workers]
    for line in done.stdout.splitlines():
        if line.startswith("SCALE "):
            result["good"] = json.loads(line[len("SCALE ") :])
    return result


def one(run: Run, workers: int, args: argparse.Namespace) -> dict[str, Any]:
    """Serve with ``workers`` processes: warm up, the mix, the floor; then stop."""
    server = start(run, workers)
    try:
        tag = f"{workers}-{uuid.uuid4().hex[:6]}"
        script = lua_mix(run.workdir / f"mix-{tag}.lua", run.ids, run.segment, run.tokens, tag)
        measure(run, server, args, script, args.warmup)
        mix = measure(run, server, args, script, args.seconds)
        floor = measure(run, server, args, None, args.floor_seconds)
    finally:
        server.stop()
    record = {"bench": "scale", "workers": workers, "mix": mix,
              "floor": {k: floor[k] for k in ("requests", "req_s", "p50_ms", "p99_ms",
                                              "non_2xx", "server_cpu_ms_per_req")}}  # fmt: skip
    emit(record)
    return record


def _machine() -> str:
    model = ""
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False)  # noqa: S607
    for line in lscpu.stdout.splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    return (f"{platform.node()} (nproc {os.cpu_count()}, {model}, "
            f"{platform.python_implementation()} {platform.python_version()})")  # fmt: skip


def table(records: Sequence[dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {_machine()}; {args.customers} "
          f"customers, {args.connections} connections, {args.seconds:g} s per N")  # fmt: skip
    print("\n| processes | mix req/s | p50 ms | p99 ms | good (read/page/members/write) | failed "
          "| server CPU-ms/req | PostgreSQL CPU-ms/req | wrk CPU-ms/req | cores: server + PG "
          "+ others | CPU share by worker | /healthz req/s (floor) | floor p99 ms | load avg "
          "|\n|" + " --- |" * 14)  # fmt: skip
    for r in records:
        m, f, g = r["mix"], r["floor"], r["mix"].get("good", {})
        good = "/".join(str(g.get(k, "?")) for k in KINDS)
        share = " ".join(f"{s:.2f}" for s in m.get("cpu_share_by_worker", [1.0]))
        print(f"| {r['workers']} | {m['req_s']:,.1f} | {m.get('p50_ms')} | {m.get('p99_ms')} | "
              f"{good} | {g.get('failed', '?')} | {m['server_cpu_ms_per_req']} | "
              f"{m['postgres_cpu_ms_per_req']} | {m['wrk_cpu_ms_per_req']} | "
              f"{m['server_cores']} + {m['postgres_cores']} + {m['others_cores']} | {share} | "
              f"{f['req_s']:,.1f} | {f.get('p99_ms')} | {m['load_before']} -> "
              f"{m['load_after']} |")  # fmt: skip
    for r in records:
        example = r["mix"].get("good", {}).get("example")
        if example:
            print(f"first failure at {r['workers']} processes: {example}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--workers", default="1,2,4", help="server processes, comma-separated")
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=30, help="the mix, per N")
    parser.add_argument("--floor-seconds", type=float, default=10, help="/healthz, per N")
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--smoke", action="store_true", help="40 customers, seconds each")
    args = parser.parse_args(argv)
    if args.smoke:
        args.customers, args.seconds, args.floor_seconds, args.warmup = 40, 2, 1, 1
        args.connections = 4
    with tempfile.TemporaryDirectory() as tmp, prepared(Path(tmp), args.customers) as run:
        emit({"bench": "scale", "customers": len(run.ids), "machine": _machine()})
        records = [one(run, int(n), args) for n in args.workers.split(",")]
    table(records, args)
    failed = sum(r["mix"].get("good", {}).get("failed", 1) + r["mix"]["non_2xx"]
                 + r["floor"]["non_2xx"] for r in records)  # fmt: skip
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
