"""Copying the database out and back: SQLite through its online backup API, PostgreSQL
through ``pg_dump`` (custom format, one schema) and ``pg_restore``.

The PostgreSQL tools get the connection from the engine's URL through ``PG*``
environment variables (a password never shows in a process list); a tool's own message
is passed on without the statements it may quote. Every file written is 0600.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from vault.backup.manifest import BackupRefused
from vault.storage.inuse import current_schema, sqlite_path

__all__ = [
    "PG_FILE",
    "SQLITE_FILE",
    "dump_postgres",
    "dump_sqlite",
    "restore_postgres",
    "restore_sqlite",
    "tables_in",
]

SQLITE_FILE = "vault.db"
PG_FILE = "vault.pgdump"
_PAGES_PER_STEP = 1024


def _private_file(path: Path) -> None:
    """Create an empty file only the owner may read (or make an existing one so)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    os.close(fd)
    path.chmod(0o600)


def tables_in(engine: Engine) -> int:
    """How many tables the vault's database (PostgreSQL: its schema) holds."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            found = conn.scalar(
                text(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%'"
                )
            )
        else:
            found = conn.scalar(
                text("SELECT count(*) FROM pg_tables WHERE schemaname = :s"),
                {"s": current_schema(engine)},
            )
    return int(found or 0)


# -- SQLite ------------------------------------------------------------------------


def _sqlite_file(engine: Engine) -> Path:
    path = sqlite_path(engine)
    if path is None:
        raise BackupRefused("an in-memory SQLite database cannot be backed up")
    return path


def dump_sqlite(engine: Engine, folder: Path) -> Path:
    """A consistent copy of the live database (writers may go on meanwhile), made
    self-contained (rollback journal, no WAL beside it)."""
    source = _sqlite_file(engine)
    if not source.is_file():
        raise BackupRefused(f"database {source} does not exist")
    target = folder / SQLITE_FILE
    _private_file(target)
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst, pages=_PAGES_PER_STEP)
        dst.execute("PRAGMA journal_mode=DELETE")
    src.close()
    dst.close()
    return target


def restore_sqlite(engine: Engine, dump: Path) -> None:
    """Copy the backup over the vault's database through the backup API (the target's
    WAL is taken care of by SQLite); the file stays 0600."""
    target = _sqlite_file(engine)
    engine.dispose()  # no pooled connection of ours may hold the old content
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not target.exists():
        _private_file(target)
    with sqlite3.connect(dump) as src, sqlite3.connect(target) as dst:
        dst.execute("PRAGMA journal_mode=WAL")
        src.backup(dst, pages=_PAGES_PER_STEP)
    src.close()
    dst.close()
    for path in (target, target.with_name(target.name + "-wal")):
        if path.exists():
            path.chmod(0o600)


# -- PostgreSQL --------------------------------------------------------------------


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupRefused(f"{name} is not installed (the PostgreSQL client tools, 15 or newer)")
    return found


def _pg_env(engine: Engine) -> dict[str, str]:
    url = make_url(engine.url)
    env = {**os.environ, "PGHOST": url.host or "127.0.0.1", "PGPORT": str(url.port or 5432)}
    if url.username:
        env["PGUSER"] = url.username
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    if url.database:
        env["PGDATABASE"] = url.database
    env.pop("PGOPTIONS", None)
    return env


def _run(args: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        # The first line only: later ones can quote statements (and their values).
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        reason = lines[0] if lines else f"exit status {done.returncode}"
        raise BackupRefused(f"{what} failed: {reason}")


def dump_postgres(engine: Engine, folder: Path) -> tuple[Path, str]:
    """``pg_dump --format=custom`` of the vault's schema; returns the file and schema."""
    schema = current_schema(engine)
    target = folder / PG_FILE
    _private_file(target)
    args = [_tool("pg_dump"), "--format=custom", f"--schema={schema}", f"--file={target}"]
    _run(args, _pg_env(engine), "pg_dump")
    target.chmod(0o600)
    return target, schema


def restore_postgres(engine: Engine, dump: Path, dumped_schema: str) -> None:
    """Replace the vault's schema with the dumped one: drop it, ``pg_restore`` the dump
    (which creates the dumped schema), and rename that to the vault's schema when the
    names differ. The caller has checked that the vault is not in use and may be
    replaced."""
    schema = current_schema(engine)
    with engine.begin() as conn:
        exists = conn.scalar(
            text("SELECT count(*) FROM pg_namespace WHERE nspname = :s"), {"s": dumped_schema}
        )
        if schema != dumped_schema and exists:
            raise BackupRefused(
                f"the backup's schema {dumped_schema} exists in the target database; restore "
                "into that schema or into another database"
            )
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()
    args = [_tool("pg_restore"), "--exit-on-error", "--no-owner", "--no-acl",
            "--single-transaction", f"--dbname={_pg_env(engine).get('PGDATABASE', 'postgres')}",
            str(dump)]  # fmt: skip
    _run(args, _pg_env(engine), "pg_restore")
    if schema != dumped_schema:
        with engine.begin() as conn:
            conn.execute(text(f'ALTER SCHEMA "{dumped_schema}" RENAME TO "{schema}"'))
        engine.dispose()
