"""Disk trouble under a SQLite vault: its folder on a small tmpfs mount that is made
read-only, or filled up. The CLI prints one line and exits 3, GraphQL answers 503
SERVICE_UNAVAILABLE (never INTERNAL), nothing is half-written, and once the trouble is
gone the data from before is intact and the same work succeeds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from policies import Role
from tests.conftest import CTX
from tests.processes import run_cli, token, unavailable, vault_env
from tests.reliability.test_crashes import scalar_rows, write_customers
from vault.config import Settings
from vault.customers import CustomerInput
from vault.runtime import Vault

pytestmark = pytest.mark.processes

CREATE = 'mutation { createCustomer(input: {firstName: "Lin"}) { id } }'


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs mounted on a folder of the test (needs root, or CAP_SYS_ADMIN)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    if shutil.which("mount") is None:
        unavailable("cannot mount a tmpfs: no mount command")
    command = ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(folder)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        unavailable(f"cannot mount a tmpfs (root or CAP_SYS_ADMIN needed): {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


def remount(folder: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(folder)], check=True)


def a_vault_with_customers(env: Mapping[str, str], count: int) -> str:
    """Initialise the vault and store ``count`` customers; an ingest token (its signing
    key is made now, before any disk trouble)."""
    run_cli(env, "init")
    vault = Vault.open(Settings.from_env(env))
    with vault.unit(CTX) as session:
        for i in range(count):
            vault.customers.create(session, CustomerInput(first_name=f"Before{i}"))
    vault.close()
    return token(env, Role.INGEST_SERVICE)


def names(env: Mapping[str, str]) -> list[str]:
    """Every stored customer's first name, decrypted."""
    ids = [uuid.UUID(str(i)) for i in scalar_rows(env, "SELECT id FROM customers")]
    vault = Vault.open(Settings.from_env(env))
    try:
        with vault.unit(CTX) as session:
            return sorted(c.first_name or "" for c in vault.customers.get_many(session, ids))
    finally:
        vault.close()


def during_trouble(
    env: Mapping[str, str], ingest: str, source: Path, start: Callable[[], None]
) -> tuple[subprocess.CompletedProcess[str], int, Any]:
    """With a vault application already serving, ``start`` the disk trouble; then
    `cvault import customers SOURCE` (expected to exit 3) and createCustomer."""
    vault = Vault.open(Settings.from_env(env))
    app = create_app(vault, webhook_every=None, sequence_every=3600, policy_every=3600)
    with TestClient(app) as client:
        vault.db.engine.dispose()  # no file held open: a busy mount cannot turn read-only
        start()
        refused = run_cli(env, "import", "customers", str(source), expect=3)
        answer = client.post(
            "/graphql",
            json={"query": CREATE},
            headers={"Authorization": f"Bearer {ingest}", "X-Purpose": "service_delivery"},
        )
    return refused, answer.status_code, answer.json()


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    return lines[0]


def test_a_read_only_location_is_a_clear_error_and_nothing_is_written(
    small_disk: Path, tmp_path: Path
) -> None:
    """The vault's folder turns read-only: `cvault import` exits 3 with one line naming
    read-only storage, createCustomer answers 503 SERVICE_UNAVAILABLE; remounted
    writable, the five customers from before are there, unchanged, and nothing else."""
    env = vault_env(small_disk, (f"sqlite:///{small_disk / 'vault.db'}", None))
    ingest = a_vault_with_customers(env, 5)
    source = tmp_path / "more.csv"
    write_customers(source, 20)

    try:
        refused, status, body = during_trouble(
            env, ingest, source, lambda: remount(small_disk, "ro")
        )
    finally:
        remount(small_disk, "rw")

    line = one_line_error(refused)
    assert line.startswith("error: the database is unavailable (")
    assert "read-only" in line or "cannot open" in line
    assert (status, body["errors"][0]["extensions"]["code"], "data" in body) == (
        503,
        "SERVICE_UNAVAILABLE",
        False,
    )
    assert names(env) == sorted(f"Before{i}" for i in range(5))


def test_a_full_disk_is_a_clear_error_and_the_data_before_it_stays_readable(
    small_disk: Path, tmp_path: Path
) -> None:
    """The vault's disk fills up: an import of 300 customers exits 3 with one line
    naming the full disk and stores none of its batch, createCustomer answers 503
    SERVICE_UNAVAILABLE; with the space freed, the customers from before read as they
    were and the same import stores all 300."""
    env = vault_env(small_disk, (f"sqlite:///{small_disk / 'vault.db'}", None))
    ingest = a_vault_with_customers(env, 5)
    source = tmp_path / "more.csv"
    write_customers(source, 300)
    filler = small_disk / "filler"

    def fill() -> None:
        stats = os.statvfs(small_disk)
        filler.write_bytes(b"\0" * max(0, stats.f_bavail * stats.f_frsize - 16 * 1024))

    try:
        refused, status, body = during_trouble(env, ingest, source, fill)
    finally:
        filler.unlink(missing_ok=True)

    line = one_line_error(refused)
    assert line.startswith("error: the database is unavailable (disk full) after 0 rows")
    assert (status, body["errors"][0]["extensions"]["code"], "data" in body) == (
        503,
        "SERVICE_UNAVAILABLE",
        False,
    )
    assert names(env) == sorted(f"Before{i}" for i in range(5))
    assert scalar_rows(env, "SELECT count(*) FROM customers") == [5]
    again = run_cli(env, "import", "customers", str(source))
    assert "300 rows read, 300 accepted, 0 already present, 0 rejected" in again.stdout
