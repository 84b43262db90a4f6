"""The scheduler's table: when each recorded job last started and finished, where, and
how it ended. One row per job, updated in place by the process that runs it (under the
job's run lock, see ``vault.scheduling``); it holds no customer data."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from vault.storage.models.base import Base, UTCDateTime

__all__ = ["JobRunRow"]


class JobRunRow(Base):
    """The last run of one scheduled job (segment refresh, metrics rollup, retention):
    a new leader reads it to know when the job is due, so a restart or a change of
    leader neither skips a daily run nor repeats it."""

    __tablename__ = "job_runs"
    __table_args__ = (CheckConstraint("outcome IN ('running', 'ok', 'failed')", name="outcome"),)
    _repr_columns = ("job",)

    job: Mapped[str] = mapped_column(String(32), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(16))
    # Who ran it: "server" or "command", the host name and process id (no customer data).
    runner: Mapped[str] = mapped_column(String(160))
    runs: Mapped[int] = mapped_column(Integer)
