"""Where one run writes: a vault schema for our services, a plain schema for
PostGraphile (both made and dropped by :func:`schemas`), and the data dir."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from bench.common import PG_URL, admin_sql
from vault.config import Environment, Settings

LIBPQ_URL = PG_URL.replace("postgresql+psycopg://", "postgresql://", 1)


@dataclass(frozen=True)
class Target:
    """Where the run writes: the vault schema, the plain schema and the data dir."""

    vault_schema: str
    plain_schema: str
    data_dir: Path

    @property
    def database_url(self) -> str:
        return f"{PG_URL}?options={quote(f'-csearch_path={self.vault_schema}')}"

    def env(self) -> dict[str, str]:
        return {
            "CVAULT_DATA_DIR": str(self.data_dir),
            "CVAULT_DATABASE_URL": self.database_url,
            "CVAULT_ENV": Environment.PRODUCTION.value,
            # The peer runs any text: ours too (production's default is require).
            "CVAULT_TRUSTED_DOCUMENTS": "allow",
            "CVAULT_RATE_LIMIT_PER_MINUTE": str(10**7),
        }

    def settings(self) -> Settings:
        return Settings.from_env(self.env())


@contextmanager
def schemas() -> Iterator[tuple[str, str]]:
    """A vault schema and a plain schema, dropped on the way out."""
    tag = uuid.uuid4().hex[:10]
    vault_schema, plain_schema = f"gqlbench_{tag}", f"gqlbench_{tag}_plain"
    admin_sql([f'CREATE SCHEMA "{name}"' for name in (vault_schema, plain_schema)])
    try:
        yield vault_schema, plain_schema
    finally:
        admin_sql(
            [f'DROP SCHEMA IF EXISTS "{name}" CASCADE' for name in (vault_schema, plain_schema)]
        )
