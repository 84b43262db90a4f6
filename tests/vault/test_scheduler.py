"""The scheduler: each job run by the one scheduler that leads it, on its period, with
runs recorded, failures survived and a command's run respected (``vault.scheduling``).
Two schedulers on one database stand for two server processes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from api.app import create_app
from audit.entries import AuditAction
from vault import telemetry
from vault.config import ConfigError, Settings
from vault.runtime import Vault
from vault.scheduling import Job, JobLocks, Schedule, Scheduler, last_runs
from vault.scheduling.runs import _started, utc_now
from vault.storage.db import Database
from vault.storage.models import AuditEntryRow
from vault.types import JobName

RETENTION = JobName.RETENTION
WAIT = 60.0  # the most a wait lasts on a loaded machine; a hang fails, never stalls


async def until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` on the event loop until it holds; fail after WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def runs_of(job: JobName, outcome: str) -> float:
    value = telemetry.REGISTRY.get_sample_value(
        "cvault_scheduler_runs_total", {"job": job.value, "outcome": outcome}
    )
    return value or 0.0


def test_one_of_two_schedulers_runs_a_job_and_the_other_takes_over_without_repeating_it(
    database: Database,
) -> None:
    """Two schedulers (two processes) with the same daily job: the one that started first
    leads and runs it once; the other leads nothing. When the leader stops, the other
    takes the lead within a few polls, and since the recorded run is recent it does not
    run the job again."""
    calls: list[str] = []

    async def scenario() -> tuple[frozenset[JobName], frozenset[JobName]]:
        first = Scheduler(database, [Job(RETENTION, 3600, lambda: calls.append("first"))],
                          leader_poll=0.02)  # fmt: skip
        second = Scheduler(database, [Job(RETENTION, 3600, lambda: calls.append("second"))],
                           leader_poll=0.02)  # fmt: skip
        first.start()
        await until(lambda: calls == ["first"], "the first scheduler's run")
        second.start()
        await asyncio.sleep(0.2)  # ten polls of the follower
        while_led = second.leads
        await first.stop()
        await until(lambda: RETENTION in second.leads, "the second scheduler to lead")
        await asyncio.sleep(0.2)  # ten polls of the new leader: nothing is due
        after = second.leads
        await second.stop()
        return while_led, after

    while_led, after = asyncio.run(scenario())
    run = last_runs(database)[RETENTION]
    assert (calls, while_led, after) == (["first"], frozenset(), frozenset({RETENTION}))
    assert (run.outcome, run.runs, run.runner.startswith("server ")) == ("ok", 1, True)


def test_a_recorded_job_runs_at_once_when_its_last_run_is_older_than_its_period(
    database: Database,
) -> None:
    """A new leader reads the job's record: last started two hours ago with an hourly
    period, the job is due and runs at once."""
    _started(database, RETENTION, utc_now() - timedelta(hours=2), "server elsewhere pid 1")
    calls: list[int] = []

    async def scenario() -> None:
        scheduler = Scheduler(database, [Job(RETENTION, 3600, lambda: calls.append(1))],
                              leader_poll=0.02)  # fmt: skip
        scheduler.start()
        await until(lambda: calls == [1], "the overdue run")
        await scheduler.stop()

    asyncio.run(scenario())
    assert last_runs(database)[RETENTION].runs == 2


def test_a_failing_job_is_recorded_failed_and_tried_again(database: Database) -> None:
    """A run that raises is recorded as failed and counted; the scheduler goes on and
    tries again after its period (short here)."""
    before = runs_of(RETENTION, "failed")
    calls: list[int] = []

    def fail() -> None:
        calls.append(1)
        raise RuntimeError("a run that fails")

    async def scenario() -> None:
        scheduler = Scheduler(database, [Job(RETENTION, 0.05, fail)], leader_poll=0.02)
        scheduler.start()
        await until(lambda: len(calls) >= 2, "a second try")
        await scheduler.stop()

    asyncio.run(scenario())
    run = last_runs(database)[RETENTION]
    assert (run.outcome, runs_of(RETENTION, "failed") - before >= 2) == ("failed", True)


def test_a_command_running_the_job_makes_the_leader_wait_for_it(database: Database) -> None:
    """While a command holds the job's run lock, the leader's due run is skipped (counted
    as busy), not run beside it; once the command is done the leader runs the job."""
    before = runs_of(RETENTION, "busy")
    calls: list[int] = []
    command = JobLocks(database.engine)

    async def scenario() -> int:
        scheduler = Scheduler(database, [Job(RETENTION, 3600, lambda: calls.append(1))],
                              leader_poll=0.02)  # fmt: skip
        with command.running(RETENTION):
            scheduler.start()
            await until(lambda: runs_of(RETENTION, "busy") > before, "a skipped run")
            during = len(calls)
        await until(lambda: calls == [1], "the run after the command")
        await scheduler.stop()
        return during

    try:
        assert asyncio.run(scenario()) == 0
    finally:
        command.close()


def test_the_server_runs_every_job_as_a_system_actor_audited_as_the_commands_are(
    vault: Vault,
) -> None:
    """An app given every job runs segment refresh, the metrics rollup and retention once
    (none ran before), as ``system:segments`` and ``system:retention``; each run is
    recorded, and the leader gauge shows the app leads them."""
    schedule = Schedule(
        every=dict.fromkeys(JobName, 3600.0) | {JobName.AUDIT_SEQUENCER: 0.05},
        leader_poll=0.02,
    )
    recorded = {JobName.SEGMENT_REFRESH, JobName.METRICS_ROLLUP, RETENTION, JobName.ANOMALY_SCAN}
    with TestClient(create_app(vault, schedule=schedule)):
        deadline = time.monotonic() + WAIT
        while {j for j, r in last_runs(vault.db).items() if r.outcome == "ok"} != recorded:
            assert time.monotonic() < deadline, "the scheduled jobs did not run"
            time.sleep(0.02)
        leading = {
            job: telemetry.REGISTRY.get_sample_value("cvault_scheduler_leader", {"job": job})
            for job in JobName
        }
    with vault.db.transaction() as session:
        actions = session.execute(
            select(AuditEntryRow.actor, AuditEntryRow.action).order_by(AuditEntryRow.id)
        ).all()
    assert leading == dict.fromkeys(JobName, 1.0)
    assert set(actions) == {
        ("system:segments", AuditAction.SEGMENT_REFRESH.value),
        ("system:retention", AuditAction.RETENTION_RUN.value),
    }


def test_job_periods_come_from_the_settings(tmp_path: Path) -> None:
    """Each job's period is a duration (ms, s, m, h, d, or bare seconds) or ``off``; the
    defaults are the sequencer every 0.5 s, webhooks every 2 s, segment refresh and the
    rollup hourly, retention daily; a bad value names the variable and the rule."""
    env = {"CVAULT_DATA_DIR": str(tmp_path)}
    defaults = Schedule.of(Settings.from_env(env))
    changed = Schedule.of(
        Settings.from_env(
            {
                **env,
                "CVAULT_AUDIT_SEQUENCE_EVERY": "250ms",
                "CVAULT_WEBHOOK_DELIVERY_EVERY": "off",
                "CVAULT_SEGMENT_REFRESH_EVERY": "15m",
                "CVAULT_METRICS_ROLLUP_EVERY": "2h",
                "CVAULT_RETENTION_EVERY": "7d",
                "CVAULT_LEADER_POLL": "3",
            }
        )
    )
    assert (dict(defaults.every), defaults.leader_poll) == (
        {
            JobName.AUDIT_SEQUENCER: 0.5,
            JobName.WEBHOOK_DELIVERY: 2.0,
            JobName.SEGMENT_REFRESH: 3600.0,
            JobName.METRICS_ROLLUP: 3600.0,
            RETENTION: 86400.0,
            JobName.ANOMALY_SCAN: 60.0,
        },
        1.0,
    )
    assert (changed.enabled(), changed.leader_poll) == (
        {
            JobName.AUDIT_SEQUENCER: 0.25,
            JobName.SEGMENT_REFRESH: 900.0,
            JobName.METRICS_ROLLUP: 7200.0,
            RETENTION: 604800.0,
            JobName.ANOMALY_SCAN: 60.0,
        },
        3.0,
    )
    errors = []
    for name, value in (("CVAULT_RETENTION_EVERY", "daily"), ("CVAULT_LEADER_POLL", "1m")):
        with pytest.raises(ConfigError) as caught:
            Settings.from_env({**env, name: value})
        errors.append(str(caught.value))
    assert errors == [
        "Config 'CVAULT_RETENTION_EVERY' must be a duration such as 500ms, 2s, 15m, 1h or 1d, "
        "or off.",
        "Config 'CVAULT_LEADER_POLL' must be between 0.1 s and 30 s.",
    ]
