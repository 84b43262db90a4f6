"""PostgreSQL around the vault's database, started by the test on loopback ports of its
own (never the machine's shared server): a PgBouncer in transaction pooling mode in
front of a throwaway cluster, and a streaming replica of one.

Both run as the cluster's user (``postgres`` when the tests run as root, as
:class:`tests.processes.PostgresCluster` does); both are stopped and their folders
removed afterwards. Missing binaries fail the test under CI=true (``unavailable``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.processes import PostgresCluster, free_port, postgres_cluster, unavailable, wait_for

__all__ = ["PgBouncer", "pgbouncer", "psql", "replicated_cluster"]


def psql(port: int, database: str, statement: str) -> str:
    """Run one statement with ``psql`` (the simple query protocol, which PgBouncer's admin
    console needs) on 127.0.0.1:``port``; its unaligned output."""
    done = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", database,
         "-AtX", "-v", "ON_ERROR_STOP=1", "-c", statement],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise AssertionError(f"psql on port {port} failed: {done.stderr.strip()}")
    return done.stdout.strip()


class PgBouncer:
    """Debian's ``pgbouncer`` in transaction pooling mode on its own port, in front of
    ``cluster``'s ``postgres`` database. Trust (``auth_type = any``), as the cluster."""

    def __init__(self, cluster: PostgresCluster, *, pool_size: int = 5) -> None:
        binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not Path(binary).exists():
            unavailable("pgbouncer not installed (apt-get install pgbouncer)")
        self.binary = binary
        self.cluster = cluster
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="cvault-pgbouncer-"))
        self.config = self.root / "pgbouncer.ini"
        self.pidfile = self.root / "pgbouncer.pid"
        self.logfile = self.root / "pgbouncer.log"
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self.config.write_text(
            "[databases]\n"
            f"postgres = host=127.0.0.1 port={cluster.port} dbname=postgres user=postgres\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            "auth_type = any\npool_mode = transaction\n"
            f"default_pool_size = {pool_size}\nmax_client_conn = 500\n"
            "ignore_startup_parameters = extra_float_digits\n"
            "admin_users = postgres\nstats_users = postgres\n"
            f"logfile = {self.logfile}\npidfile = {self.pidfile}\n"
        )
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(self.config, "postgres", "postgres")

    def start(self) -> PgBouncer:
        done = subprocess.run(
            [*self.cluster.run_as, self.binary, "-d", str(self.config)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            unavailable(f"pgbouncer did not start: {done.stderr.strip()} {self.log()[-2000:]}")
        wait_for(self._answers, f"pgbouncer on port {self.port}")
        return self

    def _answers(self) -> bool:
        try:
            return psql(self.port, "postgres", "SELECT 1") == "1"
        except AssertionError:
            return False

    def show(self, what: str) -> list[dict[str, str]]:
        """``SHOW what`` on the admin console: one dict per row."""
        done = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d",
             "pgbouncer", "-AX", "-F", "\t", "-c", f"SHOW {what}"],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        header, *rows = [line for line in done.stdout.splitlines() if "\t" in line]
        names = header.split("\t")
        return [dict(zip(names, row.split("\t"), strict=True)) for row in rows]

    def log(self) -> str:
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""

    def stop(self) -> None:
        with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
            os.kill(int(self.pidfile.read_text().strip()), 15)
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def pgbouncer() -> Iterator[tuple[PostgresCluster, PgBouncer]]:
    """A throwaway cluster and a transaction-pooling PgBouncer in front of it."""
    with postgres_cluster() as cluster:
        bouncer = PgBouncer(cluster)
        try:
            yield cluster, bouncer.start()
        finally:
            bouncer.stop()


@contextlib.contextmanager
def replicated_cluster() -> Iterator[tuple[PostgresCluster, PostgresCluster]]:
    """A primary (``wal_level=replica``) and a hot standby streaming from it, made with
    ``pg_basebackup -R`` into a temporary folder of its own and started on its own port.
    Yields once the standby is in recovery and streaming."""
    with postgres_cluster() as primary:
        standby = PostgresCluster()
        try:
            shutil.rmtree(standby.data, ignore_errors=True)
            done = primary.run(
                str(primary.bindir / "pg_basebackup"), "-h", "127.0.0.1",
                "-p", str(primary.port), "-U", "postgres", "-D", str(standby.data),
                "-R", "-X", "stream", "--no-sync",
            )  # fmt: skip
            if done.returncode != 0:
                unavailable(f"pg_basebackup failed: {done.stderr.strip()}")
            standby.start()
            wait_for(
                lambda: (
                    psql(primary.port, "postgres", "SELECT count(*) FROM pg_stat_replication")
                    == "1"
                ),
                "the standby to stream from the primary",
            )
            yield primary, standby
        finally:
            standby.remove()
