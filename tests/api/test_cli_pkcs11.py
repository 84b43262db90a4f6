"""`cvault init --key-provider pkcs11` and `cvault keys` with the keys in a SoftHSM2
token, on SQLite and PostgreSQL. The PIN comes from CVAULT_PKCS11_PIN and is never
printed."""

# ruff: noqa: SIM300 - assertions read `expected == actual`.

from __future__ import annotations

import json
import stat
from pathlib import Path

from typer.testing import CliRunner

from api.cli import app
from tests.api.test_cli import cli_env
from tests.conftest import CTX
from tests.hsm import HsmToken
from vault.config import Settings
from vault.customers import CustomerInput
from vault.runtime import Vault


def _init_args(token: HsmToken) -> list[str]:
    return [
        "init",
        "--key-provider",
        "pkcs11",
        "--pkcs11-module",
        token.module,
        "--pkcs11-token",
        token.label,
    ]


def test_init_makes_the_keys_in_the_token_and_keys_rotate_works(
    tmp_path: Path, database_url: tuple[str, str | None], hsm_token: HsmToken
) -> None:
    """init makes the keys in the token and a 0600 keyring file naming it (a second run
    keeps both); `keys status` lists the token's KEK versions; `keys rotate --retire-old`
    makes version 2 in the token, re-wraps every data key and retires version 1; the
    customers still read. No output holds the PIN."""
    env = {**cli_env(tmp_path, database_url), "CVAULT_PKCS11_PIN": hsm_token.pin}
    runner = CliRunner()
    first = runner.invoke(app, _init_args(hsm_token), env=env)
    assert 0 == first.exit_code, first.output
    assert "made in the token" in first.output
    keyring = tmp_path / "data" / "keys" / "keyring.json"
    assert 0o600 == stat.S_IMODE(keyring.stat().st_mode)
    assert {"format", "provider", "module", "token"} == set(json.loads(keyring.read_text()))
    again = runner.invoke(app, _init_args(hsm_token), env=env)
    assert 0 == again.exit_code, again.output
    assert "(kept)" in again.output
    plain = runner.invoke(app, ["init"], env=env)  # the keyring file says which provider
    assert 0 == plain.exit_code, plain.output

    vault = Vault.open(Settings.from_env(env))
    try:
        with vault.unit(CTX) as s:
            ids = [
                vault.customers.create(s, CustomerInput(first_name=f"نام{i}")).id for i in range(4)
            ]
    finally:
        vault.close()
    status = runner.invoke(app, ["keys", "status"], env=env)
    assert 0 == status.exit_code, status.output
    assert "current" in status.output
    assert "blind index bits: 18" in status.output
    rotated = runner.invoke(app, ["keys", "rotate", "--retire-old"], env=env)
    assert 0 == rotated.exit_code, rotated.output
    assert "key-encryption key version 2 is now current" in rotated.output
    assert "re-wrapped 4 data keys" in rotated.output
    assert "retired key-encryption key version 1" in rotated.output
    after = runner.invoke(app, ["keys", "status"], env=env)
    assert "pending re-wrap: 0" in after.output
    assert "MISSING" not in after.output

    fresh = Vault.open(Settings.from_env(env))
    try:
        assert [2] == fresh.keyring.versions()
        with fresh.unit(CTX) as s:
            names = [fresh.customers.get(s, cid).first_name for cid in ids]
    finally:
        fresh.close()
    assert [f"نام{i}" for i in range(4)] == names
    for result in (first, again, plain, status, rotated, after):
        assert hsm_token.pin not in result.output
    assert hsm_token.pin not in keyring.read_text()


def test_a_missing_or_wrong_pin_is_a_clear_usage_error(
    tmp_path: Path, database_url: tuple[str, str | None], hsm_token: HsmToken
) -> None:
    """Without CVAULT_PKCS11_PIN init exits 2 naming the variable; with a wrong PIN it
    exits 2 saying the token refused it, and prints neither PIN; nothing is written."""
    env = cli_env(tmp_path, database_url)
    runner = CliRunner()
    missing = runner.invoke(app, _init_args(hsm_token), env=env)
    assert (2, True) == (missing.exit_code, "CVAULT_PKCS11_PIN" in missing.output)
    wrong_pin = "not-" + hsm_token.pin
    wrong = runner.invoke(app, _init_args(hsm_token), env={**env, "CVAULT_PKCS11_PIN": wrong_pin})
    assert 2 == wrong.exit_code, wrong.output
    assert "refused the PIN" in wrong.output
    assert wrong_pin not in wrong.output
    assert hsm_token.pin not in wrong.output
    assert not (tmp_path / "data" / "keys" / "keyring.json").exists()


def test_keys_commands_need_the_pin_too(
    tmp_path: Path, database_url: tuple[str, str | None], hsm_token: HsmToken
) -> None:
    """A vault on a token opens only with its PIN: `keys status` without it exits 2."""
    env = {**cli_env(tmp_path, database_url), "CVAULT_PKCS11_PIN": hsm_token.pin}
    runner = CliRunner()
    assert 0 == runner.invoke(app, _init_args(hsm_token), env=env).exit_code
    del env["CVAULT_PKCS11_PIN"]
    status = runner.invoke(app, ["keys", "status"], env=env)
    assert (2, True) == (status.exit_code, "CVAULT_PKCS11_PIN" in status.output)


def test_bad_provider_options_are_usage_errors(
    tmp_path: Path, database_url: tuple[str, str | None]
) -> None:
    """An unknown provider, a token without a module, PKCS#11 options without the
    provider, or a PKCS#11 init over an existing key file: exit 2, one line each."""
    env = {**cli_env(tmp_path, database_url), "CVAULT_PKCS11_PIN": "1234"}
    runner = CliRunner()
    cases = [
        (["init", "--key-provider", "hsm"], "file or pkcs11"),
        (["init", "--key-provider", "pkcs11", "--pkcs11-token", "t"], "--pkcs11-module"),
        (["init", "--pkcs11-token", "t"], "go with --key-provider pkcs11"),
    ]
    for args, message in cases:
        result = runner.invoke(app, args, env=env)
        assert (2, True) == (result.exit_code, message in result.output), result.output
    assert 0 == runner.invoke(app, ["init"], env=env).exit_code
    convert = runner.invoke(
        app,
        ["init", "--key-provider", "pkcs11", "--pkcs11-module", "/m.so", "--pkcs11-token", "t"],
        env=env,
    )
    assert 2 == convert.exit_code
    assert "does not convert" in convert.output
