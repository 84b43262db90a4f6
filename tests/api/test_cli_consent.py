"""``cvault consent show|grant|withdraw`` and ``cvault holds add|release|list`` on SQLite
and PostgreSQL: the ledger's events and receipts, the desk's holds, audited as the
operator; bad input exits 1, 2 or 4 with a message that names no value."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from api.cli import app
from tests.api.test_cli import cli_env
from tests.conftest import CTX
from vault.config import Settings
from vault.customers import CustomerInput
from vault.errors import LegalHoldActive
from vault.runtime import Vault
from vault.storage.models import AuditEntryRow

NAME = "\u0645\u0631\u06cc\u0645"  # Maryam, in Persian
EMAIL = "cli.consent.canary@example.com"


@pytest.fixture
def env(tmp_path: Path, database_url: tuple[str, str | None]) -> dict[str, str]:
    environment = cli_env(tmp_path, database_url)
    environment["CVAULT_LOG_LEVEL"] = "debug"
    assert CliRunner().invoke(app, ["init"], env=environment).exit_code == 0
    vault = Vault.open(Settings.from_env(environment))
    try:
        with vault.unit(CTX) as s:
            cid = vault.customers.create(s, CustomerInput(first_name=NAME, email=EMAIL)).id
    finally:
        vault.close()
    environment["CUSTOMER"] = str(cid)
    return environment


def _run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def _actions(env: dict[str, str]) -> list[str]:
    vault = Vault.open(Settings.from_env(env))
    try:
        with vault.db.transaction() as s:
            return list(
                s.scalars(
                    select(AuditEntryRow.action)
                    .where(AuditEntryRow.actor.in_(["system:consent", "system:holds"]))
                    .order_by(AuditEntryRow.id)
                )
            )
    finally:
        vault.close()


def test_grant_withdraw_and_show_with_history(env: dict[str, str]) -> None:
    """grant then withdraw marketing_email: show says withdrawn and not effective; the
    history holds both events with their signed receipts; all audited."""
    cid = env["CUSTOMER"]
    granted = _run(env, "consent", "grant", cid, "marketing_email", "--notice-version", "v3")
    assert granted.exit_code == 0, granted.output
    assert f"granted marketing_email for customer {cid}" in granted.stdout
    shown = json.loads(_run(env, "consent", "show", cid, "--json").stdout)
    states = {p["purpose"]: (p["state"], p["effective"]) for p in shown["purposes"]}
    assert states["marketing_email"] == ("granted", True)
    assert states["marketing_sms"] == (None, False)
    withdrawn = _run(env, "consent", "withdraw", cid, "marketing_email", "--json")
    assert json.loads(withdrawn.stdout)["state"] == "withdrawn"
    text = _run(env, "consent", "show", cid, "--history")
    assert text.exit_code == 0, text.output
    assert "marketing_email   withdrawn  no" in text.stdout
    doc = json.loads(_run(env, "consent", "show", cid, "--history", "--json").stdout)
    assert [(e["state"], e["notice_version"]) for e in doc["history"]] == [
        ("granted", "v3"),
        ("withdrawn", "2026-01"),  # the purpose's current notice (purposes.toml)
    ]
    assert all("signature" in json.dumps(e["receipt"]) for e in doc["history"])
    assert _actions(env) == [
        "consent.change", "pii.access", "consent.change", "pii.access", "pii.access",
    ]  # fmt: skip
    for result in (granted, withdrawn, text):
        assert (NAME in result.stderr, EMAIL in result.stderr) == (False, False)


def test_consent_refuses_bad_input_with_its_exit_code(env: dict[str, str]) -> None:
    """A purpose that needs no consent or an expiry in the past exits 1, a malformed id or
    date 2, an unknown customer 4; nothing is recorded."""
    cid = env["CUSTOMER"]
    cases = {
        ("grant", cid, "support"): 1,
        ("grant", cid, "marketing_email", "--expires-at", "2001-01-01T00:00:00+00:00"): 1,
        ("grant", cid, "marketing_email", "--expires-at", "soon"): 2,
        ("grant", "nope", "marketing_email"): 2,
        ("withdraw", str(uuid.uuid4()), "marketing_email"): 4,
        ("show", "nope"): 2,
    }
    for args, code in cases.items():
        result = _run(env, "consent", *args)
        assert (result.exit_code, result.stderr.startswith("error: ")) == (code, True), args
    assert "consent.change" not in _actions(env)


def test_a_hold_blocks_erasure_until_released(env: dict[str, str]) -> None:
    """holds add prints the hold; list shows it active; erasure is refused; release lifts
    it; a second release exits 1, an unknown hold 4, an empty reason 1."""
    cid = env["CUSTOMER"]
    added = _run(env, "holds", "add", cid, "--reason", "case 2026-17 \u0e04\u0e14\u0e35", "--json")
    assert added.exit_code == 0, added.output
    (hold,) = json.loads(added.stdout)
    assert (hold["customer"], hold["active"], hold["reason"]) == (
        cid,
        True,
        "case 2026-17 \u0e04\u0e14\u0e35",
    )
    listed = _run(env, "holds", "list", cid)
    assert (hold["hold"] in listed.stdout, "1 hold(s), 1 active" in listed.stdout) == (True, True)
    vault = Vault.open(Settings.from_env(env))
    try:
        with pytest.raises(LegalHoldActive), vault.unit(CTX) as s:
            vault.erasure.erase(s, uuid.UUID(cid))
    finally:
        vault.close()
    released = _run(env, "holds", "release", hold["hold"])
    assert (released.exit_code, "released" in released.stdout) == (0, True), released.output
    again = _run(env, "holds", "release", hold["hold"])
    assert (again.exit_code, "lifted already" in again.stderr) == (1, True)
    assert _run(env, "holds", "release", str(uuid.uuid4())).exit_code == 4
    assert _run(env, "holds", "add", cid, "--reason", " ").exit_code == 1
    assert _run(env, "holds", "list", "nope").exit_code == 2
    assert "1 hold(s), 0 active" in _run(env, "holds", "list", cid).stdout
    assert _actions(env).count("legal_hold.change") == 2
