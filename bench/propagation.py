"""Propagation (issue 17): how long a change made through one server takes to be in
force in another, over one PostgreSQL database.

Two ``cvault serve`` processes (A and B, one worker each, free loopback ports) over a
PostgreSQL schema of the run's own (``CVAULT_BENCH_POSTGRES_URL``, default the local
``test`` database; dropped afterwards). Measured, ``--changes`` times each:

* **policy, NOTIFY**: an administrator's ``replacePolicy`` through A; the delay runs from
  A's answer (the change has committed) to B's ``/metrics`` counting the policy applied
  (``cvault_changes_applied_total{kind="policy",via="notify"}``). Polling every 60 s,
  so only the notification can explain it.
* **erasure, NOTIFY**: a verified erasure request processed through A
  (``processDsrRequest``) for a customer whose data key B has cached; from A's answer
  to B counting the erasure applied (its cached key dropped).
* **policy, poll only** (the peer: what the servers did before, ``CVAULT_LISTEN=off``,
  polling every 2 s): from A's answer to B counting the policy applied by its poll.
  An erasure has no poll (a lookup refuses a shredded key through the shared keyring's
  shred list): no poll-only figure.
* **floor**: one ``GET /metrics`` of B, the resolution of every delay above.

Before each change the script waits a random 0 to 2 s (the poll interval), so changes
fall at random points of B's poll cycle. Reported: p50, p99 and max in ms, as JSON lines
and a table. Run: ``python -m bench.propagation [--changes 50]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from api.auth import LocalTokenIssuer
from bench.common import PG_URL, admin_sql, emit
from policies import Role, default_policy_lines
from vault.authorization.context import AccessContext
from vault.config import Settings
from vault.customers import CustomerInput
from vault.runtime import Vault

ROOT = Path(__file__).resolve().parent.parent
CLI = "import sys; sys.argv[0] = 'cvault'; import api.cli; api.cli.main()"
REPLACE = "mutation($lines: [String!]!) { replacePolicy(lines: $lines) { version } }"
FILE = ("mutation($c: ID!) { createDsrRequest(input: {type: ERASURE, customerId: $c}) "
        "{ verificationToken request { id } } }")  # fmt: skip
VERIFY = "mutation($i: ID!, $t: String!) { verifyDsrRequest(id: $i, token: $t) { id } }"
PROCESS = "mutation($i: ID!) { processDsrRequest(id: $i) { request { status } } }"
READ = "query($id: ID!) { customer(id: $id) { firstName } }"


class Server:
    """``cvault serve`` on a free port; its log in the run's folder."""

    def __init__(self, env: dict[str, str], folder: Path, name: str) -> None:
        import socket  # noqa: PLC0415

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = requests.Session()
        with (folder / f"{name}.log").open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - this interpreter, our CLI
                [sys.executable, "-c", CLI, "serve", "--port", str(self.port)],
                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
            )  # fmt: skip
        deadline = time.monotonic() + 120
        while not self._ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{name} did not start: see {folder / name}.log")
            time.sleep(0.05)

    def _ready(self) -> bool:
        try:
            return self.http.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    def graphql(self, bearer: str, purpose: str, query: str, variables: dict[str, Any]) -> Any:  # noqa: ANN401
        answer = self.http.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {bearer}", "X-Purpose": purpose}, timeout=30,
        )  # fmt: skip
        body = answer.json()
        if answer.status_code != 200 or body.get("errors"):
            raise SystemExit(f"{query.split('(', maxsplit=1)[0]}: {answer.status_code} {body}")
        return body["data"]

    def applied(self, kind: str, via: str) -> float:
        wanted = f'cvault_changes_applied_total{{kind="{kind}",via="{via}"}} '
        for line in self.http.get(f"{self.url}/metrics", timeout=10).text.splitlines():
            if line.startswith(wanted):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()


@contextmanager
def pair(folder: Path, *, listen: bool) -> Iterator[tuple[Server, Server, dict[str, str]]]:
    """A fresh vault (schema, data directory) and two servers over it."""
    schema = f"bench_propagation_{uuid.uuid4().hex[:8]}"
    admin_sql([f'CREATE SCHEMA "{schema}"'])
    data = folder / schema
    env = {k: v for k, v in os.environ.items() if not k.startswith("CVAULT_")}
    env.update(
        PYTHONPATH=str(ROOT), CVAULT_ENV="test", CVAULT_DATA_DIR=str(data),
        CVAULT_DATABASE_URL=f"{PG_URL}?options={quote(f'-csearch_path={schema}')}",
        CVAULT_LOG_LEVEL="warning", CVAULT_RATE_LIMIT_PER_MINUTE="1000000",
        CVAULT_LISTEN="on" if listen else "off",
        CVAULT_REFRESH_SECONDS="60" if listen else "2",
    )  # fmt: skip
    subprocess.run([sys.executable, "-c", CLI, "init"], env=env, check=True, cwd=ROOT,  # noqa: S603
                   capture_output=True)  # fmt: skip
    servers: list[Server] = []
    try:
        servers = [Server(env, folder, f"{schema}-{n}") for n in ("a", "b")]
        yield servers[0], servers[1], env
    finally:
        for server in servers:
            server.stop()
        admin_sql([f'DROP SCHEMA "{schema}" CASCADE'])


def _token(env: dict[str, str], role: Role) -> str:
    settings = Settings.from_env(env)
    issuer = LocalTokenIssuer.load_or_create(
        settings.jwt_signing_key, settings.jwt_issuer, settings.jwt_audience
    )
    return issuer.issue("bench", role)


def _seen(b: Server, kind: str, via: str, before: float, since: float) -> float:
    """Poll B until its counter passes ``before``; seconds since ``since``."""
    deadline = time.monotonic() + 30
    while b.applied(kind, via) <= before:
        if time.monotonic() > deadline:
            raise SystemExit(f"{kind} never applied by B ({via})")
    return time.perf_counter() - since


def policy_delays(a: Server, b: Server, env: dict[str, str], n: int, via: str) -> list[float]:
    admin = _token(env, Role.ADMIN)
    lines = list(default_policy_lines())
    delays = []
    for _ in range(n):
        time.sleep(random.uniform(0, 2.0))
        before = b.applied("policy", via)
        a.graphql(admin, "administration", REPLACE, {"lines": lines})
        delays.append(_seen(b, "policy", via, before, time.perf_counter()))
    return delays


def erasure_delays(a: Server, b: Server, env: dict[str, str], n: int) -> list[float]:
    vault = Vault.open(Settings.from_env(env))
    try:
        with vault.unit(AccessContext.system("bench")) as session:
            ids = [str(vault.customers.create(session, CustomerInput(first_name=f"Zoë {i}")).id)
                   for i in range(n)]  # fmt: skip
    finally:
        vault.close()
    officer, support = _token(env, Role.COMPLIANCE_OFFICER), _token(env, Role.SUPPORT_AGENT)
    delays = []
    for customer in ids:
        b.graphql(support, "support", READ, {"id": customer})  # B caches the data key
        filed = a.graphql(officer, "compliance", FILE, {"c": customer})["createDsrRequest"]
        request = filed["request"]["id"]
        a.graphql(officer, "compliance", VERIFY, {"i": request, "t": filed["verificationToken"]})
        time.sleep(random.uniform(0, 2.0))
        before = b.applied("erasure", "notify")
        a.graphql(officer, "compliance", PROCESS, {"i": request})
        delays.append(_seen(b, "erasure", "notify", before, time.perf_counter()))
    return delays


def floor(b: Server, n: int) -> list[float]:
    took = []
    for _ in range(n):
        started = time.perf_counter()
        b.applied("policy", "notify")
        took.append(time.perf_counter() - started)
    return took


def summary(name: str, seconds: list[float]) -> dict[str, Any]:
    ms = sorted(s * 1000 for s in seconds)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    return {"measure": name, "n": len(ms), "p50_ms": round(statistics.median(ms), 1),
            "p99_ms": round(p99, 1), "max_ms": round(ms[-1], 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=50)
    args = parser.parse_args()
    random.seed(17)
    emit({"machine": platform.node(), "nproc": os.cpu_count(), "python": sys.version.split()[0],
          "load": os.getloadavg()})  # fmt: skip
    results = []
    with tempfile.TemporaryDirectory(prefix="cvault-bench-") as tmp:
        folder = Path(tmp)
        with pair(folder, listen=True) as (a, b, env):
            results.append(summary("floor: GET /metrics", floor(b, 200)))
            results.append(summary("policy, NOTIFY", policy_delays(a, b, env, args.changes,
                                                                   "notify")))  # fmt: skip
            results.append(summary("erasure, NOTIFY", erasure_delays(a, b, env, args.changes)))
        with pair(folder, listen=False) as (a, b, env):
            results.append(summary("policy, poll only (2 s)",
                                   policy_delays(a, b, env, args.changes, "poll")))  # fmt: skip
    for record in results:
        emit(record)
    print("\n| measure | n | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|")
    for r in results:
        print(f"| {r['measure']} | {r['n']} | {r['p50_ms']} | {r['p99_ms']} | {r['max_ms']} |")
    emit({"load_after": os.getloadavg()})


if __name__ == "__main__":
    main()
