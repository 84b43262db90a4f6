"""Soak (issue 13, item 15): minutes of mixed load on a real ``cvault serve`` over PostgreSQL.

The script makes a fresh PostgreSQL schema and data directory, runs ``cvault init`` and
``cvault demo``, starts ``cvault serve`` (uvicorn, one process) on a free loopback port,
and drives it for ``--seconds`` (600 by default) with ``--clients`` threads (plain
``http.client``, keep-alive), each drawing its next request from the mix:

* ``read``: a support agent's profile read, ``customer(id)`` with the first 10 entries
  of the timeline (the query of bench/graphql);
* ``update`` / ``create``: ``updateCustomer`` (phone, tier) and ``createCustomer`` by the
  ingest service;
* ``ingest``: ``recordInteractions``, a batch of ``--batch`` interactions;

and beside them ``refreshSegments`` (marketing, one segment made at start) every
``--refresh-every`` seconds and ``cvault audit export --since <the previous export>``
(the operator's shipping of the audit trail) every ``--export-every`` seconds.

The floor, in the same run: a thread asking ``GET /healthz`` ``--floor-rate`` times a
second, the latency of the server's loop and the machine with no vault work in it.

Reported: requests by kind, errors (any non-200, GraphQL error, refused connection,
export exit status), p50/p99 per minute (mix and floor), server RSS per minute
(``VmRSS`` of the server and its children), and the targets: 0 errors, p99 of the last
minute within 1.5x of the first, RSS growth first -> last minute under 10%.
Run: ``python -m bench.soak`` (``--seconds 60`` for a short look). Where the server's
autovacuum is off, the script runs ANALYZE on the vault's tables every 60 s in its place
(``--analyze-every``): without statistics the planner's choices decay as the tables grow.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, text

from api.auth import LocalTokenIssuer
from bench.common import PG_URL, admin_sql, emit
from bench.graphql.client import OUR_QUERY
from bench.graphql.servers import free_port
from bench.soak_probes import analyze, slow_statements, tree_rss_kb
from policies import Role
from vault.config import Environment, Settings

ROOT = Path(__file__).resolve().parents[1]
UPDATE = "mutation($id: ID!, $p: CustomerPatchInput!) { updateCustomer(id: $id, input: $p) { id } }"
CREATE = "mutation($c: CustomerInput!) { createCustomer(input: $c) { id } }"
INGEST = "mutation($i: [InteractionInput!]!) { recordInteractions(interactions: $i) { inserted } }"
SEGMENT = "mutation($s: SegmentInput!) { createSegment(input: $s) { id } }"
REFRESH = "mutation($id: ID) { refreshSegments(id: $id) { segmentId members } }"
RULE = {"all": [
    {"behaviour": {"aggregate": "COUNT", "op": "GTE", "value": 1, "window": {"withinDays": 90},
                   "types": ["PURCHASE"]}},
    {"consent": {"purpose": "marketing_email"}},
]}  # fmt: skip
MIX = (("read", 0.70), ("update", 0.10), ("create", 0.05), ("ingest", 0.15))
ROLES = {  # who sends what: role and purpose
    "support": (Role.SUPPORT_AGENT, "support"),
    "ingest": (Role.INGEST_SERVICE, "service_delivery"),
    "marketing": (Role.MARKETING, "marketing_email"),
}


class Failed(Exception):
    """A request that did not succeed: the reason, without values."""


@dataclass
class Recorder:
    """Latencies (offset from start, kind, ms), errors by kind, one example each."""

    started: float
    samples: list[tuple[float, str, float]] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def timed(self, kind: str, call: Callable[[], object]) -> object:
        begun = time.monotonic()
        try:
            result = call()
        except (Failed, OSError, http.client.HTTPException, ValueError) as exc:
            with self.lock:
                self.errors[kind] += 1
                self.examples.setdefault(kind, f"{type(exc).__name__}: {str(exc)[:300]}")
            return None
        ended = time.monotonic()
        with self.lock:
            self.samples.append((begun - self.started, kind, (ended - begun) * 1000))
        return result


class Client:
    """One keep-alive connection to the server."""

    def __init__(self, port: int, tokens: dict[str, str]) -> None:
        self.port = port
        self.tokens = tokens
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def _send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> bytes:
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            raise
        if response.status != 200:
            raise Failed(f"HTTP {response.status}: {data[:300]!r}")
        return data

    def graphql(self, who: str, query: str, **variables: Any) -> Any:  # noqa: ANN401 - JSON
        role, purpose = ROLES[who]
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {self.tokens[who]}",
            "X-Purpose": purpose,
        }
        body = json.dumps({"query": query, "variables": variables}).encode()
        answer = json.loads(self._send("POST", "/graphql", body, headers))
        if answer.get("errors"):
            codes = [(e.get("extensions") or {}).get("code") for e in answer["errors"]]
            raise Failed(f"{role.value}: GraphQL errors {codes}: {answer['errors'][0]['message']}")
        return answer["data"]

    def get(self, path: str) -> bytes:
        return self._send("GET", path, None, {})


@dataclass
class Soak:
    port: int
    tokens: dict[str, str]
    ids: list[str]
    segment_id: str
    env: dict[str, str]
    workdir: Path
    recorder: Recorder
    stop_at: float
    batch: int
    rss: list[tuple[float, int]] = field(default_factory=list)
    lock_waits: list[tuple[float, int]] = field(default_factory=list)
    waiting: Counter[str] = field(default_factory=Counter)
    exported: int = 0

    def running(self) -> bool:
        return time.monotonic() < self.stop_at

    def mix(self, seed: int) -> None:
        rng = random.Random(seed)
        client = Client(self.port, self.tokens)
        kinds, weights = [k for k, _ in MIX], [w for _, w in MIX]
        n = 0
        while self.running():
            n += 1
            kind = rng.choices(kinds, weights)[0]
            cid = rng.choice(self.ids)
            call: Callable[[], object]
            if kind == "read":
                call = partial(client.graphql, "support", OUR_QUERY, id=cid)
            elif kind == "update":
                patch = {"phone": f"+4915{rng.randrange(10**8):08d}",
                         "tier": rng.choice(("bronze", "silver", "gold"))}  # fmt: skip
                call = partial(client.graphql, "ingest", UPDATE, id=cid, p=patch)
            elif kind == "create":
                tag = f"{seed}-{n}"
                person = {"email": f"soak.{tag}@example.com", "firstName": "Soak",
                          "lastName": f"Load {tag}", "tier": "bronze"}  # fmt: skip
                call = partial(self._create, client, person)
            else:
                items = self._interactions(rng, f"{seed}-{n}")
                call = partial(client.graphql, "ingest", INGEST, i=items)
            self.recorder.timed(kind, call)

    def _create(self, client: Client, person: dict[str, str]) -> object:
        made = client.graphql("ingest", CREATE, c=person)
        self.ids.append(made["createCustomer"]["id"])  # list.append is atomic
        return made

    def _interactions(self, rng: random.Random, tag: str) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        items = []
        for k in range(self.batch):
            buy = rng.random() < 0.2
            items.append({
                "customerId": rng.choice(self.ids),
                "channel": "WEB", "type": "PURCHASE" if buy else "PAGE_VIEW",
                "occurredAt": (now - timedelta(seconds=rng.randrange(86_400 * 60))).isoformat(),
                "amount": f"{rng.randrange(100, 20_000) / 100:.2f}" if buy else None,
                "currency": "EUR" if buy else None,
                "externalId": f"soak-{tag}-{k}", "payload": {"url": f"/p/{k}"},
            })  # fmt: skip
        return items

    def every(self, seconds: float, work: Callable[[], object]) -> None:
        next_at = time.monotonic() + seconds
        while True:
            time.sleep(max(0.0, min(next_at, self.stop_at) - time.monotonic()))
            if not self.running():
                return
            work()
            next_at += seconds

    def refresh(self) -> None:
        client = Client(self.port, self.tokens)
        self.recorder.timed(
            "refresh", lambda: client.graphql("marketing", REFRESH, id=self.segment_id)
        )

    def export(self) -> None:
        since = getattr(self, "_since", datetime.now(UTC) - timedelta(days=1))
        now = datetime.now(UTC)
        out = self.workdir / f"export-{now:%H%M%S}.jsonl"
        argv = [*cvault(), "audit", "export", "-o", str(out), "--since", since.isoformat()]

        def run() -> int:
            done = subprocess.run(argv, env=self.env, capture_output=True, check=False)  # noqa: S603
            if done.returncode != 0:
                raise Failed(f"exit {done.returncode}: {done.stderr.decode()[-300:]}")
            with out.open("rb") as lines:
                return sum(1 for _ in lines)

        entries = self.recorder.timed("export", run)
        if isinstance(entries, int):
            self.exported += entries
            self._since = now
            out.unlink()

    def floor(self, rate: float) -> None:
        client = Client(self.port, self.tokens)
        self.every(1 / rate, lambda: self.recorder.timed("healthz", lambda: client.get("/healthz")))


def cvault() -> list[str]:
    beside = Path(sys.executable).with_name("cvault")
    return (
        [str(beside)]
        if beside.exists()
        else [sys.executable, "-c", "from api.cli import main; main()"]
    )


@contextmanager
def vault_server(
    workdir: Path, customers: int
) -> Iterator[tuple[subprocess.Popen[bytes], int, dict[str, str]]]:
    """A fresh schema, ``cvault init`` + ``demo``, and ``cvault serve`` on a free port."""
    schema = f"soak_{uuid.uuid4().hex[:10]}"
    admin_sql([f'CREATE SCHEMA "{schema}"'])
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CVAULT_")} | {
        "CVAULT_DATA_DIR": str(workdir / "data"),
        "CVAULT_DATABASE_URL": f"{PG_URL}?options={quote(f'-csearch_path={schema}')}"
        f"&application_name={schema}",
        "CVAULT_ENV": Environment.PRODUCTION.value,
        "CVAULT_TRUSTED_DOCUMENTS": "allow",  # the mix sends its operations as text
        "CVAULT_RATE_LIMIT_PER_MINUTE": str(10**7),
        "CVAULT_LOG_LEVEL": "warning",
    }
    log = workdir / "serve.log"
    proc: subprocess.Popen[bytes] | None = None
    try:
        for step in (["init"], ["demo", "--customers", str(customers)]):
            started = time.monotonic()
            subprocess.run([*cvault(), *step], env=env, check=True, capture_output=True, cwd=ROOT)  # noqa: S603
            emit(
                {"bench": "soak", "event": step[0], "seconds": round(time.monotonic() - started, 1)}
            )
        with log.open("wb") as out:
            proc = subprocess.Popen(  # noqa: S603 - our own argv
                [*cvault(), "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT,
            )  # fmt: skip
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"cvault serve exited: {log.read_text()[-2000:]}")
            with suppress(OSError, http.client.HTTPException, Failed):
                if b"ready" in Client(port, {}).get("/readyz"):
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("cvault serve not ready after 120 s")
            time.sleep(0.3)
        yield proc, port, env
    finally:
        if proc is not None and proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if log.exists():
            shutil.copy(log, Path(tempfile.gettempdir()) / f"soak-serve-{port}.log")
        admin_sql([f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'])


def _customer_ids(env: dict[str, str]) -> list[str]:
    engine = create_engine(env["CVAULT_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            return [str(r[0]) for r in conn.execute(text("SELECT id FROM customers"))]
    finally:
        engine.dispose()


def _tokens(env: dict[str, str], seconds: float) -> dict[str, str]:
    settings = Settings.from_env(env)
    issuer = LocalTokenIssuer.load_or_create(
        settings.jwt_signing_key, settings.jwt_issuer, settings.jwt_audience
    )
    ttl = timedelta(seconds=seconds + 3600)
    return {who: issuer.issue(f"soak-{who}", role, ttl=ttl) for who, (role, _) in ROLES.items()}


def _pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def report(soak: Soak, seconds: float, args: argparse.Namespace) -> bool:
    rec = soak.recorder
    minutes = max(1, int(seconds // 60))
    per_minute: list[dict[str, Any]] = []
    for m in range(minutes):
        lo, hi = m * 60, (m + 1) * 60 if m < minutes - 1 else float("inf")
        mix = [ms for t, k, ms in rec.samples if lo <= t < hi and k in dict(MIX)]
        floor = [ms for t, k, ms in rec.samples if lo <= t < hi and k == "healthz"]
        rss = [kb for t, kb in soak.rss if lo <= t < hi]
        waits = [n for t, n in soak.lock_waits if lo <= t < hi]
        slow = Counter(k for t, k, ms in rec.samples if lo <= t < hi and ms > 5000)
        per_minute.append({
            "bench": "soak", "minute": m + 1, "requests": len(mix),
            "p50_ms": round(_pct(mix, 50), 1), "p99_ms": round(_pct(mix, 99), 1),
            "floor_p50_ms": round(_pct(floor, 50), 2), "floor_p99_ms": round(_pct(floor, 99), 2),
            "rss_mb": round(statistics.median(rss) / 1024, 1) if rss else None,
            "lock_waiters_max": max(waits, default=0), "over_5s": dict(slow),
        })  # fmt: skip
        emit(per_minute[-1])
    kinds: dict[str, list[float]] = {}
    for _, kind, ms in rec.samples:
        kinds.setdefault(kind, []).append(ms)
    by_kind: dict[str, dict[str, Any]] = {
        k: {"requests": len(v), "errors": rec.errors[k], "p50_ms": round(_pct(v, 50), 1),
            "p99_ms": round(_pct(v, 99), 1)} for k, v in sorted(kinds.items())
    }  # fmt: skip
    for kind in rec.errors:
        by_kind.setdefault(kind, {"requests": 0, "errors": rec.errors[kind]})
    first, last = per_minute[0], per_minute[-1]
    p99_ratio = last["p99_ms"] / first["p99_ms"]
    rss_growth = (last["rss_mb"] / first["rss_mb"] - 1) if first["rss_mb"] else float("nan")
    errors = sum(rec.errors.values())
    ok = errors == 0 and p99_ratio <= 1.5 and rss_growth < 0.10
    summary = {"bench": "soak", "seconds": seconds, "clients": args.clients,
               "customers_at_end": len(soak.ids), "audit_entries_exported": soak.exported,
               "by_kind": by_kind, "errors": errors, "error_examples": rec.examples,
               "p99_last_over_first": round(p99_ratio, 2),
               "rss_growth": round(rss_growth, 3), "targets_met": ok,
               "slowest": [{"at_s": round(t, 1), "kind": k, "ms": round(ms)} for t, k, ms
                           in sorted(rec.samples, key=lambda x: -x[2])[:12]],
               "slow_statements_seen": dict(soak.waiting.most_common(8))}  # fmt: skip
    emit(summary)
    print(f"\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} ({os.cpu_count()} CPUs, "
          f"{platform.python_implementation()} {platform.python_version()}), PostgreSQL, "
          f"{args.clients} clients, {seconds:.0f} s")  # fmt: skip
    print("\n| kind | requests | errors | p50 ms | p99 ms |\n| --- | --- | --- | --- | --- |")
    for kind, k in by_kind.items():
        print(f"| {kind} | {k['requests']:,} | {k['errors']} | {k.get('p50_ms', '-')} | "
              f"{k.get('p99_ms', '-')} |")  # fmt: skip
    print(
        "\n| minute | mix requests | p50 ms | p99 ms | floor /healthz p50 ms | floor p99 ms "
        "| server RSS MB | slow or waiting SQL |\n| --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    for row in per_minute:
        print(f"| {row['minute']} | {row['requests']:,} | {row['p50_ms']} | {row['p99_ms']} | "
              f"{row['floor_p50_ms']} | {row['floor_p99_ms']} | {row['rss_mb']} | "
              f"{row['lock_waiters_max']} |")  # fmt: skip
    print(f"\nerrors: {errors} (target 0)"
          f"\np99 last minute / first minute: {p99_ratio:.2f}x (target <= 1.5x)"
          f"\nserver RSS growth first -> last minute: {rss_growth:+.1%} (target < 10%)"
          f"\ntargets met: {'yes' if ok else 'NO'}")  # fmt: skip
    for kind, example in rec.examples.items():
        print(f"first {kind} error: {example}")
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--clients", type=int, default=4, help="mix threads")
    parser.add_argument("--customers", type=int, default=1000, help="demo customers")
    parser.add_argument("--batch", type=int, default=100, help="interactions per ingest")
    parser.add_argument("--refresh-every", type=float, default=30)
    parser.add_argument("--export-every", type=float, default=60)
    parser.add_argument("--floor-rate", type=float, default=5, help="/healthz per second")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--analyze-every",
        type=float,
        default=None,
        help="ANALYZE the vault's tables every N s (0: never; by default 60 when the "
        "server's autovacuum is off, else 0)",
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp, vault_server(Path(tmp), args.customers) as (
        proc, port, env,
    ):  # fmt: skip
        tokens = _tokens(env, args.seconds)
        made = Client(port, tokens).graphql("marketing", SEGMENT, s={"name": "soak", "rule": RULE})
        started = time.monotonic()
        soak = Soak(port, tokens, _customer_ids(env), made["createSegment"]["id"], env,
                    Path(tmp), Recorder(started), started + args.seconds, args.batch)  # fmt: skip
        threads = [threading.Thread(target=soak.mix, args=(args.seed * 1000 + n,))
                   for n in range(args.clients)]  # fmt: skip
        threads += [
            threading.Thread(target=soak.every, args=(args.refresh_every, soak.refresh)),
            threading.Thread(target=soak.every, args=(args.export_every, soak.export)),
            threading.Thread(target=soak.floor, args=(args.floor_rate,)),
        ]
        app = env["CVAULT_DATABASE_URL"].rsplit("application_name=", 1)[1]
        watcher = create_engine(PG_URL, pool_size=1)
        with watcher.connect() as conn:
            autovacuum = conn.scalar(text("SHOW autovacuum"))
        every = args.analyze_every
        if every is None:  # stand in for autovacuum where it is off (the test server)
            every = 60.0 if autovacuum == "off" else 0.0
        emit({"bench": "soak", "autovacuum": autovacuum, "analyze_every": every})
        if every > 0:
            analyzer = threading.Thread(target=soak.every, args=(every, partial(analyze, app)))
            threads.append(analyzer)
        for thread in threads:
            thread.start()
        while soak.running():
            offset = time.monotonic() - started
            soak.rss.append((offset, tree_rss_kb(proc.pid)))
            slow = slow_statements(watcher, app)
            soak.lock_waits.append((offset, len(slow)))
            soak.waiting.update(slow)
            if proc.poll() is not None:
                soak.recorder.errors["server"] += 1
                soak.recorder.examples["server"] = f"cvault serve exited {proc.returncode}"
                break
            time.sleep(5)
        for thread in threads:
            thread.join()
        watcher.dispose()
        elapsed = time.monotonic() - started
        return 0 if report(soak, elapsed, args) else 1


if __name__ == "__main__":
    sys.exit(main())
