"""The commands that run a scheduled job by hand (``cvault retention run``, ``segments
refresh``, ``segments metrics``) take the job's run lock, as the server's scheduler does:
while another process runs the job they refuse with exit 1 and a message naming it, and
their own runs are recorded where the scheduler looks."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from api.cli import app
from tests.api.test_cli import cli_env
from vault.config import Settings
from vault.runtime import Vault
from vault.scheduling import JobLocks, last_runs
from vault.types import JobName

COMMANDS = {
    JobName.RETENTION: ["retention", "run"],
    JobName.SEGMENT_REFRESH: ["segments", "refresh"],
    JobName.METRICS_ROLLUP: ["segments", "metrics"],
    JobName.ANOMALY_SCAN: ["alerts", "scan"],
}


def test_job_commands_refuse_while_another_process_runs_the_job_and_record_their_runs(
    tmp_path: Path, database_url: tuple[str, str | None]
) -> None:
    """With a job's run lock held elsewhere (a server's scheduler in the middle of a run),
    its command exits 1 naming the job and changes nothing; a dry run of retention takes
    no lock; once the lock is free each command runs (exit 0) and is recorded as run by a
    command."""
    env = cli_env(tmp_path, database_url)
    runner = CliRunner()
    assert runner.invoke(app, ["init"], env=env).exit_code == 0
    vault = Vault.open(Settings.from_env(env))
    server = JobLocks(vault.db.engine)
    held: dict[JobName, tuple[int, bool]] = {}
    try:
        for job, args in COMMANDS.items():
            with server.running(job):
                refused = runner.invoke(app, args, env=env)
                if job is JobName.RETENTION:
                    dry = runner.invoke(app, [*args, "--dry-run"], env=env)
                    assert dry.exit_code == 0, dry.output
            message = f"error: {job.value} is running in another process"
            held[job] = (refused.exit_code, message in refused.output)
        before = last_runs(vault.db)
        free = {job: runner.invoke(app, args, env=env).exit_code for job, args in COMMANDS.items()}
        after = last_runs(vault.db)
    finally:
        server.close()
        vault.close()
    assert held == dict.fromkeys(COMMANDS, (1, True))
    assert (before, free) == ({}, dict.fromkeys(COMMANDS, 0))
    assert {
        job: (run.outcome, run.runner.split()[0]) for job, run in after.items()
    } == dict.fromkeys(COMMANDS, ("ok", "command"))
