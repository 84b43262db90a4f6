"""Real processes for reliability tests: the ``cvault`` CLI, ``cvault serve`` on a free
loopback port, a throwaway PostgreSQL cluster, and the waits between them.

Every wait is bounded and polls for a condition (a file, ``/readyz``, a port); none
sleeps and hopes. A process that dies while it is waited for fails the wait with its
log. Crash tests stop a process at a named fault point (:mod:`vault.faults`):
``fault_env`` arms it, :func:`wait_for_file` sees it reached, :meth:`Server.kill` or
``os.kill(pid, SIGKILL)`` ends it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from api.auth import LocalTokenIssuer
from policies import Role
from tests.conftest import IN_CI
from vault.config import Settings

__all__ = [
    "ROOT",
    "PostgresCluster",
    "Server",
    "cli_command",
    "fault_env",
    "free_port",
    "kill",
    "postgres_cluster",
    "run_cli",
    "serving",
    "start_cli",
    "token",
    "unavailable",
    "vault_env",
    "wait_for",
    "wait_for_file",
]

ROOT = Path(__file__).resolve().parent.parent
WAIT = 120.0  # the most any single wait lasts (a loaded machine); a hang fails, not stalls


def unavailable(message: str) -> None:
    """A process test cannot run here: a failure under CI=true, a skip elsewhere."""
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    condition: Callable[[], bool], what: str, *, alive: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll ``condition`` until it holds; fail after WAIT seconds or when ``alive`` exits."""
    deadline = time.monotonic() + WAIT
    while not condition():
        if alive is not None and alive.poll() is not None:
            pytest.fail(f"process exited ({alive.returncode}) while waiting for {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def wait_for_file(path: Path, process: subprocess.Popen[bytes]) -> str:
    """Wait until a fault point announced itself in ``path``; its name."""
    wait_for(path.exists, f"fault point file {path.name}", alive=process)
    return path.read_text()


# -- the CLI ------------------------------------------------------------------


def cli_command() -> list[str]:
    """``cvault`` as installed: the entry point, run by this interpreter on this tree."""
    entry = "import sys; sys.argv[0] = 'cvault'; import api.cli; api.cli.main()"
    return [sys.executable, "-c", entry]


def vault_env(data_dir: Path, database_url: tuple[str, str | None], **extra: str) -> dict[str, str]:
    """The environment of a ``cvault`` process on ``data_dir`` and the database (a
    PostgreSQL schema goes into the URL as ``options=-csearch_path``). The server's
    hourly and daily jobs (segment refresh, metrics rollup, retention) are off unless
    ``extra`` turns them on: a crash test counts units of work, and a job's run at start
    would take some."""
    url, schema = database_url
    if schema is not None:
        url = f"{url}?options={quote(f'-csearch_path={schema}')}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CVAULT_")}
    env.update(
        PYTHONPATH=str(ROOT),
        CVAULT_ENV="test",
        CVAULT_DATA_DIR=str(data_dir),
        CVAULT_DATABASE_URL=url,
        CVAULT_LOG_LEVEL="warning",
        CVAULT_RATE_LIMIT_PER_MINUTE="1000000",
        CVAULT_SEGMENT_REFRESH_EVERY="off",
        CVAULT_METRICS_ROLLUP_EVERY="off",
        CVAULT_RETENTION_EVERY="off",
    )
    env.update(extra)
    return env


def token(env: Mapping[str, str], role: Role, sub: str = "crash-test") -> str:
    """A bearer token signed with the vault's local key, as ``cvault token issue`` mints."""
    settings = Settings.from_env(env)
    issuer = LocalTokenIssuer.load_or_create(
        settings.jwt_signing_key, settings.jwt_issuer, settings.jwt_audience
    )
    return issuer.issue(sub, role)


def fault_env(env: Mapping[str, str], point: str, announce: Path) -> dict[str, str]:
    """``env`` with the fault point ``point`` (``name[:n]``) armed, announced in ``announce``."""
    return {**env, "CVAULT_FAULT_AT": point, "CVAULT_FAULT_FILE": str(announce)}


def run_cli(
    env: Mapping[str, str], *args: str, expect: int | None = 0, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``cvault ARGS`` to the end; fail unless it exits ``expect`` (None: any code)."""
    done = subprocess.run(
        [*cli_command(), *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=120,
        input=stdin,
        check=False,
        cwd=ROOT,
    )
    if expect is not None and done.returncode != expect:
        pytest.fail(
            f"cvault {' '.join(args)} exited {done.returncode}, expected {expect}:\n"
            f"{done.stdout}\n{done.stderr}"
        )
    return done


def start_cli(env: Mapping[str, str], *args: str, log: Path) -> subprocess.Popen[bytes]:
    """Start ``cvault ARGS`` in the background, its output into ``log``; in a process
    group of its own (granian serves from a worker process under its own)."""
    with log.open("wb") as sink:
        return subprocess.Popen(
            [*cli_command(), *args], env=dict(env), stdout=sink, stderr=subprocess.STDOUT,
            cwd=ROOT, start_new_session=True,
        )  # fmt: skip


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL (``kill -9``) of the process and its group (a server's workers), and reap."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=WAIT)


# -- the server ---------------------------------------------------------------


class Server:
    """``cvault serve`` on a free port of 127.0.0.1 (one worker unless ``args`` say
    ``--workers N``), its log in a file."""

    def __init__(self, env: Mapping[str, str], log_dir: Path, *args: str) -> None:
        self.env = dict(env)
        self.args = args
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log_dir / f"server-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        self.process = start_cli(
            self.env, "serve", "--port", str(self.port), *self.args, log=self.log
        )
        wait_for(self.ready, f"{self.url}/readyz", alive=self.process)
        return self

    def ready(self) -> bool:
        try:
            return requests.get(f"{self.url}/readyz", timeout=5).status_code == 200
        except requests.ConnectionError:
            return False

    def graphql(
        self, token: str, purpose: str, query: str, variables: dict[str, Any] | None = None
    ) -> requests.Response:
        """POST one operation; the response, whatever its status (10 s at most)."""
        return requests.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {token}", "X-Purpose": purpose},
            timeout=10,
        )

    def pids(self) -> set[int]:
        """The server's process and its children (granian serves from a worker)."""
        if self.process is None:
            return set()
        found = {self.process.pid}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == self.process.pid:  # the parent's pid
                    found.add(int(stat.parent.name))
        return found

    def kill(self) -> None:
        """``kill -9``: no shutdown hook runs."""
        if self.process is not None:
            kill(self.process)

    def stop(self) -> None:
        """SIGTERM, the orderly way; SIGKILL if it does not stop."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            kill(self.process)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@contextlib.contextmanager
def serving(env: Mapping[str, str], log_dir: Path) -> Iterator[Server]:
    server = Server(env, log_dir).start()
    try:
        yield server
    finally:
        server.stop()


# -- a throwaway PostgreSQL cluster ---------------------------------------------


def _pg_bindir() -> Path | None:
    found = shutil.which("pg_config")
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    if found:
        out = subprocess.run([found, "--bindir"], capture_output=True, text=True, check=False)
        candidates.insert(0, Path(out.stdout.strip()))
    return next((c for c in candidates if (c / "initdb").exists()), None)


class PostgresCluster:
    """A PostgreSQL cluster of the test's own: initdb into a temporary folder, its own
    port on 127.0.0.1, stopped and removed afterwards. Never the machine's shared server.

    PostgreSQL refuses to run as root: as root, the cluster belongs to the ``postgres``
    system user and runs under ``runuser``. Trust authentication, user ``postgres``."""

    def __init__(self) -> None:
        bindir = _pg_bindir()
        if bindir is None:
            unavailable("PostgreSQL server binaries (initdb, pg_ctl) not found")
        assert bindir is not None
        self.bindir = bindir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="cvault-pg-"))
        self.data = self.root / "data"
        self.logfile = self.root / "postgres.log"
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._as: list[str] = []
        if os.geteuid() == 0:
            if shutil.which("runuser") is None:
                unavailable("running as root without runuser: cannot start PostgreSQL")
            self._as = ["runuser", "-u", "postgres", "--"]
            try:
                shutil.chown(self.root, "postgres", "postgres")
            except (LookupError, PermissionError) as exc:
                unavailable(f"no postgres system user to own the cluster: {exc}")

    @property
    def run_as(self) -> list[str]:
        """The command prefix that runs a program as the cluster's user (empty: as us)."""
        return list(self._as)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a program (a PostgreSQL binary) as the cluster's user; its result."""
        return self._run(*args)

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self._as, *args], capture_output=True, text=True, timeout=120, check=False
        )

    def init(self) -> PostgresCluster:
        done = self._run(
            str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
            "--auth=trust", "--no-sync", "-E", "UTF8",
        )  # fmt: skip
        if done.returncode != 0:
            unavailable(f"initdb failed: {done.stderr.strip()}")
        return self.start()

    def start(self) -> PostgresCluster:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            "-c fsync=off -c max_connections=60"
        )
        done = self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.logfile),
            "-o", options, "-w", "-t", "30", "start",
        )  # fmt: skip
        if done.returncode != 0:
            log = self.logfile.read_text(errors="replace") if self.logfile.exists() else ""
            unavailable(f"pg_ctl start failed: {done.stderr.strip()} {log[-2000:]}")
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: connections are cut, as in a restart or a crash)."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def postgres_cluster() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster()
    try:
        yield cluster.init()
    finally:
        cluster.remove()
