"""The server's scheduler: for each enabled job, lead it or wait to, and run it when due.

Every server process runs one :class:`Scheduler`; for each job exactly one process leads
(``vault.scheduling.locks``). A follower tries to take the lead every ``leader_poll``
seconds, so when a leader dies (``kill -9`` included) another process runs its jobs
within about that long (on PostgreSQL, once the server has noticed the dead connection:
at once for a killed process). A recorded job is next due at its last recorded start
plus its period (at once if it never ran): a restart or a change of leader neither
skips a daily run nor repeats one. A failed run is tried again after at most a minute.

Runs happen in the scheduler's own threads (one per job), never on the event loop and
never in the threads the server's requests use. ``stop`` waits for a run in progress
to finish, then gives up every lead.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TypeVar

from vault import telemetry
from vault.logs import get_logger
from vault.runtime import Vault
from vault.scheduling.jobs import Job, Schedule, vault_jobs
from vault.scheduling.locks import JobBusy, JobLocks
from vault.scheduling.runs import job_run, last_runs, runner_name, utc_now
from vault.storage.db import Database, StorageUnavailable
from vault.types import JobName

__all__ = ["RETRY_AFTER", "Scheduler", "start_scheduler"]

log = get_logger("vault.scheduling")
RETRY_AFTER = 60.0  # seconds before a failed run is tried again (or the period if shorter)
_T = TypeVar("_T")


class Scheduler:
    """Runs ``jobs`` on their periods while this process leads them."""

    def __init__(
        self,
        db: Database,
        jobs: Sequence[Job],
        *,
        leader_poll: float = 1.0,
        locks: JobLocks | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._db = db
        self._jobs = list(jobs)
        self._poll = leader_poll
        self._locks = locks or JobLocks(db.direct, verify_every=leader_poll)
        self._clock = clock
        self._runner = runner_name("server")
        self._tasks: list[asyncio.Task[None]] = []
        self._threads = ThreadPoolExecutor(
            max_workers=max(1, len(self._jobs)), thread_name_prefix="cvault-job"
        )

    def __repr__(self) -> str:
        return f"Scheduler(jobs={[j.name.value for j in self._jobs]}, leads={sorted(self.leads)})"

    @property
    def leads(self) -> frozenset[JobName]:
        """The jobs this process leads now."""
        return self._locks.leads()

    def start(self) -> None:
        """Start one task per job on the running event loop."""
        for job in self._jobs:
            self._tasks.append(asyncio.create_task(self._drive(job), name=f"job:{job.name}"))

    async def stop(self) -> None:
        """Cancel the jobs' tasks, wait for a run in progress, give up every lead."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await asyncio.to_thread(self._threads.shutdown, wait=True)
        for job in self._jobs:
            telemetry.leading(job.name, led=False)
        self._locks.close()

    async def _in_thread(self, work: Callable[[], _T]) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._threads, work)

    async def _drive(self, job: Job) -> None:
        due: float | None = None  # monotonic time of the next run; None: to be worked out
        led = False
        telemetry.leading(job.name, led=False)  # a follower shows 0, not nothing
        while True:
            try:
                now_led = await self._in_thread(lambda: self._locks.lead(job.name))
            except Exception as exc:  # noqa: BLE001 - a lock that cannot be asked is not held
                log.error("scheduler cannot ask for the lead", job=job.name.value,  # noqa: TRY400
                          error=type(exc).__name__)  # fmt: skip
                now_led = False
            if now_led != led:
                led = now_led
                telemetry.leading(job.name, led=led)
                log.info("scheduler " + ("leads" if led else "follows"), job=job.name.value)
                due = None
            if not led:
                await asyncio.sleep(self._poll)
                continue
            if due is None:
                due = await self._in_thread(lambda: self._first_due(job))
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(min(wait, self._poll))
                continue
            again = await self._in_thread(lambda: self._run(job))
            if again is None:  # a command runs it: look at its record again in a while
                due = None
                await asyncio.sleep(self._poll)
            else:
                due = time.monotonic() + again

    def _first_due(self, job: Job) -> float:
        """When a job this process has just come to lead is due (monotonic): a recorded
        job at its last start plus its period, any other one period from now."""
        if not job.recorded:
            return time.monotonic() + job.every
        try:
            last = last_runs(self._db).get(job.name)
        except StorageUnavailable as exc:
            log.warning("scheduler waits for the database", job=job.name.value, reason=exc.reason)
            return time.monotonic() + min(job.every, self._poll)
        except Exception as exc:  # noqa: BLE001 - the job's loop must outlive it
            log.error("job record unreadable", job=job.name.value, error=type(exc).__name__)  # noqa: TRY400
            return time.monotonic() + min(job.every, RETRY_AFTER)
        if last is None:
            return time.monotonic()
        # A run that failed, or never finished (its process died), is tried again soon.
        period = job.every if last.outcome == "ok" else min(job.every, RETRY_AFTER)
        late = (self._clock() - last.started_at).total_seconds()
        return time.monotonic() + max(0.0, period - late)

    def _run(self, job: Job) -> float | None:
        """Run ``job`` once; the seconds until it is due again (None: as its record says,
        after a command ran it)."""
        started = time.perf_counter()
        try:
            if job.recorded:
                with job_run(
                    self._db, self._locks, job.name, runner=self._runner, clock=self._clock
                ):
                    job.run()
            else:
                job.run()
        except JobBusy:
            telemetry.job_ran(job.name, "busy", None)
            log.info("scheduled run skipped: a command runs the job", job=job.name.value)
            return None
        except StorageUnavailable as exc:  # nothing half-done: the next run takes it up
            telemetry.job_ran(job.name, "failed", time.perf_counter() - started)
            log.warning("scheduled job waits for the database", job=job.name.value,
                        reason=exc.reason)  # fmt: skip
            return min(job.every, RETRY_AFTER)
        except Exception as exc:  # noqa: BLE001 - the scheduler outlives a failed run
            telemetry.job_ran(job.name, "failed", time.perf_counter() - started)
            # The class only: a driver's message can quote statement parameters.
            log.error("scheduled job failed", job=job.name.value, error=type(exc).__name__)  # noqa: TRY400
            return min(job.every, RETRY_AFTER)
        seconds = time.perf_counter() - started
        telemetry.job_ran(job.name, "ok", seconds)
        if job.recorded:
            log.info("scheduled job ran", job=job.name.value, seconds=round(seconds, 3))
        return max(0.0, job.every - seconds) if job.recorded else job.every


def start_scheduler(vault: Vault, schedule: Schedule) -> Scheduler:
    """A scheduler of ``vault``'s jobs as ``schedule`` enables them, started on the
    running event loop (the server's lifespan calls this, and ``stop`` at shutdown)."""
    scheduler = Scheduler(vault.db, vault_jobs(vault, schedule), leader_poll=schedule.leader_poll)
    scheduler.start()
    return scheduler
