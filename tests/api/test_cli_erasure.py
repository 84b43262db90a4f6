"""``cvault erasure purge`` and ``cvault erasure reapply`` on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner

from api.cli import app
from tests.api.test_cli import cli_env
from tests.conftest import CTX
from vault.config import Settings
from vault.customers import CustomerInput
from vault.interactions import InteractionInput
from vault.runtime import Vault
from vault.storage.models import CustomerRow, InteractionRow


def _customer(vault: Vault, visits: int) -> uuid.UUID:
    with vault.unit(CTX) as s:
        cid = vault.customers.create(s, CustomerInput(first_name="Roya")).id
        vault.interactions.record_many(
            s,
            [InteractionInput(customer_id=cid, channel="web", type="page_view",
                              occurred_at=datetime(2026, 5, 1, tzinfo=UTC))] * visits,
        )  # fmt: skip
    return cid


def _state(vault: Vault, cid: uuid.UUID) -> tuple[str, int]:
    with vault.db.transaction() as s:
        status = s.scalar(select(CustomerRow.status).where(CustomerRow.id == cid))
        left = s.scalar(
            select(func.count())
            .select_from(InteractionRow)
            .where(InteractionRow.customer_id == cid)
        )
    return str(status), int(left or 0)


def test_purge_finishes_what_an_erasure_left(
    tmp_path: Path, database_url: tuple[str, str | None]
) -> None:
    """An erasure whose purge never ran still has interactions; `erasure purge` deletes
    them and says how many."""
    env = cli_env(tmp_path, database_url)
    runner = CliRunner()
    assert runner.invoke(app, ["init"], env=env).exit_code == 0
    vault = Vault.open(Settings.from_env(env))
    try:
        cid = _customer(vault, 3)
        with vault.unit(CTX) as s:
            vault.erasure.erase(s, cid)  # no purge scheduled: as if the process died
        assert _state(vault, cid) == ("erased", 3)
        result = runner.invoke(app, ["erasure", "purge"], env=env)
        assert result.exit_code == 0, result.output
        assert "3 interactions of erased customers deleted" in result.output
        assert _state(vault, cid) == ("erased", 0)
    finally:
        vault.close()


def test_reapply_erases_again_what_a_restored_backup_brought_back(
    tmp_path: Path, database_url: tuple[str, str | None]
) -> None:
    """A customer live in the database but on the keyring's shred list (a backup restored
    from before its erasure) is erased again and purged; others are left alone."""
    env = cli_env(tmp_path, database_url)
    runner = CliRunner()
    assert runner.invoke(app, ["init"], env=env).exit_code == 0
    vault = Vault.open(Settings.from_env(env))
    try:
        back, other = _customer(vault, 2), _customer(vault, 1)
        vault.keyring.shred(back)
        result = runner.invoke(app, ["erasure", "reapply"], env=env, terminal_width=200)
        assert result.exit_code == 0, result.output
        assert f"erased again: {back}" in result.output
        assert "1 customers erased again, 2 interactions purged" in result.output
        assert (_state(vault, back), _state(vault, other)) == (("erased", 0), ("active", 1))
    finally:
        vault.close()
