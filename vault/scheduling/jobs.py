"""The jobs a server runs on a schedule, and how often.

==================  ==================================================  ============  ========
job                 what one run does                                   default       recorded
==================  ==================================================  ============  ========
audit_sequencer     order and sign pending audit entries                every 0.5 s   no
webhook_delivery    fan segment events out, send what is due            every 2 s     no
segment_refresh     recompute every segment's membership (outbox)       hourly        yes
metrics_rollup      rebuild the per-customer metrics rollup             hourly        yes
retention           delete what has outlived its retention period       daily         yes
anomaly_scan        access anomaly alerts over the new audit entries    every minute  yes
==================  ==================================================  ============  ========

Each runs its domain service as a system actor and is audited as the matching command
is (``segment.refresh``, ``retention.run``, ``webhook.delivery``; the anomaly scan writes
a ``security.alert`` entry per alert it raises). A recorded job takes
its run lock and writes its start and end to ``job_runs``: the ``cvault`` command that
runs it by hand does the same, so the two never overlap, and a new leader knows when
the job is next due. The audit sequencer and webhook delivery run too often to record;
they were safe to run in many processes at once already (the sequencer's own database
lock, claimed deliveries), so a command beside them needs no lock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from vault.authorization.context import AccessContext
from vault.config import Settings
from vault.runtime import Vault
from vault.types import JobName

__all__ = ["RECORDED", "Job", "Schedule", "vault_jobs"]

# Jobs whose runs take the run lock and are recorded in job_runs.
RECORDED = frozenset(
    {JobName.SEGMENT_REFRESH, JobName.METRICS_ROLLUP, JobName.RETENTION, JobName.ANOMALY_SCAN}
)


@dataclass(frozen=True, slots=True)
class Schedule:
    """Seconds between runs of each job (a job not named, or None, does not run), and
    how often a follower tries to take the lead."""

    every: Mapping[JobName, float | None] = field(default_factory=dict)
    leader_poll: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "every", MappingProxyType(dict(self.every)))

    @classmethod
    def of(cls, settings: Settings) -> Schedule:
        """Every job, as the settings say (``cvault serve``)."""
        return cls(
            every={
                JobName.AUDIT_SEQUENCER: settings.audit_sequence_every,
                JobName.WEBHOOK_DELIVERY: settings.webhook_delivery_every,
                JobName.SEGMENT_REFRESH: settings.segment_refresh_every,
                JobName.METRICS_ROLLUP: settings.metrics_rollup_every,
                JobName.RETENTION: settings.retention_every,
                JobName.ANOMALY_SCAN: settings.anomaly_scan_every,
            },
            leader_poll=settings.leader_poll,
        )

    @classmethod
    def default(cls, sequence_every: float | None, webhook_every: float | None) -> Schedule:
        """The audit sequencer and webhook delivery only (an app a test builds)."""
        return cls(
            every={
                JobName.AUDIT_SEQUENCER: sequence_every,
                JobName.WEBHOOK_DELIVERY: webhook_every,
            }
        )

    def enabled(self) -> dict[JobName, float]:
        return {job: every for job, every in self.every.items() if every is not None}


@dataclass(frozen=True, slots=True)
class Job:
    """One scheduled job: its name, period and what a run does."""

    name: JobName
    every: float
    run: Callable[[], object] = field(repr=False)

    @property
    def recorded(self) -> bool:
        return self.name in RECORDED


def vault_jobs(vault: Vault, schedule: Schedule) -> list[Job]:
    """The jobs ``schedule`` enables, bound to ``vault``'s services."""
    runs: dict[JobName, Callable[[], object]] = {
        JobName.AUDIT_SEQUENCER: lambda: vault.audit.sequence(vault.db),
        JobName.WEBHOOK_DELIVERY: lambda: vault.dispatcher.run_once(vault.db),
        JobName.SEGMENT_REFRESH: lambda: _refresh_segments(vault),
        JobName.METRICS_ROLLUP: lambda: _rollup(vault),
        JobName.RETENTION: lambda: _retention(vault),
        JobName.ANOMALY_SCAN: lambda: vault.alerts.run(vault.db),
    }
    return [Job(job, every, runs[job]) for job, every in schedule.enabled().items()]


def _refresh_segments(vault: Vault) -> int:
    with vault.unit(AccessContext.system("segments")) as session:
        return len(vault.segments.refresh(session))


def _rollup(vault: Vault) -> int:
    with vault.unit(AccessContext.system("segments")) as session:
        return vault.segments.refresh_metrics(session)


def _retention(vault: Vault) -> int:
    report = vault.retention.run(vault.db, dry_run=False, now=vault.clock())
    return len(report.counts)
