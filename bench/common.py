"""What the ingest and erasure benchmarks share: where they run and how they open a vault.

A :class:`Target` is a fresh database (a SQLite file, or a PostgreSQL schema of its
own) with its own keyring; :func:`new_target` makes one and :func:`drop_target`
removes the PostgreSQL schema afterwards.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sqlalchemy import create_engine, text

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
    "PG_URL",
    "Target",
    "drop_target",
    "fork_map",
    "new_target",
    "open_vault",
    "settings_of",
]

PG_URL = os.environ.get(
    "CVAULT_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BENCH = AccessContext.system("bench")
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
        admin = create_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
        target = Target(backend, PG_URL, schema, keyring_path)
    engine = make_engine(target.url, schema=target.schema)
    Base.metadata.create_all(engine)
    engine.dispose()
    return target


def drop_target(t: Target) -> None:
    if t.schema is not None:
        admin = create_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{t.schema}" CASCADE'))
        admin.dispose()


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
