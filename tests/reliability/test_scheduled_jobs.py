"""Many processes, one database, with real ``cvault serve`` processes: ``/metrics`` adds up
every worker's counts whichever worker answers, and each scheduled job is led by one
server; when that leader is killed (``kill -9``) another takes the job over and runs it.

Every wait polls a condition and is bounded (tests/processes.py); no wall-clock figure
is asserted. How long a takeover took is printed (``-s`` shows it; docs/operations.md).
"""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Mapping
from pathlib import Path

import pytest
import requests
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from tests.processes import Server, run_cli, vault_env, wait_for
from vault.config import Settings
from vault.runtime import Vault
from vault.scheduling import LastRun, last_runs
from vault.types import JobName

pytestmark = pytest.mark.processes

HEALTHZ = {"route": "/healthz", "method": "GET", "status": "200"}


def sample(url: str, name: str, labels: Mapping[str, str]) -> float | None:
    """One sample of one scrape of ``url``/metrics (None: not there)."""
    body = requests.get(f"{url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return None


def per_worker(folder: Path, tmp: Path) -> dict[int, float]:
    """/healthz requests each worker counted in its own file (its share of the total)."""
    counts: dict[int, float] = {}
    for path in folder.glob("counter_*.db"):
        if path.stat().st_size < 4:  # a worker is creating it right now: nothing counted yet
            continue
        alone = tmp / f"one-{path.stem}"
        alone.mkdir(exist_ok=True)
        shutil.copy(path, alone / path.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, str(alone))  # type: ignore[no-untyped-call]
        value = registry.get_sample_value("cvault_http_requests_total", HEALTHZ)
        if value:
            counts[int(path.stem.rsplit("_", 1)[1])] = value
    return counts


def test_metrics_add_up_every_worker_whichever_worker_answers(
    tmp_path: Path, database_url: tuple[str, str | None]
) -> None:
    """``cvault serve --workers 2``: requests on fresh connections until both workers have
    served some (each worker's own file shows its share, less than the total: what one
    scrape showed before), then every scrape shows the total, and the refusals too;
    stopping the server removes its metrics folder."""
    env = vault_env(tmp_path / "data", database_url)
    run_cli(env, "init")
    server = Server(env, tmp_path, "--workers", "2").start()
    try:
        runs = list((tmp_path / "data" / "metrics").iterdir())
        assert len(runs) == 1
        folder = runs[0]
        sent = 0
        shares: dict[int, float] = {}
        while len(shares) < 2 and sent < 2000:
            for _ in range(20):
                assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200
            sent += 20
            shares = per_worker(folder, tmp_path)
        refused = 7
        for _ in range(refused):
            answer = requests.post(f"{server.url}/graphql", json={"query": "{ me { id } }"},
                                   headers={"X-Purpose": "support"}, timeout=10)  # fmt: skip
            assert answer.status_code == 401
        scrapes = [
            (
                sample(server.url, "cvault_http_requests_total", HEALTHZ),
                sample(server.url, "cvault_refusals_total", {"code": "UNAUTHENTICATED"}),
            )
            for _ in range(12)
        ]
        final_shares = per_worker(folder, tmp_path)
    finally:
        server.stop()
    assert (len(final_shares), sum(final_shares.values())) == (2, sent)
    assert all(0 < share < sent for share in final_shares.values())
    assert scrapes == [(float(sent), float(refused))] * 12
    assert not folder.exists()


def _leader(servers: list[Server], job: JobName) -> Server | None:
    """The one server whose /metrics says it leads ``job`` (None: none, or not one)."""
    leading = [
        s for s in servers if sample(s.url, "cvault_scheduler_leader", {"job": job.value}) == 1
    ]
    return leading[0] if len(leading) == 1 else None


def _last_run(env: Mapping[str, str], job: JobName) -> LastRun | None:
    vault = Vault.open(Settings.from_env(env))
    try:
        return last_runs(vault.db).get(job)
    finally:
        vault.close()


def test_when_the_leader_is_killed_another_server_takes_the_job_over_and_runs_it(
    tmp_path: Path, database_url: tuple[str, str | None]
) -> None:
    """Two ``cvault serve`` processes on one database, retention every second: exactly one
    leads it (its /metrics says so) and records its runs. After ``kill -9`` of that
    leader the other server leads (its gauge turns 1) and runs retention itself: the
    job's record names its process."""
    env = vault_env(
        tmp_path / "data",
        database_url,
        CVAULT_RETENTION_EVERY="1s",
        CVAULT_SEGMENT_REFRESH_EVERY="1h",
        CVAULT_METRICS_ROLLUP_EVERY="1h",
        CVAULT_LEADER_POLL="0.2",
    )
    run_cli(env, "init")
    servers = [Server(env, tmp_path).start(), Server(env, tmp_path).start()]
    host = socket.gethostname()
    try:
        found: list[Server] = []

        def one_leads() -> bool:
            leader = _leader(servers, JobName.RETENTION)
            found[:] = [] if leader is None else [leader]
            return leader is not None

        wait_for(one_leads, "one server to lead retention")
        leader = found[0]
        follower = next(s for s in servers if s is not leader)
        assert leader.process is not None
        assert follower.process is not None
        # The app runs in the server's process or, under granian, in its worker.
        by_leader = {f"server {host} pid {pid}" for pid in leader.pids()}
        by_follower = {f"server {host} pid {pid}" for pid in follower.pids()}

        def run_by(runners: set[str]) -> bool:
            run = _last_run(env, JobName.RETENTION)
            return run is not None and run.runner in runners and run.outcome == "ok"

        wait_for(lambda: run_by(by_leader), "a retention run by the leader")
        assert sample(follower.url, "cvault_scheduler_leader", {"job": "retention"}) == 0
        killed = time.monotonic()
        leader.kill()
        wait_for(
            lambda: sample(follower.url, "cvault_scheduler_leader", {"job": "retention"}) == 1,
            "the follower to lead retention",
            alive=follower.process,
        )
        took_over = time.monotonic()
        wait_for(lambda: run_by(by_follower), "a retention run by the new leader")
        print(  # the figure docs/operations.md quotes
            f"\n{database_url[0].split(':')[0]}: lead taken over "
            f"{took_over - killed:.2f} s after kill -9, job run {time.monotonic() - killed:.2f} s"
        )
        others = {j: sample(follower.url, "cvault_scheduler_leader", {"job": j}) for j in JobName}
    finally:
        for server in servers:
            server.stop()
    assert others == dict.fromkeys(JobName, 1.0)
