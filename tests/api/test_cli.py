"""The operator's CLI against SQLite and PostgreSQL: init, migrate, keys."""

from __future__ import annotations

import stat
from pathlib import Path
from urllib.parse import quote

from typer.testing import CliRunner

from api.cli import app
from policies import default_policy_lines
from tests.conftest import CTX
from vault.config import Settings
from vault.customers import CustomerInput
from vault.runtime import Vault


def cli_env(tmp_path: Path, database_url: tuple[str, str | None]) -> dict[str, str]:
    """Environment for a CLI run on the test's database (a PostgreSQL schema via the URL)."""
    url, schema = database_url
    if schema is not None:
        url = f"{url}?options={quote(f'-csearch_path={schema}')}"
    return {"CVAULT_DATA_DIR": str(tmp_path / "data"), "CVAULT_DATABASE_URL": url}


def test_init_creates_private_keyring_and_schema(
    tmp_path: Path, database_url: tuple[str, str | None]
) -> None:
    """`cvault init` makes the data dir 0700, the keyring 0600 and migrates to head;
    a second run keeps the keyring and reports the schema as current."""
    env = cli_env(tmp_path, database_url)
    runner = CliRunner()
    first = runner.invoke(app, ["init"], env=env)
    assert first.exit_code == 0, first.output
    assert "(created)" in first.output
    keyring = tmp_path / "data" / "keys" / "keyring.json"
    assert stat.S_IMODE(keyring.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    before = keyring.read_bytes()
    second = runner.invoke(app, ["init"], env=env)
    assert second.exit_code == 0, second.output
    assert "(kept)" in second.output
    assert keyring.read_bytes() == before
    migrate = runner.invoke(app, ["migrate"], env=env)
    assert (migrate.exit_code, "up to date" in migrate.output) == (0, True)


def test_keys_rotate_rewraps_and_retires(
    tmp_path: Path, database_url: tuple[str, str | None]
) -> None:
    """`cvault keys rotate --retire-old` re-wraps every data key under the new version,
    drops the old version, and customers still decrypt afterwards."""
    env = cli_env(tmp_path, database_url)
    runner = CliRunner()
    assert runner.invoke(app, ["init"], env=env).exit_code == 0
    vault = Vault.open(Settings.from_env(env))
    with vault.unit(CTX) as s:
        ids = [vault.customers.create(s, CustomerInput(first_name=f"N{i}")).id for i in range(5)]
    vault.close()
    rotated = runner.invoke(app, ["keys", "rotate", "--retire-old"], env=env)
    assert rotated.exit_code == 0, rotated.output
    assert "re-wrapped 5 data keys" in rotated.output
    assert "retired key-encryption key version 1" in rotated.output
    status = runner.invoke(app, ["keys", "status"], env=env)
    assert "pending re-wrap: 0" in status.output
    fresh = Vault.open(Settings.from_env(env))
    with fresh.unit(CTX) as s:
        names = [fresh.customers.get(s, i).first_name for i in ids]
    fresh.close()
    assert names == [f"N{i}" for i in range(5)]


def test_bad_setting_is_a_clear_error(tmp_path: Path) -> None:
    """A malformed setting exits 2 naming the variable, without a traceback."""
    result = CliRunner().invoke(
        app, ["init"], env={"CVAULT_DATA_DIR": str(tmp_path), "CVAULT_PORT": "eighty"}
    )
    assert result.exit_code == 2
    assert "CVAULT_PORT" in result.output
    assert "Traceback" not in result.output


def test_world_readable_keyring_is_refused(tmp_path: Path) -> None:
    """`cvault init` refuses a keyring that group or others can read, and says how to fix it."""
    env = {"CVAULT_DATA_DIR": str(tmp_path / "d")}
    runner = CliRunner()
    assert runner.invoke(app, ["init"], env=env).exit_code == 0
    (tmp_path / "d" / "keys" / "keyring.json").chmod(0o644)
    result = runner.invoke(app, ["init"], env=env)
    assert result.exit_code == 2
    assert "chmod 600" in result.output


def test_policy_commands_show_explain_and_bring_the_default_back(
    tmp_path: Path, database_url: tuple[str, str | None]
) -> None:
    """`cvault policy`: replace stores a file, show and history print it, diff shows a
    change, a lockout file is refused with exit 1 and one line, reset brings the default
    back, explain names the deciding line."""
    env = cli_env(tmp_path, database_url)
    runner = CliRunner()
    assert runner.invoke(app, ["init"], env=env).exit_code == 0
    default = tmp_path / "default.csv"
    default.write_text("\n".join(default_policy_lines()), encoding="utf-8")
    stricter = tmp_path / "stricter.csv"
    stricter.write_text(
        "\n".join([*default_policy_lines(), "p, *, email, read:*, *, deny"]), encoding="utf-8"
    )
    empty = tmp_path / "empty.csv"
    empty.write_text("# nothing\n", encoding="utf-8")

    replaced = runner.invoke(app, ["policy", "replace", str(stricter)], env=env)
    shown = runner.invoke(app, ["policy", "show"], env=env)
    explained = runner.invoke(
        app, ["policy", "explain", "support_agent", "email", "support"], env=env
    )
    diffed = runner.invoke(app, ["policy", "diff", str(default)], env=env)
    refused = runner.invoke(app, ["policy", "replace", str(empty)], env=env)
    reset = runner.invoke(app, ["policy", "reset"], env=env)
    history = runner.invoke(app, ["policy", "history"], env=env)
    after = runner.invoke(app, ["policy", "explain", "support_agent", "email", "support"], env=env)

    assert (replaced.exit_code, "policy version 1 stored" in replaced.output) == (0, True)
    assert shown.output.splitlines()[0] == "# version 1"
    assert "p, *, email, read:*, *, deny" in shown.output
    assert explained.output.splitlines()[:2] == [
        "resolution: hidden",
        "rule: p, *, email, read:*, *, deny",
    ]
    assert "-p, *, email, read:*, *, deny" in diffed.output.splitlines()
    assert refused.exit_code == 1
    assert len(refused.output.strip().splitlines()) == 1
    assert "administration" in refused.output
    assert (reset.exit_code, "version 2" in reset.output) == (0, True)
    assert [line.split()[0] for line in history.output.splitlines()] == ["2", "1"]
    assert after.output.splitlines()[0] == "resolution: masked"
