"""``cvault segments list|show|create`` and ``cvault webhooks create|disable|rotate-secret``
on SQLite and PostgreSQL: a bad rule is reported with the line of the node at fault and
nothing is saved; a webhook's secret is printed once and a rotated one signs what is
delivered next."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from api.cli import app
from tests.api.test_cli import cli_env
from tests.conftest import CTX
from tests.vault.test_webhooks import Receiver
from vault.config import Settings
from vault.customers import CustomerInput
from vault.runtime import Vault

NAME = "\u0e25\u0e39\u0e01\u0e04\u0e49\u0e32\u0e17\u0e2d\u0e07"  # "gold customers", in Thai
GOLD = '{"attribute": {"field": "tier", "op": "eq", "value": "gold"}}'
BAD_RULE = """{"all": [
  {"attribute": {"field": "tier", "op": "eq", "value": "gold"}},
  {"metric": {"name": "recency_days",
              "op": "gt",
              "value": "soon"}}
]}
"""


@pytest.fixture
def env(tmp_path: Path, database_url: tuple[str, str | None]) -> dict[str, str]:
    environment = cli_env(tmp_path, database_url)
    assert CliRunner().invoke(app, ["init"], env=environment).exit_code == 0
    return environment


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(lambda: datetime.now(UTC))
    yield r
    r.close()


def _run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def _created_id(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return str(json.loads(result.stdout)["id"])


def test_create_from_a_file_or_inline_then_list_and_show(
    env: dict[str, str], tmp_path: Path
) -> None:
    """A rule file and an inline rule both save a segment (version 1); list names both;
    show prints the rule and, after a refresh, the member count; the name round-trips."""
    rule_file = tmp_path / "gold.json"
    rule_file.write_text(GOLD, encoding="utf-8")
    from_file = _created_id(_run(env, "segments", "create", NAME, "--rule-file", str(rule_file),
                                 "--json"))  # fmt: skip
    inline = _run(env, "segments", "create", "inline", "--rule", GOLD, "--description", "d")
    assert inline.exit_code == 0, inline.output
    assert "created (version 1)" in inline.stdout
    listed = _run(env, "segments", "list", "--json")
    assert sorted(s["name"] for s in json.loads(listed.stdout)) == sorted([NAME, "inline"])
    assert "2 segment(s)" in _run(env, "segments", "list").stdout
    vault = Vault.open(Settings.from_env(env))
    try:
        with vault.unit(CTX) as s:
            vault.customers.create(s, CustomerInput(first_name="Ada", tier="gold"))
    finally:
        vault.close()
    assert _run(env, "segments", "refresh", from_file).exit_code == 0
    shown = json.loads(_run(env, "segments", "show", from_file, "--json").stdout)
    assert (shown["name"], shown["members"], shown["rule"]) == (NAME, 1, json.loads(GOLD))
    text = _run(env, "segments", "show", from_file)
    assert f"name         {NAME}" in text.stdout
    assert '"field": "tier"' in text.stdout


def test_a_bad_rule_names_its_line_and_nothing_is_saved(
    env: dict[str, str], tmp_path: Path
) -> None:
    """A rule that breaks the language exits 1 naming file:line and the node's path; a
    text that is not JSON exits 2 with its line; no rule or two exit 2; a missing file
    exits 2; list shows nothing was saved."""
    bad = tmp_path / "bad.json"
    bad.write_text(BAD_RULE, encoding="utf-8")
    refused = _run(env, "segments", "create", "x", "--rule-file", str(bad))
    assert refused.exit_code == 1, refused.output
    assert refused.stderr.startswith(f"error: {bad}:5: rule.all[1].metric.value: ")
    broken = tmp_path / "broken.json"
    broken.write_text('{"all": [\n  {"not": \n  ]}', encoding="utf-8")
    syntax = _run(env, "segments", "create", "x", "--rule-file", str(broken))
    assert (syntax.exit_code, f"{broken}:3: not JSON" in syntax.stderr) == (2, True)
    inline = _run(env, "segments", "create", "x", "--rule", '{"any": []}')
    assert (inline.exit_code, inline.stderr.startswith("error: --rule:1: rule.any: ")) == (1, True)
    assert _run(env, "segments", "create", "x").exit_code == 2
    assert (
        _run(env, "segments", "create", "x", "--rule", GOLD, "--rule-file", str(bad)).exit_code == 2
    )
    assert (
        _run(env, "segments", "create", "x", "--rule-file", str(tmp_path / "no.json")).exit_code
        == 2
    )
    assert _run(env, "segments", "show", str(uuid.uuid4())).exit_code == 4
    assert _run(env, "segments", "show", "nope").exit_code == 2
    assert "0 segment(s)" in _run(env, "segments", "list").stdout


def test_webhook_create_rotate_and_disable(env: dict[str, str], receiver: Receiver) -> None:
    """create prints a secret once; rotate-secret prints a different one and the next
    delivery verifies with it; disable stops the webhook; bad input exits 1, 2 or 4."""
    segment = _created_id(_run(env, "segments", "create", "gold", "--rule", GOLD, "--json"))
    made = _run(env, "webhooks", "create", receiver.url("/h"), "--segment", segment,
                "--purpose", "analytics", "--json")  # fmt: skip
    assert made.exit_code == 0, made.output
    first = json.loads(made.stdout)
    hook, old_secret = first["webhook"]["id"], first["secret"]
    rotated = _run(env, "webhooks", "rotate-secret", hook)
    assert rotated.exit_code == 0, rotated.output
    new_secret = next(
        line.split()[1] for line in rotated.stdout.splitlines() if line.startswith("secret")
    )
    assert (new_secret.startswith("whsec_"), new_secret != old_secret) == (True, True)
    vault = Vault.open(Settings.from_env(env))
    try:
        with vault.unit(CTX) as s:
            vault.customers.create(s, CustomerInput(first_name="Ada", tier="gold"))
    finally:
        vault.close()
    receiver.secrets["/h"] = new_secret
    assert _run(env, "segments", "refresh").exit_code == 0
    assert _run(env, "webhooks", "deliver").exit_code == 0
    assert [r.verified for r in receiver.at("/h")] == [True]
    disabled = _run(env, "webhooks", "disable", hook, "--json")
    assert json.loads(disabled.stdout)["disabled_at"] is not None
    assert "disabled" in _run(env, "webhooks", "list").stdout
    cases = {
        ("create", "ftp://x", "--segment", segment, "--purpose", "analytics"): 1,
        ("create", receiver.url("/h"), "--segment", segment, "--purpose", "nope"): 1,
        ("create", receiver.url("/h"), "--segment", "x", "--purpose", "analytics"): 2,
        ("create", receiver.url("/h"), "--segment", str(uuid.uuid4()), "--purpose", "analytics"): 4,
        ("disable", str(uuid.uuid4())): 4,
        ("rotate-secret", "nope"): 2,
        ("rotate-secret", str(uuid.uuid4())): 4,
    }
    for args, code in cases.items():
        assert _run(env, "webhooks", *args).exit_code == code, args
