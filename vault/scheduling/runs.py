"""The record of each job's last run (``job_runs``), and one run of a job under its run
lock, recorded: what a leader's scheduler and a ``cvault`` command both go through."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from vault.logs import get_logger
from vault.scheduling.locks import JobLocks
from vault.storage.db import Database, StorageUnavailable
from vault.storage.models import JobRunRow
from vault.types import JobName

__all__ = ["LastRun", "command_run", "job_run", "last_runs", "runner_name", "utc_now"]

log = get_logger("vault.scheduling")


def utc_now() -> datetime:
    return datetime.now(UTC)


def runner_name(kind: str) -> str:
    """Who runs a job: ``server`` or ``command``, with host name and process id."""
    return f"{kind} {socket.gethostname()[:100]} pid {os.getpid()}"


@dataclass(frozen=True, slots=True)
class LastRun:
    """A job's last recorded run: ``outcome`` is ``running``, ``ok`` or ``failed``."""

    job: JobName
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    runner: str
    runs: int


def last_runs(db: Database) -> dict[JobName, LastRun]:
    """The last run of every recorded job (jobs that never ran are absent)."""
    with db.transaction() as session:
        rows = session.scalars(select(JobRunRow)).all()
        return {
            JobName(row.job): LastRun(
                JobName(row.job), row.started_at, row.finished_at, row.outcome, row.runner, row.runs
            )
            for row in rows
            if row.job in JobName.__members__.values()
        }


def _started(db: Database, job: JobName, now: datetime, runner: str) -> None:
    with db.transaction() as session:
        row = session.get(JobRunRow, job.value)
        if row is None:
            session.add(
                JobRunRow(
                    job=job.value, started_at=now, finished_at=None, outcome="running",
                    runner=runner, runs=1,
                )
            )  # fmt: skip
            return
        row.started_at, row.finished_at, row.outcome = now, None, "running"
        row.runner, row.runs = runner, row.runs + 1


def _finished(db: Database, job: JobName, now: datetime, outcome: str) -> None:
    with db.transaction() as session:
        row = session.get(JobRunRow, job.value)
        if row is not None:
            row.finished_at, row.outcome = now, outcome


@contextlib.contextmanager
def job_run(
    db: Database,
    locks: JobLocks,
    job: JobName,
    *,
    runner: str,
    clock: Callable[[], datetime] = utc_now,
) -> Iterator[None]:
    """One run of ``job``: its run lock held (:class:`~vault.scheduling.locks.JobBusy`
    when another process runs it), its start and end recorded in ``job_runs``."""
    with locks.running(job):
        _started(db, job, clock(), runner)
        try:
            yield
        except BaseException:
            try:
                _finished(db, job, clock(), "failed")
            except (SQLAlchemyError, StorageUnavailable) as exc:  # the run's error matters more
                log.warning("job run failure not recorded", job=job.value, error=type(exc).__name__)
            raise
        _finished(db, job, clock(), "ok")


@contextlib.contextmanager
def command_run(db: Database, job: JobName) -> Iterator[None]:
    """A ``cvault`` command running ``job`` by hand: the same run lock and record as the
    server's scheduler, so the two never overlap."""
    locks = JobLocks(db.direct)
    try:
        with job_run(db, locks, job, runner=runner_name("command")):
            yield
    finally:
        locks.close()
