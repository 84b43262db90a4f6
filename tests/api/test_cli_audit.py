"""`cvault audit` end to end: export on the vault's machine, verify with only the file and
the public key, tampering turns verify red; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from tests.api.test_cli import cli_env
from tests.conftest import CTX
from vault.config import Settings
from vault.customers import CustomerInput
from vault.runtime import Vault


@pytest.fixture
def exported(tmp_path: Path, database_url: tuple[str, str | None]) -> tuple[dict[str, str], Path]:
    env = cli_env(tmp_path, database_url)
    runner = CliRunner()
    assert runner.invoke(app, ["init"], env=env).exit_code == 0
    vault = Vault.open(Settings.from_env(env))
    for i in range(3):
        with vault.unit(CTX) as s:
            vault.customers.create(s, CustomerInput(first_name=f"C{i}"))
        vault.audit.sequence(vault.db)
    vault.close()
    key = tmp_path / "vault.vkey"
    result = runner.invoke(app, ["audit", "public-key"], env=env)
    assert result.exit_code == 0, result.output
    key.write_text(result.output.strip(), encoding="utf-8")
    return env, key


def test_export_then_verify_offline(exported: tuple[dict[str, str], Path], tmp_path: Path) -> None:
    """`cvault audit export -o trail.jsonl` then `cvault audit verify trail.jsonl --public-key`
    exits 0; verify runs with no database settings at all."""
    env, key = exported
    trail = tmp_path / "trail.jsonl"
    runner = CliRunner()
    result = runner.invoke(app, ["audit", "export", "-o", str(trail)], env=env)
    assert result.exit_code == 0, result.output
    offline = {"CVAULT_DATABASE_URL": "sqlite:////nonexistent/none.db"}
    verified = runner.invoke(
        app, ["audit", "verify", str(trail), "--public-key", str(key)], env=offline
    )
    assert (verified.exit_code, verified.output.startswith("OK: 3 entries")) == (0, True)


def test_csv_and_filtered_exports_verify(
    exported: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    """A CSV export (with its .meta.jsonl) and an export filtered by action both verify."""
    env, key = exported
    runner = CliRunner()
    csv_file = tmp_path / "trail.csv"
    jsonl = tmp_path / "creates.jsonl"
    assert (
        runner.invoke(
            app, ["audit", "export", "--format", "csv", "-o", str(csv_file)], env=env
        ).exit_code
        == 0
    )
    assert (
        runner.invoke(
            app, ["audit", "export", "--action", "customer.create", "-o", str(jsonl)], env=env
        ).exit_code
        == 0
    )
    for path in (csv_file, jsonl):
        result = runner.invoke(app, ["audit", "verify", str(path), "--public-key", str(key)])
        assert result.exit_code == 0, result.output
    assert (
        "(filtered)"
        in runner.invoke(app, ["audit", "verify", str(jsonl), "--public-key", str(key)]).output
    )


def test_an_edited_line_fails_with_the_entry_named(
    exported: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    """Changing one entry's actor in the file makes verify exit 1 naming its position."""
    env, key = exported
    trail = tmp_path / "trail.jsonl"
    runner = CliRunner()
    assert runner.invoke(app, ["audit", "export", "-o", str(trail)], env=env).exit_code == 0
    lines = trail.read_text(encoding="utf-8").splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if json.loads(line).get("position") == 1)
    actor = json.loads(lines[at])["entry"]["actor"]
    lines[at] = lines[at].replace(f'"actor":"{actor}"', '"actor":"someone-else"')
    trail.write_text("".join(lines), encoding="utf-8")
    result = runner.invoke(app, ["audit", "verify", str(trail), "--public-key", str(key)])
    assert result.exit_code == 1
    assert "position 1" in result.output


def test_bad_filter_is_a_usage_error(exported: tuple[dict[str, str], Path], tmp_path: Path) -> None:
    """A time without a zone or an unknown action exits 2 with a message."""
    env, _ = exported
    runner = CliRunner()
    for args in (["--since", "2026-01-01"], ["--action", "nope"]):
        result = runner.invoke(app, ["audit", "export", *args, "-o", str(tmp_path / "x")], env=env)
        assert result.exit_code == 2
        assert "bad filter" in result.output
