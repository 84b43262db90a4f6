"""The two servers under test: ours (granian or uvicorn, production mode) and PostGraphile 4
(installed with npm on first use), started in their own process group on a free
port, waited for, and stopped whatever happens."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import emit
from bench.graphql.client import post
from bench.graphql.cpu import all_stats, cmdline, tree_cpu, tree_rss_mb
from bench.graphql.target import LIBPQ_URL, Target

ROOT = Path(__file__).resolve().parents[2]
PEER_DIR = Path(__file__).resolve().parents[1] / "postgraphile"


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
    supervised: bool = False  # workers are children even at one process (granian)

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
        if self.processes == 1 and not self.supervised:
            return [self.proc.pid]
        stats = all_stats()
        return sorted(
            p for p in pids
            if p != self.proc.pid and stats[p].ppid == self.proc.pid
            and "resource_tracker" not in cmdline(p)
        )  # fmt: skip


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


def start_ours(target: Target, processes: int, workdir: Path, server: str = "granian") -> Server:
    """Our server as ``cvault serve`` runs it: granian (its default) or uvicorn, each
    with the fastest loop and parser installed, no access log."""
    loop = "uvloop" if _importable("uvloop") else "asyncio"
    http = "httptools" if _importable("httptools") else "h11"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CVAULT_")} | target.env()
    port = str(free_port())
    if server == "granian":
        argv = [
            sys.executable, "-m", "granian", "--interface", "asgi", "--factory",
            "--host", "127.0.0.1", "--port", port, "--workers", str(processes),
            "--http", "1", "--loop", "uvloop" if loop == "uvloop" else "asyncio",
            "--log-level", "warning", "--no-access-log", "api.serving:create_app_for_granian",
        ]  # fmt: skip
        http = "granian (Rust, HTTP/1.1)"
    else:
        argv = [
            sys.executable, "-m", "uvicorn", "api.app:create_app_from_env", "--factory",
            "--host", "127.0.0.1", "--port", port, "--workers", str(processes),
            "--loop", loop, "--http", http, "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip
    ours = _spawn("ours", processes, argv, env=env, log=workdir / f"ours-{processes}.log",
                  cwd=ROOT)  # fmt: skip
    ours.supervised = server == "granian"
    ours.notes = {"server": server, "loop": loop, "http": http,
                  "log_level": target.settings().log_level}  # fmt: skip
    return ours


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


def memory_of(server: Server) -> dict[str, Any]:
    """Resident memory (MB) of every live process of a server, each with its role: the
    request-serving workers, and the supervisor / helpers beside them."""
    rss = tree_rss_mb(server.proc.pid)
    workers = set(server.workers())
    return {
        "server": server.name,
        "processes": server.processes,
        "rss_mb": [
            {"pid": pid, "role": "worker" if pid in workers else "supervisor/helper", "mb": mb}
            for pid, mb in sorted(rss.items())
        ],
        "total_mb": round(sum(rss.values()), 1),
    }
