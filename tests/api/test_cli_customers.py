"""``cvault customers show|find|merge`` on SQLite and PostgreSQL: names in any script
round-trip, every read is audited as the operator, errors name no value and exit with
their code (2 usage, 4 not found, 1 not confirmed), nothing PII reaches a log line."""

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
from vault.customers import CustomerInput, ExternalId
from vault.runtime import Vault
from vault.storage.models import AuditEntryRow

PERSIAN = ("\u0645\u0631\u06cc\u0645", "\u0645\u062d\u0645\u062f\u06cc")  # Maryam Mohammadi
THAI = ("\u0e2a\u0e21\u0e0a\u0e32\u0e22", "\u0e43\u0e08\u0e14\u0e35")  # Somchai Jaidee
CHINESE = ("\u674e", "\u5c0f\u9f99")  # Li Xiaolong
EMAIL = "cli.customer.canary@example.com"
PHONE = "+14155550123"


@pytest.fixture
def env(tmp_path: Path, database_url: tuple[str, str | None]) -> dict[str, str]:
    environment = cli_env(tmp_path, database_url)
    environment["CVAULT_LOG_LEVEL"] = "debug"
    assert CliRunner().invoke(app, ["init"], env=environment).exit_code == 0
    return environment


def _make(env: dict[str, str], *people: CustomerInput) -> list[uuid.UUID]:
    vault = Vault.open(Settings.from_env(env))
    try:
        with vault.unit(CTX) as s:
            return [vault.customers.create(s, p).id for p in people]
    finally:
        vault.close()


def _actions(env: dict[str, str], actor: str) -> list[tuple[str, uuid.UUID | None]]:
    vault = Vault.open(Settings.from_env(env))
    try:
        with vault.db.transaction() as s:
            rows = s.execute(
                select(AuditEntryRow.action, AuditEntryRow.customer_id)
                .where(AuditEntryRow.actor == actor)
                .order_by(AuditEntryRow.id)
            ).all()
        return [(a, c) for a, c in rows]
    finally:
        vault.close()


def _cli(env: dict[str, str], *args: str, given: str | None = None) -> Result:
    return CliRunner().invoke(app, ["customers", *args], env=env, input=given)


def test_show_round_trips_names_in_every_script_and_is_audited(env: dict[str, str]) -> None:
    """Persian, Thai and Chinese names come back exactly, as text and as JSON; each read
    leaves a pii.access entry by system:customers; no value reaches a log line."""
    people = [
        CustomerInput(first_name=first, last_name=last, email=f"{n}.{EMAIL}", tier="gold")
        for n, (first, last) in enumerate((PERSIAN, THAI, CHINESE))
    ]
    ids = _make(env, *people)
    for cid, (first, last) in zip(ids, (PERSIAN, THAI, CHINESE), strict=True):
        text = _cli(env, "show", str(cid))
        assert text.exit_code == 0, text.output
        assert f"name        {first} {last}" in text.stdout
        as_json = _cli(env, "show", str(cid), "--json")
        doc = json.loads(as_json.stdout)
        assert (doc["id"], doc["first_name"], doc["last_name"]) == (str(cid), first, last)
        for value in (first, last, EMAIL):
            assert value not in text.stderr + as_json.stderr
    reads = [c for a, c in _actions(env, "system:customers") if a == "pii.access"]
    assert reads == [ids[0], ids[0], ids[1], ids[1], ids[2], ids[2]]


def test_show_by_email_and_find_by_each_key(env: dict[str, str]) -> None:
    """show takes an e-mail address; find takes --email, --phone or --external-id and
    prints the count; every one finds the same customer."""
    (cid,) = _make(
        env,
        CustomerInput(
            first_name=THAI[0], email=EMAIL, phone=PHONE,
            external_ids=[ExternalId("shopify", "8812")],
        ),
    )  # fmt: skip
    by_email = _cli(env, "show", EMAIL.upper(), "--json")
    assert by_email.exit_code == 0, by_email.output
    assert json.loads(by_email.stdout)["id"] == str(cid)
    for option, value in (
        ("--email", EMAIL),
        ("--phone", PHONE),
        ("--external-id", "shopify:8812"),
    ):
        found = _cli(env, "find", option, value)
        assert found.exit_code == 0, found.output
        assert (f"customer    {cid}" in found.stdout, "1 customer(s)" in found.stdout) == (
            True,
            True,
        )


def test_lookups_that_find_nobody_or_are_malformed_exit_with_their_code(
    env: dict[str, str],
) -> None:
    """Not found exits 4 and does not echo the address; a malformed id, no key or two
    keys, and a bad external id exit 2."""
    _make(env, CustomerInput(first_name=CHINESE[0], email=EMAIL))
    nobody = "nobody.canary@example.org"
    cases = {
        ("show", nobody): (4, "no customer has this e-mail address"),
        ("show", str(uuid.uuid4())): (4, "not found"),
        ("find", "--email", nobody): (4, "no customer matches this email"),
        ("find", "--external-id", "shopify:404"): (4, "no customer matches this external-id"),
        ("show", "not-an-id"): (2, "CUSTOMER (an id or an e-mail) must be a UUID"),
        ("find",): (2, "give exactly one of --email, --phone, --external-id"),
        ("find", "--email", EMAIL, "--phone", PHONE): (2, "give exactly one of"),
        ("find", "--external-id", "8812"): (2, "--external-id must be SOURCE:ID"),
    }
    for args, (code, message) in cases.items():
        result = _cli(env, *args)
        assert (result.exit_code, message in result.stderr) == (code, True), (args, result.output)
        assert nobody not in result.output


def test_merge_asks_first_and_folds_the_duplicate(env: dict[str, str]) -> None:
    """Without --yes a refusal at the prompt changes nothing (exit 1); confirmed, the
    duplicate's e-mail fills the survivor and the duplicate's id shows the survivor."""
    keep, gone = _make(
        env, CustomerInput(first_name=PERSIAN[0]), CustomerInput(first_name="x", email=EMAIL)
    )
    declined = _cli(env, "merge", str(gone), str(keep), given="n\n")
    assert (declined.exit_code, "merge cancelled; nothing changed" in declined.stderr) == (1, True)
    assert json.loads(_cli(env, "show", str(gone), "--json").stdout)["id"] == str(gone)
    confirmed = _cli(env, "merge", str(gone), str(keep), given="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    assert f"merged {gone} into {keep}" in confirmed.stdout
    shown = json.loads(_cli(env, "show", str(gone), "--json").stdout)
    assert (shown["id"], shown["first_name"], shown["email"]) == (str(keep), PERSIAN[0], EMAIL)
    merges = [c for a, c in _actions(env, "system:customers") if a == "customer.merge"]
    assert sorted(merges, key=str) == sorted([keep, gone], key=str)


def test_merge_refuses_bad_input(env: dict[str, str]) -> None:
    """The same id twice or a malformed id exits 2; an unknown customer exits 4."""
    (cid,) = _make(env, CustomerInput(first_name=THAI[0]))
    same = _cli(env, "merge", str(cid), str(cid), "--yes")
    assert (same.exit_code, "SOURCE and TARGET must differ" in same.stderr) == (2, True)
    bad = _cli(env, "merge", "nope", str(cid), "--yes")
    assert (bad.exit_code, "SOURCE must be a UUID" in bad.stderr) == (2, True)
    unknown = _cli(env, "merge", str(uuid.uuid4()), str(cid), "--yes", "--json")
    assert unknown.exit_code == 4, unknown.output
