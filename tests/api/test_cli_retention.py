"""``cvault retention run [--dry-run]`` and ``cvault retention show`` on SQLite and
PostgreSQL: tables of counts, exit codes, the policy file, the audit entry."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from api.cli import app
from tests.api.test_cli import cli_env
from tests.conftest import CTX
from vault.config import Settings
from vault.customers import CustomerInput
from vault.interactions import InteractionInput
from vault.runtime import Vault
from vault.storage.models import AuditEntryRow, InteractionRow

SECRET = "please call me back on +31 6 1234 5678"


@pytest.fixture
def env(tmp_path: Path, database_url: tuple[str, str | None]) -> dict[str, str]:
    """An initialised vault with one customer: a page view 400 days old (past the built-in
    395 days), one 10 days old, and a chat message 400 days old with a payload (past the
    built-in 365 days for payloads, within 730 for chat)."""
    environment = cli_env(tmp_path, database_url)
    assert CliRunner().invoke(app, ["init"], env=environment).exit_code == 0
    vault = Vault.open(Settings.from_env(environment))
    now = datetime.now(UTC)
    with vault.unit(CTX) as s:
        cid = vault.customers.create(s, CustomerInput(first_name="Anneliese")).id
        vault.interactions.record_many(
            s,
            [
                InteractionInput(customer_id=cid, channel="web", type="page_view", occurred_at=when)
                for when in (now - timedelta(days=400), now - timedelta(days=10))
            ]
            + [
                InteractionInput(
                    customer_id=cid,
                    channel="chat",
                    type="chat_message",
                    occurred_at=now - timedelta(days=400),
                    payload={"text": SECRET},
                )
            ],
        )
    vault.close()
    return environment


def _state(env: dict[str, str]) -> tuple[int, int, list[str]]:
    """(interactions, payloads left, the retention.run audit entries as canonical JSON)."""
    vault = Vault.open(Settings.from_env(env))
    try:
        with vault.db.transaction() as s:
            rows = int(s.scalar(select(func.count()).select_from(InteractionRow)) or 0)
            payloads = int(
                s.scalar(
                    select(func.count())
                    .select_from(InteractionRow)
                    .where(InteractionRow.payload_ct.is_not(None))
                )
                or 0
            )
            entries = list(
                s.scalars(
                    select(AuditEntryRow.canonical).where(AuditEntryRow.action == "retention.run")
                )
            )
    finally:
        vault.close()
    return rows, payloads, [e.decode("utf-8") for e in entries]


def _events(stderr: str) -> list[str]:
    """The events of the JSON log lines on stderr (nothing else may be there)."""
    return [json.loads(line)["event"] for line in stderr.splitlines()]


def _row(output: str, subject: str) -> list[str]:
    """The cells of a table row, by its first cell."""
    for line in output.splitlines():
        cells = re.findall(r"[\w.-]+", line)
        if cells and cells[0] == subject:
            return cells
    raise AssertionError(f"no row {subject!r} in output")


def test_dry_run_prints_counts_and_changes_nothing_then_run_deletes(
    env: dict[str, str],
) -> None:
    """`retention run --dry-run` prints what would go (one page view, one payload) and
    leaves the data as it was; `retention run` then deletes and drops exactly that; both
    exit 0 and each writes one retention.run audit entry (dry_run true, then false)."""
    runner = CliRunner()
    dry = runner.invoke(app, ["retention", "run", "--dry-run"], env=env)
    assert (dry.exit_code, _events(dry.stderr)) == (0, ["retention.run"])
    assert "would delete" in dry.stdout
    assert _row(dry.stdout, "page_view") == ["page_view", "395", "1", "0", "0"]
    assert _row(dry.stdout, "interaction_payload") == ["interaction_payload", "365", "1", "0", "0"]
    assert _row(dry.stdout, "tombstones") == ["tombstones", "forever", "0", "0", "0"]
    assert "dry run, nothing changed: would delete 1 rows, drop 1 payloads" in dry.stdout
    assert _state(env)[:2] == (3, 1)
    real = runner.invoke(app, ["retention", "run"], env=env)
    assert (real.exit_code, _events(real.stderr)) == (0, ["retention.run"])
    assert _row(real.stdout, "page_view") == ["page_view", "395", "1", "0", "0"]
    assert "deleted 1 rows, dropped 1 payloads" in real.stdout
    rows, payloads, entries = _state(env)
    assert (rows, payloads, len(entries)) == (2, 0, 2)
    assert ['"dry_run":true' in e for e in entries] == [True, False]
    assert all('"deleted.page_view":1' in e for e in entries)
    assert all(SECRET not in e and "Anneliese" not in e for e in entries)


def test_a_bad_retention_file_names_the_key_and_exits_2(
    env: dict[str, str], tmp_path: Path
) -> None:
    """A policy file with an unknown interaction type stops `retention run` and `retention
    show` with exit 2 and a message naming the key and its line; nothing is deleted."""
    bad = tmp_path / "bad.toml"
    bad.write_text(
        "[interactions]\ndefault = 30\npage_vew = 5\n[categories]\n"
        "interaction_payload = 1\ndsr_requests = 1\ntombstones = 0\n",
        encoding="utf-8",
    )
    bad_env = {**env, "CVAULT_RETENTION_FILE": str(bad)}
    runner = CliRunner()
    for command in (["retention", "run"], ["retention", "show"]):
        result = runner.invoke(app, command, env=bad_env)
        assert result.exit_code == 2
        assert result.stderr.startswith("error: ")
        assert f"{bad}:3: retention key 'interactions.page_vew' is not an interaction type" in (
            result.stderr
        )
    assert _state(env) == (3, 1, [])


def test_show_prints_the_policy_in_force(env: dict[str, str], tmp_path: Path) -> None:
    """`retention show` prints the built-in policy until a retention.toml sits in the
    data directory, then that file's periods (types it does not name take its default)."""
    runner = CliRunner()
    built_in = runner.invoke(app, ["retention", "show"], env=env)
    assert built_in.exit_code == 0
    assert "policy: built-in" in built_in.stdout
    assert _row(built_in.stdout, "purchase") == ["purchase", "3650", "interactions"]
    assert _row(built_in.stdout, "call") == ["call", "1095", "interactions.default"]
    local = tmp_path / "data" / "retention.toml"
    local.write_text(
        "[interactions]\ndefault = 0\npage_view = 7\n[categories]\n"
        "interaction_payload = 0\ndsr_requests = 30\ntombstones = 3650\n",
        encoding="utf-8",
    )
    mine = runner.invoke(app, ["retention", "show"], env=env)
    assert mine.exit_code == 0
    assert f"policy: {local}" in mine.stdout
    assert _row(mine.stdout, "page_view") == ["page_view", "7", "interactions"]
    assert _row(mine.stdout, "call") == ["call", "forever", "interactions.default"]
    assert _row(mine.stdout, "tombstones") == ["tombstones", "3650", "categories"]
    run = runner.invoke(app, ["retention", "run"], env=env)
    assert (run.exit_code, _row(run.stdout, "page_view")[:3]) == (0, ["page_view", "7", "2"])
