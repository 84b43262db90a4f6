"""``cvault attributes show | seal`` on SQLite and PostgreSQL, and a broken attribute file."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from api.cli import app
from tests.api.test_cli import cli_env
from tests.conftest import CTX
from vault.config import Settings
from vault.customers import CustomerInput
from vault.runtime import Vault
from vault.storage.models import CustomerRow

LOYALTY = "LN-7781-0042"


def _legacy(vault: Vault) -> uuid.UUID:
    """A customer whose clear attributes hold what was stored before declarations: an
    undeclared name and a name now declared PII."""
    with vault.unit(CTX) as s:
        cid = vault.customers.create(s, CustomerInput(attributes={"plan": "pro"})).id
    with vault.db.transaction() as s:
        row = s.get(CustomerRow, cid)
        assert row is not None
        row.attributes = {"plan": "pro", "old_crm_flag": True, "loyalty_number": LOYALTY}
    return cid


def test_show_lists_what_is_not_covered_and_seal_encrypts_clear_pii(
    tmp_path: Path, database_url: tuple[str, str | None]
) -> None:
    """`show` names the undeclared attribute and the PII one still in clear (names and
    counts, never a value); `seal` moves the PII value into its sealed form, after which
    the data subject's view still shows it and `show` no longer lists it."""
    env = cli_env(tmp_path, database_url)
    runner = CliRunner()
    assert runner.invoke(app, ["init"], env=env).exit_code == 0
    vault = Vault.open(Settings.from_env(env))
    try:
        cid = _legacy(vault)
        before = runner.invoke(app, ["attributes", "show"], env=env)
        assert before.exit_code == 0, before.output
        assert "old_crm_flag: 1 customers" in before.output
        assert "loyalty_number: 1 customers" in before.output
        assert LOYALTY not in before.output
        sealed = runner.invoke(app, ["attributes", "seal"], env=env)
        assert sealed.exit_code == 0, sealed.output
        assert "1 customers had PII attributes in clear; sealed" in sealed.output
        with vault.db.transaction() as s:
            row = s.scalar(select(CustomerRow).where(CustomerRow.id == cid))
            assert row is not None
            assert (row.attributes, sorted(row.sealed_attributes or {})) == (
                {"plan": "pro", "old_crm_flag": True},
                ["loyalty_number"],
            )
        with vault.unit(CTX) as s:
            assert vault.customers.get(s, cid).attributes["loyalty_number"] == LOYALTY
        after = runner.invoke(app, ["attributes", "show"], env=env)
        assert "loyalty_number: 1 customers" not in after.output
    finally:
        vault.close()


def test_a_broken_attribute_file_is_one_line_with_its_line_number(
    tmp_path: Path, database_url: tuple[str, str | None]
) -> None:
    """CVAULT_ATTRIBUTES_FILE naming a file with a bad type: the command exits 2 with one
    line naming the file and the line, no traceback."""
    bad = tmp_path / "attributes.toml"
    bad.write_text(
        '[[attribute]]\nname = "plan"\ntype = "text"\npii = false\ndescription = "x"\n',
        encoding="utf-8",
    )
    env = {**cli_env(tmp_path, database_url), "CVAULT_ATTRIBUTES_FILE": str(bad)}
    runner = CliRunner()
    assert runner.invoke(app, ["init"], env={**env, "CVAULT_ATTRIBUTES_FILE": ""}).exit_code == 0
    result = runner.invoke(app, ["attributes", "show"], env=env)
    assert result.exit_code == 2
    assert f"{bad}:3: attribute 'plan': type must be one of" in result.output
    assert "Traceback" not in result.output
