"""Pages (issue 14, item 9): p50 and p99 latency of the privacy page and the console.

The script makes a temporary data directory, runs ``cvault init`` and ``cvault demo
--customers N`` (SQLite, as ``make run`` does) and ``cvault audit seal`` (so that the
server's sequencer does not order the demo's entries while we measure), starts ``cvault
serve`` (uvicorn, one process) on a free loopback port, and signs in the way a browser
does:

* a demo customer on ``/privacy``: the form, the one-time code read from the development
  outbox (``$CVAULT_DATA_DIR/outbox/*.eml``), the code form; then files an access
  request, so the requests view lists one;
* a compliance officer on ``/console`` through ``cvault console link``.

Then, at each concurrency (``--concurrency 1,8``: that many threads, each with its own
keep-alive ``httpx.Client``, back to back), every view is asked ``--requests`` times,
in ``--rounds`` rounds that rotate through the views so that the shared machine's load
falls on all of them alike:

* the floor: ``GET /healthz`` (the server's loop, HTTP and this client; no vault work);
* ``/privacy/data``, ``/privacy/consents``, ``/privacy/access``, ``/privacy/requests``
  as the customer (each resumes the page session and reads through the domain services,
  audited as the data subject);
* ``/console/audit`` as the officer: no filter, column filters (customer and action),
  and a scanned filter (purpose and outcome are not columns: a page scans up to 500
  entries, the worst case when few match).

A response counts when it is a 200 with HTML (a lost session would be a 303 to the
sign-in page). Reported per view and concurrency: requests, failures, p50 and p99 in ms,
the server's CPU ms per request (``/proc``: steadier than latency on a shared machine),
and the load average before and after each concurrency. Target: p50 <= 50 ms.
Run: ``python -m bench.pages``; ``--smoke`` is a few requests on 20 customers (what
``tests/bench/test_pages_bench.py`` runs, counting successes, never timing).
"""

from __future__ import annotations

import argparse
import email
import email.policy
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import httpx
from sqlalchemy import create_engine, select

from api.pages.console.base import CONSOLE_COOKIE
from api.pages.privacy.base import SESSION_COOKIE
from bench.common import CLK_TCK, emit
from bench.graphql.servers import free_port
from vault.demo.plan import plan_customer
from vault.storage.models import PageSessionRow

ROOT: Final = Path(__file__).resolve().parents[1]
TARGET_P50_MS: Final = 50.0
_CODE: Final = re.compile(r"(?<![0-9])([0-9]{8})(?![0-9])")
_CSRF: Final = re.compile(r'name="csrf" value="([^"]+)"')
_LINK: Final = re.compile(r"(/console/link\?t=\S+)")


class Failed(Exception):
    """A step of the set-up that did not work: what, without personal values."""


@dataclass(frozen=True)
class View:
    name: str
    who: str  # "" (no session), "privacy" or "console"
    path: str


@dataclass
class Result:
    """One view at one concurrency: latencies (ms) of the good answers, failures by kind,
    and the server's CPU seconds over the batches."""

    view: str
    concurrency: int
    ms: list[float] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    cpu_s: float = 0.0
    wall_s: float = 0.0

    def record(self, ms: list[float], failures: list[str], cpu_s: float, wall_s: float) -> None:
        self.ms.extend(ms)
        for kind in failures:
            self.failures[kind] = self.failures.get(kind, 0) + 1
        self.cpu_s += cpu_s
        self.wall_s += wall_s

    def summary(self) -> dict[str, Any]:
        done = len(self.ms) + sum(self.failures.values())
        return {
            "bench": "pages", "view": self.view, "concurrency": self.concurrency,
            "requests": done, "ok": len(self.ms), "failures": dict(self.failures),
            "p50_ms": round(pct(self.ms, 50), 1), "p99_ms": round(pct(self.ms, 99), 1),
            "server_cpu_ms_per_request": round(self.cpu_s * 1000 / done, 2) if done else None,
            "requests_per_s": round(done / self.wall_s, 1) if self.wall_s else None,
        }  # fmt: skip


def pct(values: Sequence[float], q: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def cvault() -> list[str]:
    beside = Path(sys.executable).with_name("cvault")
    if beside.exists():
        return [str(beside)]
    return [sys.executable, "-c", "from api.cli import main; main()"]


def load_average() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def server_cpu(pid: int) -> float:
    """CPU seconds of the server process and its live children (``/proc``)."""
    total = 0.0
    todo = [pid]
    while todo:
        current = todo.pop()
        with suppress(OSError):
            stat = Path(f"/proc/{current}/stat").read_text()
            fields = stat[stat.rfind(")") + 2 :].split()
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
            todo.extend(int(c) for c in children)
    return total


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    base: str
    env: dict[str, str]
    data_dir: Path


@contextmanager
def vault_server(workdir: Path, customers: int, seed: int) -> Iterator[Served]:
    """``cvault init``, ``cvault demo`` and ``cvault serve`` on a free port (SQLite)."""
    data_dir = workdir / "data"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CVAULT_")} | {
        "CVAULT_DATA_DIR": str(data_dir),
        "CVAULT_ENV": "development",  # the file outbox (``make run``)
        "CVAULT_LOG_LEVEL": "warning",
    }
    log = workdir / "serve.log"
    proc: subprocess.Popen[bytes] | None = None
    try:
        demo = ["demo", "--customers", str(customers), "--seed", str(seed)]
        for step in (["init"], demo, ["audit", "seal"]):  # the demo's entries sequenced now
            started = time.monotonic()
            subprocess.run([*cvault(), *step], env=env, check=True, capture_output=True, cwd=ROOT)  # noqa: S603
            emit({"bench": "pages", "event": step[0], "s": round(time.monotonic() - started, 1)})
        with log.open("wb") as out:
            proc = subprocess.Popen(  # noqa: S603 - our own argv
                [*cvault(), "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT,
            )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise Failed(f"cvault serve exited: {log.read_text()[-2000:]}")
            with suppress(httpx.HTTPError):
                if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise Failed("cvault serve not ready after 120 s")
            time.sleep(0.3)
        yield Served(proc, base, env, data_dir)
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
            shutil.copy(log, Path(tempfile.gettempdir()) / f"pages-serve-{port}.log")


def _csrf(page: httpx.Response) -> str:
    found = _CSRF.search(page.text)
    if found is None:
        raise Failed(f"no CSRF token on {page.url.path} (HTTP {page.status_code})")
    return found.group(1)


def _outbox_code(outbox: Path, seen: set[Path]) -> str:
    """The code of the first message that arrives in the outbox after ``seen``."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        fresh = sorted(set(outbox.glob("*.eml")) - seen) if outbox.exists() else []
        if fresh:
            message = email.message_from_bytes(fresh[0].read_bytes(), policy=email.policy.default)
            body = message.get_body(preferencelist=("plain",))
            found = _CODE.search(str(body.get_content())) if body is not None else None
            if found is None:
                raise Failed("the sign-in message carries no 8-digit code")
            return found.group(1)
        time.sleep(0.1)
    raise Failed("no sign-in message reached the outbox in 30 s")


def sign_in_customer(served: Served, contact: str) -> httpx.Cookies:
    """A customer's session cookies, got through the forms and the outbox."""
    outbox = served.data_dir / "outbox"
    with httpx.Client(base_url=served.base, timeout=30) as client:
        seen = set(outbox.glob("*.eml")) if outbox.exists() else set()
        form = {"csrf": _csrf(client.get("/privacy")), "channel": "email", "contact": contact}
        client.post("/privacy/sign-in", data=form)
        code = _outbox_code(outbox, seen)
        entered = {"csrf": _csrf(client.get("/privacy/code")), "code": code}
        landed = client.post("/privacy/code", data=entered, follow_redirects=True)
        if landed.status_code != 200 or SESSION_COOKIE not in client.cookies:
            raise Failed(f"the code did not sign the customer in (HTTP {landed.status_code})")
        filed = client.post(
            "/privacy/requests",
            data={"csrf": _csrf(client.get("/privacy/requests")), "type": "access"},
        )
        if filed.status_code != 303 or "filed=1" not in filed.headers.get("location", ""):
            raise Failed(f"filing an access request failed (HTTP {filed.status_code})")
        return client.cookies


def sign_in_officer(served: Served) -> httpx.Cookies:
    """A compliance officer's console session, from a ``cvault console link``."""
    argv = [*cvault(), "console", "link", "--role", "compliance_officer", "--sub", "bench-officer"]
    done = subprocess.run(  # noqa: S603 - our own argv
        argv, env=served.env, capture_output=True, text=True, check=True, cwd=ROOT
    )
    found = _LINK.search(done.stdout)
    if found is None:
        raise Failed("cvault console link printed no link")
    with httpx.Client(base_url=served.base, timeout=30) as client:
        landed = client.get(found.group(1), follow_redirects=True)
        if landed.status_code != 200 or CONSOLE_COOKIE not in client.cookies:
            raise Failed(f"the console link did not sign in (HTTP {landed.status_code})")
        return client.cookies


def signed_in_customer_id(served: Served) -> str:
    """The signed-in customer's pseudonymous id (for the console's customer filter)."""
    engine = create_engine(f"sqlite:///{served.data_dir / 'vault.db'}")
    try:
        with engine.connect() as conn:
            found = conn.scalar(
                select(PageSessionRow.customer_id).where(PageSessionRow.kind == "privacy")
            )
    finally:
        engine.dispose()
    if found is None:
        raise Failed("no privacy page session in the database")
    return str(found)


def views_for(customer_id: str) -> list[View]:
    return [
        View("healthz (floor)", "", "/healthz"),
        View("privacy: data", "privacy", "/privacy/data"),
        View("privacy: consents", "privacy", "/privacy/consents"),
        View("privacy: access history", "privacy", "/privacy/access"),
        View("privacy: requests", "privacy", "/privacy/requests"),
        View("console: audit, no filter", "console", "/console/audit"),
        View("console: audit, customer + action", "console",
             f"/console/audit?customer={customer_id}&action=pii.access"),
        View("console: audit, purpose + outcome (scan)", "console",
             "/console/audit?purpose=marketing_email&outcome=denied"),
    ]  # fmt: skip


def _failure(answer: httpx.Response) -> str | None:
    if answer.status_code != 200:
        return f"HTTP {answer.status_code}"
    kind = answer.headers.get("content-type", "")
    if not kind.startswith(("text/html", "application/json")):
        return f"content-type {kind.split(';')[0]}"
    return None


def batch(
    served: Served, view: View, cookies: httpx.Cookies | None, concurrency: int, requests: int
) -> tuple[list[float], list[str], float, float]:
    """``requests`` GETs of one view from ``concurrency`` threads: latencies (ms) of the
    good answers, failure kinds, server CPU seconds, wall seconds."""
    shares = [requests // concurrency + (1 if n < requests % concurrency else 0)
              for n in range(concurrency)]  # fmt: skip
    clients = [httpx.Client(base_url=served.base, cookies=cookies, timeout=60)
               for _ in range(concurrency)]  # fmt: skip
    lock = threading.Lock()
    ms: list[float] = []
    failures: list[str] = []
    ready = threading.Barrier(concurrency + 1)

    def work(client: httpx.Client, count: int) -> None:
        ready.wait()
        for _ in range(count):
            started = time.perf_counter()
            try:
                answer = client.get(view.path)
                failure = _failure(answer)
            except httpx.HTTPError as exc:
                failure = type(exc).__name__
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                (failures.append(failure) if failure else ms.append(elapsed))

    threads = [
        threading.Thread(target=work, args=(c, n)) for c, n in zip(clients, shares, strict=True)
    ]
    try:
        for thread in threads:
            thread.start()
        cpu_before = server_cpu(served.proc.pid)
        wall_before = time.perf_counter()
        ready.wait()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - wall_before
        cpu = server_cpu(served.proc.pid) - cpu_before
    finally:
        for client in clients:
            client.close()
    return ms, failures, cpu, wall


def run(served: Served, args: argparse.Namespace) -> list[Result]:
    contact = plan_customer(args.customer, args.seed, datetime.now(UTC)).data.email
    if contact is None:
        raise Failed(f"demo customer {args.customer} has no e-mail address")
    cookies = {"privacy": sign_in_customer(served, contact), "console": sign_in_officer(served)}
    views = views_for(signed_in_customer_id(served))
    results: list[Result] = []
    for concurrency in args.concurrency:
        before = load_average()
        for view in views:  # warm-up: templates, caches, first statements
            batch(served, view, cookies.get(view.who), concurrency, args.warmup * concurrency)
        level = {view.name: Result(view.name, concurrency) for view in views}
        per_round = [args.requests // args.rounds + (1 if r < args.requests % args.rounds else 0)
                     for r in range(args.rounds)]  # fmt: skip
        for r, count in enumerate(per_round):
            order = views[r % len(views) :] + views[: r % len(views)]
            for view in order:
                level[view.name].record(
                    *batch(served, view, cookies.get(view.who), concurrency, count)
                )
        after = load_average()
        emit({"bench": "pages", "concurrency": concurrency, "load_before": before,
              "load_after": after})  # fmt: skip
        for result in level.values():
            emit(result.summary() | {"load_before": before, "load_after": after})
        results.extend(level.values())
    return results


def report(results: list[Result], args: argparse.Namespace, loads: list[float]) -> None:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
                .splitlines() if line.startswith("model name")), platform.machine())  # fmt: skip
    print(f"\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} (nproc {os.cpu_count()},"
          f" {cpu}; CPython {platform.python_version()}), SQLite, {args.customers} demo "
          f"customers, {args.requests} requests per view and concurrency, load average "
          f"{loads[0]:.2f} at start, {loads[1]:.2f} at end")  # fmt: skip
    print("\n| view | conc. | ok / requests | p50 ms | p99 ms | server CPU ms/req | req/s |"
          " p50 <= 50 ms |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")  # fmt: skip
    for result in results:
        s = result.summary()
        met = "floor" if result.view.startswith("healthz") else (
            "yes" if s["p50_ms"] <= TARGET_P50_MS else "NO")  # fmt: skip
        print(f"| {s['view']} | {s['concurrency']} | {s['ok']} / {s['requests']} | "
              f"{s['p50_ms']} | {s['p99_ms']} | {s['server_cpu_ms_per_request']} | "
              f"{s['requests_per_s']} | {met} |")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=200, help="demo customers")
    parser.add_argument("--seed", type=int, default=7, help="demo seed")
    parser.add_argument("--customer", type=int, default=1, help="which demo customer signs in")
    parser.add_argument("--requests", type=int, default=400, help="per view and concurrency")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=5, help="per view and thread")
    parser.add_argument("--concurrency", default="1,8", help="comma-separated")
    parser.add_argument("--smoke", action="store_true", help="20 customers, a few requests")
    args = parser.parse_args(argv)
    args.concurrency = [int(c) for c in str(args.concurrency).split(",")]
    if args.smoke:
        args.customers, args.requests, args.rounds, args.warmup = 20, 8, 2, 1
    loads = [load_average()[0]]
    with (
        tempfile.TemporaryDirectory() as tmp,
        vault_server(Path(tmp), args.customers, args.seed) as served,
    ):
        results = run(served, args)
    loads.append(load_average()[0])
    report(results, args, loads)
    failed = sum(sum(r.failures.values()) for r in results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
