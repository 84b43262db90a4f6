"""Where the audit measures run: a fresh PostgreSQL schema with the vault's tables, the
keys of the run, and the two ways in (a Vault, a plain psycopg connection)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import make_url

from bench.common import PG_URL, admin_sql
from vault.config import Environment, Settings
from vault.crypto import Keyring
from vault.crypto.signing import load_signer
from vault.runtime import Vault
from vault.storage.db import Database, make_engine
from vault.storage.models import Base

PSYCOPG_URL = make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)
ORIGIN = "customer-vault/bench"


@dataclass(frozen=True)
class Target:
    schema: str
    keyring_path: Path
    signer_path: Path


def _settings(t: Target) -> Settings:
    return Settings(
        data_dir=t.keyring_path.parent,
        database_url=PG_URL,
        keyring_path=t.keyring_path,
        environment=Environment.TEST,
        audit_origin=ORIGIN,
    )


def open_vault(t: Target) -> Vault:
    return Vault.open(
        _settings(t),
        keyring=Keyring.open(t.keyring_path),
        signer=load_signer(t.signer_path),
        database=Database(make_engine(PG_URL, schema=t.schema)),
    )


def connect(schema: str, *, autocommit: bool = False) -> psycopg.Connection[Any]:
    return psycopg.connect(
        PSYCOPG_URL, options=f"-c jit=off -c search_path={schema}", autocommit=autocommit
    )


@contextmanager
def fresh_schema(workdir: Path, tag: str, schemas: list[str]) -> Iterator[Target]:
    """A fresh schema with the vault's tables (triggers included), dropped on the way out."""
    name = f"bench_audit_{tag}_{uuid.uuid4().hex[:8]}"
    try:
        admin_sql([f'CREATE SCHEMA "{name}"'])
        schemas.append(name)
        engine = make_engine(PG_URL, schema=name)
        Base.metadata.create_all(engine)
        engine.dispose()
        yield Target(name, workdir / "keys" / "keyring.json", workdir / "keys" / "signer.json")
    finally:
        drop_schema(name)
        if name in schemas:
            schemas.remove(name)


def drop_schema(name: str) -> None:
    admin_sql([f'DROP SCHEMA IF EXISTS "{name}" CASCADE'])
