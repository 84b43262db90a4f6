"""The server's scheduled jobs, each run by exactly one process at a time.

Owns: the jobs and their periods (``jobs``: audit sequencer, webhook delivery, segment
refresh, metrics rollup, retention, anomaly scan), the locks that elect one leader per job and keep
a run and a command apart (``locks``: PostgreSQL session advisory locks, ``flock`` on
SQLite), the record of each recorded job's last run (``runs``, table ``job_runs``) and
the asyncio scheduler a server process runs (``scheduler``). docs/operations.md tells
what runs where.

May import: ``runtime`` (the opened vault and its services) and what lies below it. The
edges start it (``api.app``'s lifespan) and take a job's run lock when a command runs
the job by hand (``command_run``).
"""

from vault.scheduling.jobs import RECORDED, Job, Schedule, vault_jobs
from vault.scheduling.locks import JobBusy, JobLocks
from vault.scheduling.runs import LastRun, command_run, job_run, last_runs
from vault.scheduling.scheduler import Scheduler, start_scheduler

__all__ = [
    "RECORDED",
    "Job",
    "JobBusy",
    "JobLocks",
    "LastRun",
    "Schedule",
    "Scheduler",
    "command_run",
    "job_run",
    "last_runs",
    "start_scheduler",
    "vault_jobs",
]
