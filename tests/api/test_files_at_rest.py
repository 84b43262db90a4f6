"""Files the vault writes are its owner's only (0600), whatever the umask: the SQLite
database and its -wal/-shm companions, audit exports (JSONL, CSV and its .meta.jsonl).

Every test runs under umask 000, the worst case: a file created with the default mode
would be readable (and writable) by everyone."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from api.cli import app
from tests.api.test_cli import cli_env
from tests.conftest import CTX
from vault.config import Settings
from vault.customers import CustomerInput
from vault.runtime import Vault
from vault.storage.db import make_engine


@pytest.fixture(autouse=True)
def open_umask() -> Iterator[None]:
    """umask 000 for the test: only an explicit mode keeps a file private."""
    before = os.umask(0)
    try:
        yield
    finally:
        os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_sqlite_database_wal_and_shm_are_created_0600(tmp_path: Path) -> None:
    """A new SQLite vault file, its write-ahead log and its shared-memory index are 0600
    (read while a writer holds them open, as in service), its new folder 0700."""
    db = tmp_path / "new" / "vault.db"
    engine = make_engine(f"sqlite:///{db}")
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x TEXT)"))
            conn.execute(text("INSERT INTO t VALUES ('written')"))
        with engine.connect() as conn:
            conn.execute(text("SELECT x FROM t")).all()
            files = {p.name: mode(p) for p in db.parent.iterdir()}
    finally:
        engine.dispose()
    expected = {"vault.db": 0o600, "vault.db-wal": 0o600, "vault.db-shm": 0o600}
    assert (files, mode(db.parent)) == (expected, 0o700)


def test_a_world_readable_sqlite_file_is_narrowed_before_use(tmp_path: Path) -> None:
    """A database (and -wal) left 0644 by an older version is 0600 once an engine opens it."""
    db = tmp_path / "vault.db"
    for each in (db, tmp_path / "vault.db-wal"):
        each.touch(mode=0o644)
    make_engine(f"sqlite:///{db}").dispose()
    assert (mode(db), mode(tmp_path / "vault.db-wal")) == (0o600, 0o600)


def test_init_and_audit_exports_are_0600(
    tmp_path: Path, database_url: tuple[str, str | None]
) -> None:
    """`cvault init` makes vault.db 0600 (SQLite); `cvault audit export` writes a JSONL
    export, a CSV export and its .meta.jsonl 0600, narrowing a file that was 0644."""
    env = cli_env(tmp_path, database_url)
    runner = CliRunner()
    assert runner.invoke(app, ["init"], env=env).exit_code == 0
    vault = Vault.open(Settings.from_env(env))
    with vault.unit(CTX) as s:
        vault.customers.create(s, CustomerInput(first_name="Ada"))
    vault.audit.sequence(vault.db)
    vault.close()
    stale = tmp_path / "stale.jsonl"
    stale.touch(mode=0o644)
    runs = [
        ["-o", str(tmp_path / "trail.jsonl")],
        ["--format", "csv", "-o", str(tmp_path / "trail.csv")],
        ["-o", str(stale)],
    ]
    for options in runs:
        result = runner.invoke(app, ["audit", "export", *options], env=env)
        assert result.exit_code == 0, result.output
    files = [tmp_path / n for n in ("trail.jsonl", "trail.csv", "trail.csv.meta.jsonl")]
    files.append(stale)
    if database_url[1] is None:  # SQLite: the database file was created by init
        files.append(Path(make_url(database_url[0]).database or ""))
    actual = {path.name: mode(path) for path in files}
    assert actual == dict.fromkeys(actual, 0o600)
