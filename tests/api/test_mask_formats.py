"""Mask formats through the edges (issue 18, item 4), on SQLite and PostgreSQL:
``replacePolicy`` and ``cvault policy replace`` store versions with p3 lines, reads through
GraphQL show the formats, ``explainAccess``, ``cvault policy explain`` and the console's
policy viewer name them, and a bad format is refused with its line (BAD_USER_INPUT; exit
1 and one line)."""

# ruff: noqa: SIM300 - assertions read `expected == actual`.

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Final

from starlette.testclient import TestClient
from typer.testing import CliRunner

from api.cli import app
from policies import Role, default_policy_lines
from tests.api.test_cli import cli_env
from tests.api.test_console import console
from tests.api.test_graphql_schema import Gateway, gateway  # noqa: F401 - the fixture
from tests.conftest import CTX, grant_all_consents
from vault.authorization.context import AccessContext, Actor
from vault.customers import CustomerInput
from vault.runtime import Vault

ADMIN: Final = (Role.ADMIN, "administration")
ADMIN_CTX: Final = AccessContext(Actor(subject="admin-1", role="admin"), purpose="administration")
SUPPORT: Final = (Role.SUPPORT_AGENT, "support")
FORMATS: Final = [
    "p3, support_agent, phone, support, country_code",
    "p3, support_agent, email, support, domain_only",
]
REPLACE: Final = "mutation($lines: [String!]!) { replacePolicy(lines: $lines) { version lines } }"
EXPLAIN: Final = (
    '{ explainAccess(role: "support_agent", field: "phone", purpose: "support") '
    "{ resolution rule maskFormat formatRule reason } }"
)


def _person(vault: Vault) -> uuid.UUID:
    with vault.unit(CTX) as s:
        made = vault.customers.create(
            s, CustomerInput(email="somchai@example.co.th", phone="+66 81 234 5678")
        )
    grant_all_consents(vault, made.id)
    return made.id


def test_replace_policy_carries_formats_to_reads_and_explain_access(
    vault: Vault,
    gateway: Gateway,  # noqa: F811 - the fixture
) -> None:
    """A version stored through replacePolicy with p3 lines: support reads the country code
    and the domain; explainAccess names the format and its line; before it, the default."""
    cid = _person(vault)
    read = "query($id: ID!) { customer(id: $id) { email phone } }"
    before = gateway.data(read, {"id": str(cid)}, as_=SUPPORT)["customer"]
    explained_before = gateway.data(EXPLAIN, as_=ADMIN)["explainAccess"]
    stored = gateway.data(REPLACE, {"lines": [*default_policy_lines(), *FORMATS]}, as_=ADMIN)
    after = gateway.data(read, {"id": str(cid)}, as_=SUPPORT)["customer"]
    explained = gateway.data(EXPLAIN, as_=ADMIN)["explainAccess"]
    assert {"email": "s***@e***.th", "phone": "***5678"} == before
    assert ("default", None) == (explained_before["maskFormat"], explained_before["formatRule"])
    assert FORMATS == [line for line in stored["replacePolicy"]["lines"] if line[:2] == "p3"]
    assert {"email": "example.co.th", "phone": "+66 ***"} == after
    assert {
        "resolution": "masked",
        "rule": ["p", "support_agent", "phone", "read:masked", "support", "allow"],
        "maskFormat": "country_code",
        "formatRule": ["p3", "support_agent", "phone", "support", "country_code"],
    } == {k: v for k, v in explained.items() if k != "reason"}


def test_explain_access_gives_no_format_for_a_clear_field(
    gateway: Gateway,  # noqa: F811 - the fixture
) -> None:
    """A field shown in clear has no mask format."""
    query = EXPLAIN.replace('"phone"', '"first_name"')
    found = gateway.data(query, as_=ADMIN)["explainAccess"]
    assert ("clear", None, None) == (found["resolution"], found["maskFormat"], found["formatRule"])


def test_replace_policy_refuses_an_unknown_format_naming_the_line(
    gateway: Gateway,  # noqa: F811 - the fixture
) -> None:
    """An unknown format is BAD_USER_INPUT with its line number and text; nothing stored."""
    lines = [*default_policy_lines(), "p3, support_agent, phone, support, last3"]
    response = gateway.post(REPLACE, {"lines": lines}, as_=ADMIN)
    errors = response.json()["errors"]
    version = gateway.data("{ policy { version } }", as_=ADMIN)["policy"]["version"]
    assert ["BAD_USER_INPUT"] == [e["extensions"]["code"] for e in errors]
    assert (
        f"policy line {len(lines)} (p3, support_agent, phone, support, last3)"
        in (errors[0]["message"])
    )
    assert 0 == version


def test_cli_validates_replaces_and_explains_formats(
    tmp_path: Path, database_url: tuple[str, str | None]
) -> None:
    """`cvault policy validate` passes a good file and refuses a bad format with exit 1 and
    one line naming the file line; replace refuses it too and stores nothing; a good file
    is stored and explain prints its format."""
    env = cli_env(tmp_path, database_url)
    runner = CliRunner()
    assert 0 == runner.invoke(app, ["init"], env=env).exit_code
    good = tmp_path / "good.csv"
    good.write_text("\n".join([*default_policy_lines(), *FORMATS]), encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad_lines = [*default_policy_lines(), "p3, support_agent, email, support, last4"]
    bad.write_text("\n".join(bad_lines), encoding="utf-8")

    valid = runner.invoke(app, ["policy", "validate", str(good)], env=env)
    invalid = runner.invoke(app, ["policy", "validate", str(bad)], env=env)
    refused = runner.invoke(app, ["policy", "replace", str(bad)], env=env)
    history = runner.invoke(app, ["policy", "history"], env=env)
    stored = runner.invoke(app, ["policy", "replace", str(good)], env=env)
    explained = runner.invoke(
        app, ["policy", "explain", "support_agent", "phone", "support"], env=env
    )

    assert (0, f"{good}: valid; nothing stored") == (valid.exit_code, valid.output.strip())
    assert (1, 1) == (invalid.exit_code, len(invalid.output.strip().splitlines()))
    assert f"policy line {len(bad_lines)} (p3, support_agent, email, support, last4)" in (
        invalid.output
    )
    assert "mask format 'last4' is not for email" in invalid.output
    assert (1, "mask format 'last4' is not for email" in refused.output) == (
        refused.exit_code,
        True,
    )
    assert history.output.startswith("no stored version")
    assert 0 == stored.exit_code
    assert (
        "mask format: country_code p3, support_agent, phone, support, country_code"
        == explained.output.splitlines()[-1]
    )


def test_the_console_policy_viewer_shows_the_format(
    site: tuple[Vault, TestClient],
) -> None:
    """The compliance console's policy table shows a named format beside "masked" (the
    default adds nothing), and the explained cell its format and p3 line: the same
    decision as explainAccess."""
    vault, client = site
    with vault.unit(ADMIN_CTX) as s:
        vault.policies.replace(s, [*default_policy_lines(), *FORMATS])
    console(vault, client)
    table = client.get("/console/policy?purpose=support").text
    cell = client.get("/console/policy?purpose=support&role=support_agent&field=phone").text
    phone = re.search(r'data-cell="support_agent/phone"><a [^>]*>([^<]*)</a>', table)
    address = re.search(r'data-cell="support_agent/address"><a [^>]*>([^<]*)</a>', table)
    assert ("masked (country_code)", "masked") == (
        phone and phone.group(1),
        address and address.group(1),
    )
    assert (
        "<code>country_code</code> (<code>p3, support_agent, phone, support, country_code</code>)"
        in cell
    )
