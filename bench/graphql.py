"""GraphQL throughput race: our gateway against PostGraphile v4 on the same data.

One run does everything below and cleans up after itself, even on failure:

1. **Data**, in two fresh PostgreSQL schemas (not timed in the race):
   * the vault's tables, written by our services (``vault.customers.create`` in
     units of 500, ``vault.interactions.record_many`` in batches of 1,000, as the
     ``system`` role, on ``--load-workers`` forked processes): N customers with all
     six PII fields, about 10 interactions each, every value encrypted;
   * the same values in clear, plain tables for PostGraphile: ``pg_customers``
     and ``pg_interactions`` (index on ``(customer_id, occurred_at DESC)``).
2. **Servers**: ours is ``uvicorn api.app:create_app_from_env --factory`` (production
   mode, uvloop and httptools when installed, a data dir made by
   ``vault.bootstrap.initialise`` whose keyring loaded the data), with 1 and then
   2 processes (``--workers 2``: one shared socket; how the 16 connections split
   between the workers is recorded from ``ss`` and per-process CPU time). The
   peer is PostGraphile 4 (``bench/postgraphile``, installed with npm on first run)
   on the plain schema, one process and ``--cluster-workers 2``. Both run at the
   same time; timed runs alternate between them so drift hits both.
3. **Query**: the profile query, a customer's six PII fields and its 10 latest
   interactions, for a random customer from a pre-chosen list (the same ids and
   the same sequence of ids for every server: wrk's Lua with fixed seeds). Ours
   with a ``support_agent`` token and ``X-Purpose: support`` (policy: masked,
   clear and hidden fields; decryption; two audit entries per request), and
   once more with ``data_subject`` tokens (``X-Purpose: self``, every field in
   clear, a token per customer) since no other role reads every field in clear.
4. **Load**: wrk, 2 threads, 16 keep-alive connections, a warm-up, then 3 timed
   runs (20 s each). Reported: req/s, p50 and p99 (wrk ``--latency``), CPU-ms per
   request of the server's processes and of PostgreSQL (``/proc/<pid>/stat``
   before and after each run). Also recorded: PostgreSQL sessions opened during
   each run (a pool smaller than the concurrency opens and closes connections),
   and one run per server at one connection (the latency of a request with no
   queue in front of it: with 16 connections, p50 is about 16 / throughput by
   Little's law).

Results are printed as JSON lines as they come, then as a markdown table with
the ratio ours / PostGraphile at the same process count and the targets of
issue 3 (>= 1.0x PostGraphile's req/s, p50 <= 5 ms). ``--profile`` also records
our one-process server with py-spy under the same load (flame graph and
collapsed stacks in ``bench/out/``) and prints where its CPU goes, by the
innermost function of ours on each sampled stack, in CPU-ms per request.

Run: ``python -m bench.graphql [--profile]`` (100,000 customers / 1,000,000
interactions, about 15 minutes here) or ``python -m bench.graphql --quick``
(2,000 customers, 4 s runs, about two minutes). Needs ``wrk`` and ``node``/``npm``
on the PATH; ``--profile`` needs py-spy (``pip install py-spy``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from sqlalchemy import create_engine, text

from api.auth import LocalTokenIssuer
from bench.common import fork_map
from policies import Role
from vault.authorization.context import AccessContext
from vault.bootstrap import initialise
from vault.config import Environment, Settings
from vault.customers import CustomerInput
from vault.customers.addresses import PostalAddress
from vault.interactions.service import InteractionInput
from vault.logs import configure_logging
from vault.runtime import Vault

PG_URL = os.environ.get(
    "CVAULT_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
LIBPQ_URL = PG_URL.replace("postgresql+psycopg://", "postgresql://", 1)
ROOT = Path(__file__).resolve().parent.parent
PEER_DIR = Path(__file__).resolve().parent / "postgraphile"
OUT_DIR = Path(__file__).resolve().parent / "out"
BENCH = AccessContext.system("bench")
CUSTOMERS_PER_UNIT = 500
BATCH = 1000
CLK_TCK = os.sysconf("SC_CLK_TCK")

OUR_QUERY = (
    "query($id: ID!) { customer(id: $id) { id email phone firstName lastName birthDate "
    "address interactions(first: 10) { edges { node { id channel type occurredAt amount } "
    "} } } }"
)
PEER_QUERY = (
    "query($id: UUID!) { pgCustomerById(id: $id) { id email phone firstName lastName "
    "birthDate address pgInteractionsByCustomerId(first: 10, orderBy: OCCURRED_AT_DESC) { "
    "edges { node { id channel type occurredAt amount } } } } }"
)

FIRST_NAMES = (
    "Jane", "Ahmad", "Zoë", "Sara", "Łukasz", "Olivia", "Chidi", "Ingrid",
    "José", "Mei", "Reza", "Yuki", "محمد", "Анна", "Søren", "Priya",
)  # fmt: skip
LAST_NAMES = (
    "Doe", "Karimi", "Müller", "Nowak", "Tanaka", "Smith", "Okafor", "Larsen",
    "García", "Chen", "Rossi", "Dubois", "رضایی", "Иванова", "Ødegaard", "Patel",
)  # fmt: skip
STREETS = (  # (street, city, postal code, country): addresses in parts
    ("Baker Street", "London", "NW1 6XE", "GB"), ("Deansgate", "Manchester", "M3 4LQ", "GB"),
    ("Main Street", "Springfield", "62701", "US"), ("Hauptstraße", "Berlin", "10115", "DE"),
    ("خیابان ولیعصر", "تهران", "", "IR"), ("Rue de Rivoli", "Paris", "75001", "FR"),
    ("Via Roma", "Roma", "00184", "IT"),
)  # fmt: skip
PHONE_PREFIXES = ("+49151", "+44770", "+3361", "+98912", "+39347")
KINDS = (("web", "page_view", False), ("web", "cart_add", False), ("web", "purchase", True),
         ("email", "email_open", False), ("email", "email_click", False),
         ("app", "app_open", False), ("chat", "chat_message", False),
         ("store", "store_visit", False), ("store", "purchase", True),
         ("sms", "sms_click", False), ("web", "refund", True))  # fmt: skip


# -- sizes and options ---------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    customers: int
    interactions: int
    ids: int
    subject_ids: int
    warmup: float
    duration: float
    repeat: int
    connections: int
    threads: int
    processes: tuple[int, ...]
    load_workers: int
    profile: bool
    seed: int


def _plan(argv: Sequence[str] | None) -> tuple[Plan, Path | None]:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--customers", type=int, default=100_000)
    p.add_argument("--interactions", type=int, default=1_000_000)
    p.add_argument("--quick", action="store_true", help="2,000 customers, 4 s runs")
    p.add_argument("--ids", type=int, default=10_000, help="customer ids to draw from")
    p.add_argument("--subject-ids", type=int, default=1_000, help="data_subject tokens")
    p.add_argument("--warmup", type=float, help="seconds (default 15, quick 3)")
    p.add_argument("--duration", type=float, help="seconds per timed run (default 20, quick 4)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--processes", default="1,2", help="server process counts")
    p.add_argument("--load-workers", type=int, default=2, help="processes writing the data")
    p.add_argument("--profile", action="store_true", help="py-spy our 1-process server")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--json", type=Path, help="also write all results here")
    a = p.parse_args(argv)
    customers, interactions = a.customers, a.interactions
    if a.quick:
        customers, interactions = 2_000, 20_000
    warmup = a.warmup if a.warmup is not None else (3.0 if a.quick else 15.0)
    duration = a.duration if a.duration is not None else (4.0 if a.quick else 20.0)
    ids = min(a.ids, customers)
    plan = Plan(
        customers=customers,
        interactions=interactions,
        ids=ids,
        subject_ids=min(a.subject_ids, ids),
        warmup=warmup,
        duration=duration,
        repeat=a.repeat,
        connections=a.connections,
        threads=a.threads,
        processes=tuple(int(n) for n in a.processes.split(",")),
        load_workers=max(1, a.load_workers),
        profile=a.profile,
        seed=a.seed,
    )
    return plan, a.json


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record, default=str), flush=True)


# -- data ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where the run writes: the vault schema, the plain schema and the data dir."""

    vault_schema: str
    plain_schema: str
    data_dir: Path

    @property
    def database_url(self) -> str:
        return f"{PG_URL}?options={quote(f'-csearch_path={self.vault_schema}')}"

    def env(self) -> dict[str, str]:
        return {
            "CVAULT_DATA_DIR": str(self.data_dir),
            "CVAULT_DATABASE_URL": self.database_url,
            "CVAULT_ENV": Environment.PRODUCTION.value,
            "CVAULT_RATE_LIMIT_PER_MINUTE": str(10**7),
        }

    def settings(self) -> Settings:
        return Settings.from_env(self.env())


def _address(rng: random.Random) -> PostalAddress:
    number = rng.randint(1, 240)
    street, city, postal_code, country = rng.choice(STREETS)
    return PostalAddress(street=f"{number} {street}", city=city,
                         postal_code=postal_code or None, country=country)  # fmt: skip


def _person(rng: random.Random, n: int) -> CustomerInput:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    born = date(1950, 1, 1) + timedelta(days=rng.randrange(20_000))
    return CustomerInput(
        email=f"customer.{n}@{rng.choice(('example.com', 'example.org'))}",
        phone=f"{rng.choice(PHONE_PREFIXES)}{rng.randrange(10**7):07d}",
        first_name=first,
        last_name=last,
        birth_date=born,
        address=_address(rng),
        locale="en-GB",
        tier=rng.choice(("bronze", "silver", "gold")),
    )


PlainCustomer = tuple[uuid.UUID, str | None, str | None, str | None, str | None, str | None,
                      str | None]  # fmt: skip


class WorkerFailed(RuntimeError):
    """A loading worker's error, as text: domain errors do not pickle back."""


def _load_customers(args: tuple[Target, int, int, int]) -> list[PlainCustomer]:
    try:
        return _create_customers(*args)
    except Exception as exc:  # noqa: BLE001 - any failure goes back to the parent as text
        raise WorkerFailed(f"{type(exc).__name__}: {exc}") from None


def _create_customers(target: Target, start: int, stop: int, seed: int) -> list[PlainCustomer]:
    """Customers [start, stop) through the vault; their clear values back."""
    vault = Vault.open(target.settings())
    rows: list[PlainCustomer] = []
    try:
        for unit_start in range(start, stop, CUSTOMERS_PER_UNIT):
            with vault.unit(BENCH) as session:
                for n in range(unit_start, min(stop, unit_start + CUSTOMERS_PER_UNIT)):
                    c = vault.customers.create(session, _person(random.Random(seed * 7 + n), n))
                    row = (c.id, c.email, c.phone, c.first_name, c.last_name, c.birth_date,
                           c.address)  # fmt: skip
                    rows.append(row)
    finally:
        vault.close()
    return rows


def _interaction_batch(
    batch: int, owners: Sequence[int], ids: Sequence[uuid.UUID], seed: int, now: datetime
) -> list[InteractionInput]:
    rng = random.Random(f"{seed}:{batch}")
    items = []
    for offset, owner in enumerate(owners):
        n = batch * BATCH + offset
        channel, kind, money = KINDS[rng.randrange(len(KINDS))]
        items.append(
            InteractionInput(
                customer_id=ids[owner],
                channel=channel,
                type=kind,
                occurred_at=now - timedelta(seconds=rng.randrange(365 * 86_400)),
                amount=Decimal(rng.randrange(100, 50_000)) / 100 if money else None,
                currency="EUR" if money else None,
                external_id=f"gql-{n}",
                payload={"url": f"/p/{rng.randrange(10_000)}", "ref": "newsletter", "n": n},
            )
        )
    return items


def _load_interactions(
    args: tuple[Target, list[tuple[int, list[int]]], list[uuid.UUID], int, datetime],
) -> int:
    try:
        return _record_interactions(*args)
    except Exception as exc:  # noqa: BLE001 - any failure goes back to the parent as text
        raise WorkerFailed(f"{type(exc).__name__}: {exc}") from None


def _record_interactions(
    target: Target,
    batches: list[tuple[int, list[int]]],
    ids: list[uuid.UUID],
    seed: int,
    now: datetime,
) -> int:
    """Batches of interactions through the vault; their payloads in clear go to a
    staging table of the plain schema, joined on the external id later."""
    vault = Vault.open(target.settings())
    stored = 0
    try:
        with psycopg.connect(LIBPQ_URL, autocommit=True) as plain:
            for batch, owners in batches:
                items = _interaction_batch(batch, owners, ids, seed, now)
                with vault.unit(BENCH) as session:
                    stored += vault.interactions.record_many(session, items).inserted
                stage = f'"{target.plain_schema}".stage'
                with plain.cursor() as cur, cur.copy(f"COPY {stage} FROM STDIN") as copy:
                    for item in items:
                        copy.write_row((item.external_id, json.dumps(item.payload)))
    finally:
        vault.close()
    return stored


def _sql(statements: Sequence[str]) -> None:
    with psycopg.connect(LIBPQ_URL, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement.encode())


def load(plan: Plan, target: Target) -> tuple[list[uuid.UUID], dict[str, float]]:
    """Both copies of the data; returns the customer ids and how long each step took."""
    timings: dict[str, float] = {}
    plain, vs = f'"{target.plain_schema}"', f'"{target.vault_schema}"'
    started = time.perf_counter()
    initialise(target.settings())  # data dir, keyring, audit key, migrations
    _sql([
        f"CREATE TABLE {plain}.pg_customers (id uuid PRIMARY KEY, email text, phone text, "
        "first_name text, last_name text, birth_date date, address text)",
        f"CREATE TABLE {plain}.pg_interactions (id uuid PRIMARY KEY, customer_id uuid NOT NULL "
        f"REFERENCES {plain}.pg_customers (id), channel text NOT NULL, type text NOT NULL, "
        "occurred_at timestamptz NOT NULL, amount numeric(12, 2), payload jsonb)",
        f"CREATE UNLOGGED TABLE {plain}.stage (external_id text, payload jsonb)",
    ])  # fmt: skip
    timings["setup_s"] = time.perf_counter() - started
    workers = plan.load_workers

    started = time.perf_counter()
    bounds = [plan.customers * w // workers for w in range(workers + 1)]
    tasks = [(target, bounds[w], bounds[w + 1], plan.seed) for w in range(workers)]
    people = [row for part in fork_map(_load_customers, tasks) for row in part]
    timings["vault_customers_s"] = time.perf_counter() - started
    ids = [row[0] for row in people]

    started = time.perf_counter()
    rng = random.Random(plan.seed)
    owners = sorted(rng.randrange(len(ids)) for _ in range(plan.interactions))
    batches = [(b, owners[b * BATCH : (b + 1) * BATCH]) for b in range(-(-len(owners) // BATCH))]
    now = datetime.now(UTC)
    jobs = [(target, batches[w::workers], ids, plan.seed, now) for w in range(workers)]
    stored = sum(fork_map(_load_interactions, jobs))
    if stored != plan.interactions:
        raise RuntimeError(f"stored {stored} interactions of {plan.interactions}")
    timings["vault_interactions_s"] = time.perf_counter() - started

    started = time.perf_counter()
    with psycopg.connect(LIBPQ_URL) as conn:
        with conn.cursor() as cur, cur.copy(f"COPY {plain}.pg_customers FROM STDIN") as copy:
            for row in people:
                copy.write_row(row)
        copy_plain = (
            f"INSERT INTO {plain}.pg_interactions SELECT i.id, i.customer_id, i.channel, "  # noqa: S608
            "i.type, i.occurred_at, (i.amount_minor::numeric / 100)::numeric(12, 2), s.payload "
            f"FROM {vs}.interactions i JOIN {plain}.stage s ON s.external_id = i.external_id"
        )
        conn.execute(copy_plain.encode())
    _sql([
        f"CREATE INDEX ON {plain}.pg_interactions (customer_id, occurred_at DESC)",
        f"DROP TABLE {plain}.stage",
        f"VACUUM ANALYZE {plain}.pg_customers",
        f"VACUUM ANALYZE {plain}.pg_interactions",
    ])  # fmt: skip
    timings["plain_copy_s"] = time.perf_counter() - started

    started = time.perf_counter()
    vault = Vault.open(target.settings())
    try:
        vault.audit.sequence(vault.db)  # the load's audit entries, not the race's work
    finally:
        vault.close()
    tables = ("customers", "data_keys", "interactions", "customer_external_ids", "audit_entries")
    _sql([f"VACUUM ANALYZE {vs}.{t}" for t in tables])
    timings["vault_sequence_vacuum_s"] = time.perf_counter() - started
    return ids, {k: round(v, 1) for k, v in timings.items()}


# -- processes -----------------------------------------------------------------------


@dataclass(frozen=True)
class Proc:
    """One process from ``/proc/<pid>/stat``: CPU seconds of its own and of its
    children that exited (a PostgreSQL backend's CPU lands in the postmaster's)."""

    ppid: int
    name: str
    cpu: float
    reaped: float


def _all_stats() -> dict[int, Proc]:
    out: dict[int, Proc] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        rest = raw[raw.rfind(")") + 2 :].split()
        out[int(entry.name)] = Proc(
            ppid=int(rest[1]),
            name=raw[raw.find("(") + 1 : raw.rfind(")")],
            cpu=(int(rest[11]) + int(rest[12])) / CLK_TCK,
            reaped=(int(rest[13]) + int(rest[14])) / CLK_TCK,
        )
    return out


def tree_cpu(root: int) -> dict[int, float]:
    """CPU seconds of a process and all its live descendants, by pid."""
    stats = _all_stats()
    children: dict[int, list[int]] = {}
    for pid, proc in stats.items():
        children.setdefault(proc.ppid, []).append(pid)
    out: dict[int, float] = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            out[pid] = stats[pid].cpu
            todo.extend(children.get(pid, []))
    return out


def postgres_cpu() -> dict[int, float]:
    """CPU seconds of every PostgreSQL process, plus (under the key 0) what backends
    that already exited used: a pool that churns connections leaves no live backend."""
    stats = _all_stats()
    out = {pid: p.cpu for pid, p in stats.items() if p.name == "postgres"}
    out[0] = sum(
        p.reaped
        for p in stats.values()
        if p.name == "postgres" and stats.get(p.ppid, Proc(0, "", 0, 0)).name != "postgres"
    )
    return out


def _delta(before: dict[int, float], after: dict[int, float]) -> dict[int, float]:
    """CPU used in between, by pid. A process that exited in between is counted through
    its parent's reaped time (key 0), so what it had used before is taken off."""
    out = {pid: after[pid] - before.get(pid, 0.0) for pid in after}
    for pid in before.keys() - after.keys():
        out[pid] = -before[pid]
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    processes: int
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    def stop(self) -> None:
        if self.proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    def workers(self) -> list[int]:
        """The pids that serve requests: the root alone, or its non-helper children."""
        pids = tree_cpu(self.proc.pid)
        if self.processes == 1:
            return [self.proc.pid]
        stats = _all_stats()
        return sorted(
            p for p in pids
            if p != self.proc.pid and stats[p].ppid == self.proc.pid
            and "resource_tracker" not in _cmdline(p)
        )  # fmt: skip


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _spawn(
    name: str, processes: int, argv: list[str], *, env: dict[str, str], log: Path, cwd: Path
) -> Server:
    port = int(argv[argv.index("--port") + 1])
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 - our own argv
            argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Server(name, processes, port, proc, log)


def _importable(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def start_ours(target: Target, processes: int, workdir: Path) -> Server:
    loop = "uvloop" if _importable("uvloop") else "asyncio"
    http = "httptools" if _importable("httptools") else "h11"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CVAULT_")} | target.env()
    argv = [
        sys.executable, "-m", "uvicorn", "api.app:create_app_from_env", "--factory",
        "--host", "127.0.0.1", "--port", str(free_port()), "--workers", str(processes),
        "--loop", loop, "--http", http, "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    server = _spawn("ours", processes, argv, env=env, log=workdir / f"ours-{processes}.log",
                    cwd=ROOT)  # fmt: skip
    server.notes = {"loop": loop, "http": http, "log_level": target.settings().log_level}
    return server


def ensure_postgraphile() -> tuple[Path, str]:
    binary = PEER_DIR / "node_modules" / ".bin" / "postgraphile"
    if not binary.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is needed to install PostGraphile into bench/postgraphile")
        started = time.perf_counter()
        subprocess.run([npm, "install", "--no-audit", "--no-fund"], cwd=PEER_DIR, check=True)  # noqa: S603
        emit({"event": "npm_install", "seconds": round(time.perf_counter() - started, 1)})
    package = PEER_DIR / "node_modules" / "postgraphile" / "package.json"
    return binary, str(json.loads(package.read_text())["version"])


def start_peer(target: Target, processes: int, workdir: Path, binary: Path) -> Server:
    argv = [
        str(binary), "-c", LIBPQ_URL, "--schema", target.plain_schema,
        "--host", "127.0.0.1", "--port", str(free_port()), "--disable-graphiql",
        "--no-setof-functions-contain-nulls", "--disable-query-log",
    ]  # fmt: skip
    if processes > 1:
        argv += ["--cluster-workers", str(processes)]
    env = dict(os.environ) | {"NODE_ENV": "production"}
    log = workdir / f"postgraphile-{processes}.log"
    return _spawn("postgraphile", processes, argv, env=env, log=log, cwd=PEER_DIR)


# -- requests ------------------------------------------------------------------------


def post(url: str, query: str, variables: dict[str, Any], headers: dict[str, str]) -> Any:  # noqa: ANN401 - JSON
    body = json.dumps({"query": query, "variables": variables}).encode()
    request = urllib.request.Request(  # noqa: S310 - loopback only
        url, data=body, headers={"Content-Type": "application/json", **headers}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback only
        return json.loads(response.read())


def wait_ready(server: Server, probe: tuple[str, dict[str, Any], dict[str, str]]) -> None:
    """Until the server answers the probe query (and, with workers, a while longer)."""
    deadline = time.monotonic() + 120
    while True:
        if server.proc.poll() is not None:
            tail = server.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{server.name} exited with {server.proc.returncode}:\n{tail}")
        try:
            answer = post(server.url, *probe)
        except (OSError, urllib.error.URLError, ValueError):
            answer = None
        if answer is not None and not answer.get("errors"):
            break
        if time.monotonic() > deadline:
            tail = server.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{server.name} not ready: {answer}\n{tail}")
        time.sleep(0.5)
    if server.processes > 1:
        for _ in range(100):  # every worker has started once both show up in the tree
            if len(server.workers()) >= server.processes:
                break
            time.sleep(0.2)
        time.sleep(2)


_FIELDS = ("id", "email", "phone", "firstName", "lastName", "birthDate", "address")


def _view(customer: dict[str, Any], connection: str) -> dict[str, Any]:
    """What both servers must agree on: the fields, and the page's interactions."""
    edges = customer[connection]["edges"]
    return {k: customer[k] for k in _FIELDS} | {
        "interactions": sorted(e["node"]["id"] for e in edges),
        "amounts": sorted(str(e["node"]["amount"]) for e in edges),
    }


def cross_check(ours: Server, peer: Server, ids: Sequence[uuid.UUID], tokens: Sequence[str],
                agent: str) -> dict[str, Any]:  # fmt: skip
    """Same data in both: a data subject sees its record in clear, as PostGraphile does;
    a support agent gets masks, a null birth date listed as redacted, no errors."""
    checked = 0
    for cid, token in zip(ids, tokens, strict=False):
        mine = post(ours.url, OUR_QUERY, {"id": str(cid)},
                    {"Authorization": f"Bearer {token}", "X-Purpose": "self"})  # fmt: skip
        theirs = post(peer.url, PEER_QUERY, {"id": str(cid)}, {})
        if mine.get("errors") or theirs.get("errors"):
            raise RuntimeError(f"errors: {mine.get('errors')} {theirs.get('errors')}")
        a = _view(mine["data"]["customer"], "interactions")
        b = _view(theirs["data"]["pgCustomerById"], "pgInteractionsByCustomerId")
        if a != b:
            raise RuntimeError(f"servers disagree on {cid}: {a} != {b}")
        checked += 1
    sample = post(ours.url, OUR_QUERY, {"id": str(ids[0])},
                  {"Authorization": f"Bearer {agent}", "X-Purpose": "support"})  # fmt: skip
    if sample.get("errors") or sample["data"]["customer"]["birthDate"] is not None:
        raise RuntimeError(f"support agent view is wrong: {sample}")
    return {"event": "cross_check", "customers_identical": checked,
            "support_agent_sample": sample["data"]["customer"] | {"interactions": "..."},
            "support_agent_extensions": sample.get("extensions")}  # fmt: skip


# -- load generation -----------------------------------------------------------------


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


class Sessions:
    """PostgreSQL sessions opened on the database so far (``pg_stat_database``): a
    server whose pool is smaller than its concurrency opens and closes connections."""

    def __init__(self) -> None:
        self._conn: psycopg.Connection[Any] | None = None

    def count(self) -> int:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(LIBPQ_URL, autocommit=True)
        row = self._conn.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        return int(row[0]) if row else 0

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

    def sample() -> None:
        time.sleep(min(3.0, seconds / 3))
        sampled.update(_connections(server.port))

    sampler = threading.Thread(target=sample, daemon=True)
    server_before, pg_before = tree_cpu(server.proc.pid), postgres_cpu()
    sampler.start()
    done = subprocess.run(  # noqa: S603
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s",  # noqa: S607
         "--latency", "--timeout", "10s", "-s", str(script), server.url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    server_cpu = _delta(server_before, tree_cpu(server.proc.pid))
    pg_cpu = _delta(pg_before, postgres_cpu())
    sampler.join()
    result = parse_wrk(done.stdout)
    requests = max(1, result["requests"])
    result["pg_sessions_opened"] = SESSIONS.count() - sessions
    result["server_cpu_ms_per_req"] = round(sum(server_cpu.values()) * 1000 / requests, 3)
    result["postgres_cpu_ms_per_req"] = round(sum(pg_cpu.values()) * 1000 / requests, 3)
    if server.processes > 1:
        workers = server.workers()
        result["connections_by_worker"] = [sampled.get(p, 0) for p in workers]
        total = sum(server_cpu.get(p, 0.0) for p in workers) or 1.0
        result["cpu_share_by_worker"] = [round(server_cpu.get(p, 0.0) / total, 2)
                                         for p in workers]  # fmt: skip
    return result


# -- the race ------------------------------------------------------------------------


@dataclass
class Variant:
    """A server x a caller: what is measured, with its wrk script."""

    label: str
    server: Server
    script: Path
    runs: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        def med(key: str) -> float:
            return round(float(statistics.median(r[key] for r in self.runs)), 2)

        out: dict[str, Any] = {
            "server": self.server.name, "caller": self.label,
            "processes": self.server.processes,
            "req_s": med("req_s"), "runs_req_s": [r["req_s"] for r in self.runs],
            "p50_ms": med("p50_ms"), "p99_ms": med("p99_ms"),
            "server_cpu_ms_per_req": med("server_cpu_ms_per_req"),
            "postgres_cpu_ms_per_req": med("postgres_cpu_ms_per_req"),
            "non_2xx": sum(r["non_2xx"] for r in self.runs),
            "pg_sessions_per_1k_req": round(
                1000 * sum(r["pg_sessions_opened"] for r in self.runs)
                / max(1, sum(r["requests"] for r in self.runs)), 1),
        }  # fmt: skip
        if self.server.processes > 1:
            out["connections_by_worker"] = [r.get("connections_by_worker") for r in self.runs]
            out["cpu_share_by_worker"] = [r.get("cpu_share_by_worker") for r in self.runs]
        return out


def race(plan: Plan, variants: Sequence[Variant]) -> None:
    """Warm every variant up, then alternate their timed runs."""
    for v in variants:
        warm = run_wrk(plan, v.server, v.script, plan.warmup)
        emit({"event": "warmup", "server": v.server.name, "caller": v.label,
              "processes": v.server.processes, "req_s": warm["req_s"]})  # fmt: skip
    for n in range(plan.repeat):
        for v in variants:
            result = run_wrk(plan, v.server, v.script, plan.duration)
            v.runs.append(result)
            emit({"event": "run", "server": v.server.name, "caller": v.label,
                  "processes": v.server.processes, "run": n + 1} | result)  # fmt: skip


def profile(plan: Plan, server: Server, script: Path, cpu_ms: float) -> dict[str, Any] | None:
    """py-spy under load (GIL-holding samples: the interpreter's CPU): a flame graph,
    collapsed stacks, and where the CPU goes, as shares and as CPU-ms per request
    (``cpu_ms``: the server's CPU-ms per request measured in the timed runs)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        emit({"event": "profile", "skipped": "py-spy not installed"})
        return None
    OUT_DIR.mkdir(exist_ok=True)
    seconds = max(10, int(plan.duration))
    raw, svg = OUT_DIR / "graphql-profile.txt", OUT_DIR / "graphql-profile.svg"
    load = subprocess.Popen(  # noqa: S603
        ["wrk", f"-t{plan.threads}", f"-c{plan.connections}",  # noqa: S607
         f"-d{2 * seconds + 6}s", "-s", str(script), server.url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(2)
        for fmt, path in (("raw", raw), ("flamegraph", svg)):
            subprocess.run(  # noqa: S603
                [spy, "record", "--pid", str(server.proc.pid), "--duration", str(seconds),
                 "--rate", "250", "--gil", "--nonblocking", "--format", fmt, "-o", str(path)],
                check=True, capture_output=True,
            )  # fmt: skip
    finally:
        load.wait()
    found = summarise(raw, cpu_ms)
    return {"event": "profile", "raw": str(raw), "flamegraph": str(svg)} | found


_PACKAGES = (
    ("graphql/", "graphql-core"), ("strawberry/", "strawberry"), ("sqlalchemy/", "sqlalchemy"),
    ("psycopg", "psycopg"), ("uvicorn/", "uvicorn"), ("starlette/", "starlette"),
    ("anyio/", "anyio"), ("asyncio/", "asyncio"), ("uvloop/", "uvloop"),
    ("structlog/", "structlog"), ("logging/", "logging"), ("joserfc/", "joserfc (JWT)"),
    ("cryptography/", "cryptography"), ("prometheus_client/", "prometheus_client"),
    ("casbin/", "casbin"), ("api/", "api (ours)"), ("vault/crypto/", "vault.crypto (ours)"),
    ("vault/", "vault (ours)"), ("policies/", "policies (ours)"), ("audit/", "audit (ours)"),
    ("json/", "json"), ("threading.py", "threading"), ("concurrent/", "concurrent"),
)  # fmt: skip
_OURS = ("api/", "vault/", "policies/", "audit/")


def _where(frame: str) -> str:
    return frame[frame.rfind("(") + 1 :]


def _package(frame: str) -> str:
    where = _where(frame)
    for needle, name in _PACKAGES:
        if needle in where:
            return name
    return "other: " + where.split(":")[0][-40:]


def _function(frame: str) -> str:
    """``CustomerService.get (vault/customers/service.py)``: the frame without its line number."""
    return re.sub(r":\d+\)$", ")", frame)


def summarise(raw: Path, cpu_ms: float, top: int = 25) -> dict[str, Any]:
    """Shares of the samples: self time by package; inclusive time by function; and by
    the innermost function of ours on the stack (what our code asked for), with the
    packages that did the work under it, converted to CPU-ms per request."""
    total = 0
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    under: dict[str, Counter[str]] = {}
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += n
        leaf = _package(frames[-1])
        own[leaf] += n
        for name in {_function(f) for f in frames}:
            inclusive[name] += n
        mine = [f for f in frames if _where(f).startswith(_OURS)]
        bucket = _function(mine[-1]) if mine else f"(no code of ours: {leaf})"
        ours[bucket] += n
        under.setdefault(bucket, Counter())[leaf] += n
    share = 100.0 / max(1, total)
    return {
        "samples": total,
        "cpu_ms_per_req": cpu_ms,
        "self_by_package_pct": {k: round(v * share, 1) for k, v in own.most_common()},
        "inclusive_pct": {k: round(v * share, 1) for k, v in inclusive.most_common(top)},
        "by_innermost_function_of_ours": [
            {
                "function": name,
                "pct": round(n * share, 1),
                "cpu_ms_per_req": round(n * share * cpu_ms / 100, 3),
                "in": {k: round(v * share, 1) for k, v in under[name].most_common(4)},
            }
            for name, n in ours.most_common(top)
        ],
    }


# -- report --------------------------------------------------------------------------


def table(summaries: Sequence[dict[str, Any]], header: dict[str, Any]) -> str:
    lines = [
        f"{header['date']} on {header['host']} ({header['cpus']} CPUs, Python "
        f"{header['python']}, Node {header['node']}, PostGraphile {header['postgraphile']}, "
        f"uvicorn loop={header['loop']} http={header['http']})",
        f"Data: {header['customers']:,} customers / {header['interactions']:,} interactions; "
        f"{header['ids']:,} random ids ({header['subject_ids']:,} for data_subject); wrk "
        f"{header['threads']} threads, {header['connections']} connections, "
        f"{header['warmup']:g} s warm-up, {header['repeat']} x {header['duration']:g} s. "
        f"Load (not raced): {header['load']}.",
        "",
        "| server | caller | processes | req/s (median) | runs | p50 ms | p99 ms "
        "| server CPU-ms/req | PostgreSQL CPU-ms/req | PG sessions opened per 1k req "
        "| connections per worker | req/s vs PostGraphile | target |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in summaries:
        peer = next(
            (p for p in summaries
             if p["server"] == "postgraphile" and p["processes"] == s["processes"]), None,
        )  # fmt: skip
        ratio, target = "-", "-"
        if s["server"] == "ours" and peer is not None:
            r = s["req_s"] / peer["req_s"]
            ratio = f"{r:.2f}x"
            ok = r >= 1.0 and s["p50_ms"] <= 5.0
            target = ("met" if ok else "missed") + " (>= 1.0x, p50 <= 5 ms)"
        split = "-"
        if s["processes"] > 1:
            split = ", ".join("/".join(str(c) for c in runs or []) for runs in
                              s["connections_by_worker"])  # fmt: skip
        runs = " / ".join(f"{x:,.0f}" for x in s["runs_req_s"])
        lines.append(
            f"| {s['server']} | {s['caller']} | {s['processes']} | {s['req_s']:,.0f} | {runs} "
            f"| {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | {s['server_cpu_ms_per_req']:.2f} "
            f"| {s['postgres_cpu_ms_per_req']:.2f} | {s['pg_sessions_per_1k_req']:.1f} | {split} "
            f"| {ratio} | {target} |"
        )
    return "\n".join(lines)


def single_table(single: Sequence[dict[str, Any]]) -> str:
    lines = [
        "One connection, one process (no queueing: the per-request latency floor):",
        "",
        "| server | caller | req/s | p50 ms | p99 ms | server CPU-ms/req | PostgreSQL CPU-ms/req |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r['server']} | {r['caller']} | {r['req_s']:,.0f} | {r['p50_ms']:.2f} "
        f"| {r['p99_ms']:.2f} | {r['server_cpu_ms_per_req']:.2f} "
        f"| {r['postgres_cpu_ms_per_req']:.2f} |"
        for r in single
    ]
    return "\n".join(lines)


def profile_table(found: dict[str, Any]) -> str:
    lines = [
        f"Where our 1-process server's CPU goes (py-spy, {found['samples']:,} GIL samples, "
        f"{found['cpu_ms_per_req']:.2f} CPU-ms per request; {found['flamegraph']}):",
        "",
        "| innermost function of ours on the stack | share | CPU-ms/req | spent in |",
        "| --- | --- | --- | --- |",
    ]
    for row in found["by_innermost_function_of_ours"]:
        spent = ", ".join(f"{k} {v}%" for k, v in row["in"].items())
        lines.append(
            f"| {row['function']} | {row['pct']}% | {row['cpu_ms_per_req']:.3f} | {spent} |"
        )
    packages = ", ".join(f"{k} {v}%" for k, v in list(found["self_by_package_pct"].items())[:12])
    lines += ["", f"Self time by package: {packages}."]
    return "\n".join(lines)


# -- main ----------------------------------------------------------------------------


@contextmanager
def schemas() -> Iterator[tuple[str, str]]:
    tag = uuid.uuid4().hex[:10]
    vault_schema, plain_schema = f"gqlbench_{tag}", f"gqlbench_{tag}_plain"
    admin = create_engine(PG_URL)
    try:
        with admin.begin() as conn:
            for name in (vault_schema, plain_schema):
                conn.execute(text(f'CREATE SCHEMA "{name}"'))
    finally:
        admin.dispose()
    try:
        yield vault_schema, plain_schema
    finally:
        admin = create_engine(PG_URL)
        try:
            with admin.begin() as conn:
                for name in (vault_schema, plain_schema):
                    conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        finally:
            admin.dispose()


def _tokens(target: Target, ids: Sequence[uuid.UUID]) -> tuple[str, list[str]]:
    settings = target.settings()
    issuer = LocalTokenIssuer.load_or_create(
        settings.jwt_signing_key, settings.jwt_issuer, settings.jwt_audience
    )
    ttl = timedelta(hours=12)
    agent = issuer.issue("bench-agent", Role.SUPPORT_AGENT, ttl=ttl)
    subjects = [issuer.issue(f"bench-subject-{n}", Role.DATA_SUBJECT, customer_id=cid, ttl=ttl)
                for n, cid in enumerate(ids)]  # fmt: skip
    return agent, subjects


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwind, so servers stop and schemas are dropped


@dataclass
class Race:
    """Everything one run collects, and the servers to stop whatever happens."""

    plan: Plan
    target: Target
    workdir: Path
    binary: Path
    chosen: list[uuid.UUID] = field(default_factory=list)
    scripts: dict[str, Path] = field(default_factory=dict)
    agent: str = ""
    subject_ids: list[uuid.UUID] = field(default_factory=list)
    subject_tokens: list[str] = field(default_factory=list)
    servers: list[Server] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    summaries: list[dict[str, Any]] = field(default_factory=list)
    single: list[dict[str, Any]] = field(default_factory=list)
    header: dict[str, Any] = field(default_factory=dict)

    def prepare(self, ids: list[uuid.UUID]) -> None:
        plan, workdir = self.plan, self.workdir
        self.chosen = random.Random(plan.seed + 1).sample(ids, plan.ids)
        self.subject_ids = self.chosen[: plan.subject_ids]
        self.agent, self.subject_tokens = _tokens(self.target, self.subject_ids)
        self.scripts = {
            "agent": lua_script(workdir / "agent.lua", OUR_QUERY, self.chosen, self.headers),
            "subject": lua_script(workdir / "subject.lua", OUR_QUERY, self.subject_ids,
                                  {"X-Purpose": "self"}, self.subject_tokens),
            "peer": lua_script(workdir / "peer.lua", PEER_QUERY, self.chosen, {}),
        }  # fmt: skip

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.agent}", "X-Purpose": "support"}

    def at_processes(self, processes: int) -> None:
        """Both servers at one process count: check, race, one connection, profile."""
        plan, first = self.plan, str(self.chosen[0])
        ours = start_ours(self.target, processes, self.workdir)
        self.servers.append(ours)
        peer = start_peer(self.target, processes, self.workdir, self.binary)
        self.servers.append(peer)
        self.header |= {"loop": ours.notes["loop"], "http": ours.notes["http"]}
        wait_ready(ours, (OUR_QUERY, {"id": first}, self.headers))
        wait_ready(peer, (PEER_QUERY, {"id": first}, {}))
        emit({"event": "servers", "processes": processes, "ours": ours.notes,
              "ours_workers": ours.workers(), "peer_workers": peer.workers()})  # fmt: skip
        emit(cross_check(ours, peer, self.subject_ids[:25], self.subject_tokens[:25], self.agent))
        variants = [
            Variant("support_agent (support)", ours, self.scripts["agent"]),
            Variant("-", peer, self.scripts["peer"]),
        ]
        race(plan, variants)
        subject = Variant("data_subject (self, all clear)", ours, self.scripts["subject"])
        race(plan, [subject])
        for v in [*variants, subject]:
            self.summaries.append(v.summary())
            self.results.append(self.summaries[-1] | {"runs": v.runs})
            emit({"event": "summary"} | self.summaries[-1])
        if processes == 1:  # latency without queueing: one connection
            for v in variants:
                one = run_wrk(plan, v.server, v.script, plan.duration, connections=1)
                self.single.append({"server": v.server.name, "caller": v.label} | one)
                emit({"event": "one_connection"} | self.single[-1])
            if plan.profile:
                cpu = variants[0].summary()["server_cpu_ms_per_req"]  # the support agent's
                found = profile(plan, ours, self.scripts["agent"], cpu)
                if found is not None:
                    emit(found)
                    self.results.append(found)
        for server in (ours, peer):
            server.stop()

    def report(self) -> str:
        order = {"ours": 0, "postgraphile": 1}
        self.summaries.sort(
            key=lambda s: (s["processes"], order[s["server"]], s["caller"].startswith("data"))
        )
        parts = [table(self.summaries, self.header)]
        if self.single:
            parts.append(single_table(self.single))
        parts += [profile_table(r) for r in self.results if r.get("event") == "profile"]
        return "\n\n".join(parts)


def main(argv: Sequence[str] | None = None) -> None:
    plan, json_path = _plan(argv)
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


if __name__ == "__main__":
    main()
