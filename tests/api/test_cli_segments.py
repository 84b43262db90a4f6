"""``cvault segments refresh [ID]`` and ``cvault segments metrics`` on SQLite and
PostgreSQL: a table of counts, outbox rows written, exit codes for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from api.cli import app
from tests.api.test_cli import cli_env
from tests.conftest import CTX
from vault.config import Settings
from vault.customers import CustomerInput
from vault.runtime import Vault
from vault.storage.models import SegmentOutboxRow


@pytest.fixture
def env(tmp_path: Path, database_url: tuple[str, str | None]) -> dict[str, str]:
    """An initialised vault with two gold customers and a segment of gold customers."""
    environment = cli_env(tmp_path, database_url)
    assert CliRunner().invoke(app, ["init"], env=environment).exit_code == 0
    vault = Vault.open(Settings.from_env(environment))
    with vault.unit(CTX) as s:
        for _ in range(2):
            vault.customers.create(s, CustomerInput(first_name="Ada", tier="gold"))
        segment = vault.segments.create(
            s, name="gold", definition={"attribute": {"field": "tier", "op": "eq", "value": "gold"}}
        )
    vault.close()
    environment["SEGMENT_ID"] = str(segment.id)
    return environment


def _outbox(env: dict[str, str]) -> int:
    vault = Vault.open(Settings.from_env(env))
    try:
        with vault.unit(CTX) as s:
            return int(s.scalar(select(func.count()).select_from(SegmentOutboxRow)) or 0)
    finally:
        vault.close()


def test_refresh_all_prints_counts_and_fills_the_outbox(env: dict[str, str]) -> None:
    """Both customers enter: the table says 2 members, 2 entered; two outbox rows."""
    result = CliRunner().invoke(app, ["segments", "refresh"], env=env)
    assert result.exit_code == 0, result.output
    assert env["SEGMENT_ID"] in result.output
    assert "1 segment(s) refreshed" in result.output
    assert _outbox(env) == 2
    again = CliRunner().invoke(app, ["segments", "refresh", env["SEGMENT_ID"]], env=env)
    assert again.exit_code == 0, again.output
    assert _outbox(env) == 2  # nothing changed, nothing written


def test_refresh_refuses_a_malformed_or_unknown_id(env: dict[str, str]) -> None:
    """A malformed id is a usage error (2); an unknown one is refused (1)."""
    bad = CliRunner().invoke(app, ["segments", "refresh", "nope"], env=env)
    assert bad.exit_code == 2
    unknown = "00000000-0000-4000-8000-000000000000"
    missing = CliRunner().invoke(app, ["segments", "refresh", unknown], env=env)
    assert missing.exit_code == 1
    assert f"segment {unknown} not found" in missing.output


def test_metrics_rebuilds_the_rollup(env: dict[str, str]) -> None:
    """`segments metrics` computes a row per active customer."""
    result = CliRunner().invoke(app, ["segments", "metrics"], env=env)
    assert result.exit_code == 0, result.output
    assert "metrics computed for 2 active customers" in result.output
