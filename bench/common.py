"""What the benchmarks share: where they run, how they open a vault, how they report.

A :class:`Target` is a fresh database (a SQLite file, or a PostgreSQL schema of its
own) with its own keyring; :func:`new_target` makes one and :func:`drop_target`
removes the PostgreSQL schema afterwards. :func:`admin_sql` runs schema statements
on the benchmark database, :func:`emit` prints one result as a JSON line, and
``CLK_TCK`` converts the CPU ticks of ``/proc/<pid>/stat`` to seconds.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, make_url, text

from vault.authorization.context import AccessContext
from vault.config import Environment, Settings
from vault.crypto import Keyring
from vault.crypto.signing import Ed25519Signer
from vault.runtime import Vault
from vault.storage.db import Database, make_engine
from vault.storage.models import Base

__all__ = [
    "BENCH",
    "CHANNELS",
    "CLK_TCK",
    "PG_URL",
    "Target",
    "admin_sql",
    "drop_target",
    "emit",
    "fork_map",
    "new_target",
    "open_vault",
    "settings_of",
]

PG_URL = os.environ.get(
    "CVAULT_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BENCH = AccessContext.system("bench")
CLK_TCK = os.sysconf("SC_CLK_TCK")
_T = TypeVar("_T")
_R = TypeVar("_R")


def fork_map(fn: Callable[[_T], _R], tasks: Sequence[_T]) -> list[_R]:
    """``fn`` over ``tasks`` on one forked process each. The pool is closed and joined
    when every result is in (``with Pool`` terminates it instead, which can hang when a
    worker waits on the task queue's lock), and terminated only on failure."""
    pool = mp.get_context("fork").Pool(len(tasks))
    try:
        results = pool.map(fn, tasks)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
    return results


def admin_sql(statements: Iterable[str]) -> None:
    """Schema statements (CREATE / DROP SCHEMA) in one transaction on ``PG_URL``."""
    admin = create_engine(PG_URL)
    try:
        with admin.begin() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        admin.dispose()


def emit(record: dict[str, Any]) -> None:
    """One result as a JSON line, flushed so a long run shows it as it comes."""
    print(json.dumps(record, default=str), flush=True)


_SIGNER = Ed25519Signer.generate("customer-vault/bench")
CHANNELS = [("web", "page_view"), ("email", "email_open"), ("email", "email_click"),
            ("web", "cart_add"), ("web", "purchase"), ("app", "app_open"),
            ("chat", "chat_message"), ("store", "store_visit")]  # fmt: skip


@dataclass(frozen=True)
class Target:
    backend: str
    url: str
    schema: str | None
    keyring_path: Path


def new_target(backend: str, workdir: Path, name: str) -> Target:
    """An empty database with every table, and a new keyring, for one benchmark run."""
    keyring_path = workdir / f"{backend}-keys" / "keyring.json"
    Keyring.create(keyring_path, population=1_000_000)
    if backend == "sqlite":
        target = Target(backend, f"sqlite:///{workdir / f'{name}.db'}", None, keyring_path)
    else:
        schema = f"bench_{name}_{uuid.uuid4().hex[:8]}"
        admin_sql([f'CREATE SCHEMA "{schema}"'])
        target = Target(backend, PG_URL, schema, keyring_path)
    engine = make_engine(target.url, schema=target.schema)
    Base.metadata.create_all(engine)
    engine.dispose()
    return target


def drop_target(t: Target) -> None:
    if t.schema is not None:
        admin_sql([f'DROP SCHEMA "{t.schema}" CASCADE'])


def settings_of(t: Target) -> Settings:
    return Settings(
        data_dir=t.keyring_path.parent,
        database_url=t.url,
        keyring_path=t.keyring_path,
        environment=Environment.TEST,
    )


def open_vault(t: Target) -> Vault:
    return Vault.open(
        settings_of(t),
        keyring=Keyring.open(t.keyring_path),
        signer=_SIGNER,
        database=Database(make_engine(t.url, schema=t.schema)),
    )


@contextmanager
def scratch_database(
    admin_url: str, database: str, *, reuse: bool, keep: bool
) -> Iterator[tuple[str, bool]]:
    """A PostgreSQL database of the bench's own beside ``admin_url``'s: (its URL, whether it
    was made fresh). ``reuse`` keeps one already there (its data loaded by an earlier
    run); ``keep`` leaves it in place afterwards, else it is dropped."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": database}
            )
            fresh = not (reuse and exists)
            if fresh:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{database}"'))
                conn.execute(text(f'CREATE DATABASE "{database}"'))
        url = make_url(admin_url).set(database=database).render_as_string(hide_password=False)
        try:
            yield url, fresh
        finally:
            if not keep:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{database}"'))
    finally:
        admin.dispose()
