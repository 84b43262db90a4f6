"""Job locks: one leader per job, a run lock that keeps a scheduled run and a command
apart, and the record of each run (``vault.scheduling``)."""

from __future__ import annotations

import stat

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import POSTGRES_URL
from vault.scheduling import JobBusy, JobLocks, command_run, last_runs
from vault.scheduling.locks import _key
from vault.storage.db import Database
from vault.storage.inuse import current_schema, sqlite_path
from vault.types import JobName

RETENTION, REFRESH = JobName.RETENTION, JobName.SEGMENT_REFRESH


def test_one_holder_leads_a_job_and_another_takes_over_once_it_lets_go(
    database: Database,
) -> None:
    """The first to ask leads a job and keeps it; a second holder does not lead that job
    but may lead another; once the first closes (a process ending), the second leads."""
    first, second = JobLocks(database.engine), JobLocks(database.engine)
    try:
        assert (first.lead(RETENTION), second.lead(RETENTION)) == (True, False)
        assert (first.lead(RETENTION), second.lead(REFRESH)) == (True, True)
        assert (first.leads(), second.leads()) == (frozenset({RETENTION}), frozenset({REFRESH}))
        first.close()
        assert (second.lead(RETENTION), second.leads()) == (True, frozenset({RETENTION, REFRESH}))
    finally:
        first.close()
        second.close()


def test_resigning_hands_the_lead_over_at_once(database: Database) -> None:
    """A leader that resigns a job frees it for the next holder that asks."""
    first, second = JobLocks(database.engine), JobLocks(database.engine)
    try:
        assert first.lead(RETENTION) is True
        first.resign(RETENTION)
        assert (second.lead(RETENTION), first.lead(RETENTION)) == (True, False)
    finally:
        first.close()
        second.close()


def test_a_run_held_elsewhere_refuses_with_a_message_naming_the_job(database: Database) -> None:
    """While one holder runs a job, another's run of it raises JobBusy (code JOB_BUSY), whose
    message names the job and what to do; leading the job does not block a run of it (a
    command beside the leader), and once the run ends the other may run it."""
    leader, command = JobLocks(database.engine), JobLocks(database.engine)
    try:
        assert leader.lead(RETENTION) is True
        with (
            command.running(RETENTION),
            pytest.raises(JobBusy) as caught,
            leader.running(RETENTION),
        ):
            pytest.fail("two runs of one job at once")
        assert (caught.value.code, str(caught.value)) == (
            "JOB_BUSY",
            "retention is running in another process (a server's scheduler or another cvault "
            "command); run it again once that run has finished",
        )
        with leader.running(RETENTION):
            entered = True
        assert entered is True
    finally:
        leader.close()
        command.close()


def test_command_runs_are_recorded_with_their_outcome(database: Database) -> None:
    """A command's run writes the job's row: outcome, who ran it, how many runs; a run that
    raises is recorded as failed and the error goes on."""
    with command_run(database, RETENTION):
        pass
    first = last_runs(database)[RETENTION]
    with pytest.raises(RuntimeError), command_run(database, RETENTION):
        raise RuntimeError("the run failed")
    second = last_runs(database)[RETENTION]
    assert (first.outcome, first.runs, first.runner.startswith("command ")) == ("ok", 1, True)
    assert (second.outcome, second.runs, second.finished_at is not None) == ("failed", 2, True)
    assert first.finished_at is not None
    assert second.started_at >= first.started_at


def test_sqlite_lock_files_sit_beside_the_database_readable_by_the_owner_only(
    database: Database,
) -> None:
    """On SQLite the locks are files in ``<db>.jobs/`` (0700), each 0600; on PostgreSQL no
    file is made."""
    locks = JobLocks(database.engine)
    try:
        locks.lead(RETENTION)
        with locks.running(RETENTION):
            path = sqlite_path(database.engine)
            if path is None:
                assert database.dialect == "postgresql"
                return
            folder = path.with_name(path.name + ".jobs")
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}
            assert (stat.S_IMODE(folder.stat().st_mode), modes) == (
                0o700,
                {"retention.lead": 0o600, "retention.run": 0o600},
            )
    finally:
        locks.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_leader_whose_connection_dies_loses_the_lead_and_another_takes_it(
    database: Database,
) -> None:
    """PostgreSQL: when the leader's lock connection dies (its backend terminated, as when
    the process is killed or the network cut), the session lock is gone: another holder
    takes the lead, and the old leader, at its next check, knows it no longer leads."""
    old, new = JobLocks(database.engine, verify_every=0), JobLocks(database.engine)
    admin = create_engine(POSTGRES_URL)
    try:
        assert old.lead(RETENTION) is True
        with database.engine.connect() as conn:
            name = str(conn.scalar(text("SELECT current_database()")))
        key = _key(name, current_schema(database.engine), RETENTION, "lead") & 0xFFFFFFFFFFFFFFFF
        with admin.begin() as conn:
            pids = conn.scalars(
                text(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND classid = :hi AND objid = :lo AND objsubid = 1"
                ),
                {"hi": key >> 32, "lo": key & 0xFFFFFFFF},
            ).all()
            assert len(pids) == 1
            conn.execute(text("SELECT pg_terminate_backend(:p, 10000)"), {"p": pids[0]})
        assert new.lead(RETENTION) is True
        assert (old.lead(RETENTION), old.leads()) == (False, frozenset())
    finally:
        old.close()
        new.close()
        admin.dispose()
