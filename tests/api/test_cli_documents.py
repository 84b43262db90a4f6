"""`cvault documents` and `cvault schema print` against SQLite and PostgreSQL: each
manifest format registered, a bad manifest refused whole with the entry named (exit 1),
list, show, revoke, and the audit entry saying who registered what."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from api.cli import app
from api.graphql.schema import build_schema
from tests.api.test_cli import cli_env
from vault.config import Settings
from vault.runtime import Vault
from vault.storage.models import AuditEntryRow, TrustedDocumentRow

CUSTOMERS = "query Customers { customers(first: 5) { edges { node { id firstName } } } }"
CREATE = "mutation Create($input: CustomerInput!) { createCustomer(input: $input) { id } }"
INVALID = "query Typo { customers { edges { node { emial } } } }"


def sha256(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


def md5(body: str) -> str:
    return hashlib.md5(body.encode(), usedforsecurity=False).hexdigest()


@pytest.fixture
def env(tmp_path: Path, database_url: tuple[str, str | None]) -> dict[str, str]:
    environment = cli_env(tmp_path, database_url)
    assert CliRunner().invoke(app, ["init"], env=environment).exit_code == 0
    return environment


def write(tmp_path: Path, name: str, data: Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return str(path)


def stored(env: dict[str, str]) -> tuple[int, list[dict[str, Any]]]:
    """(documents stored, documents.change audit entries)."""
    vault = Vault.open(Settings.from_env(env))
    try:
        with vault.db.transaction() as s:
            count = int(s.scalar(select(func.count()).select_from(TrustedDocumentRow)) or 0)
            entries = s.scalars(
                select(AuditEntryRow.canonical)
                .where(AuditEntryRow.action == "documents.change")
                .order_by(AuditEntryRow.id)
            ).all()
    finally:
        vault.close()
    return count, [json.loads(e) for e in entries]


@pytest.mark.parametrize(
    ("name", "manifest"),
    [
        ("relay.json", {md5(CUSTOMERS): CUSTOMERS, md5(CREATE): CREATE}),
        (
            "persisted-documents.json",
            {f"sha256:{sha256(CUSTOMERS)}": CUSTOMERS, sha256(CREATE): CREATE},
        ),
        (
            "apollo.json",
            {
                "format": "apollo-persisted-query-manifest",
                "version": 1,
                "operations": [
                    {"id": sha256(CUSTOMERS), "body": CUSTOMERS, "name": "Customers",
                     "type": "query"},
                    {"id": sha256(CREATE), "body": CREATE, "name": "Create", "type": "mutation"},
                ],
            },
        ),
    ],
)  # fmt: skip
def test_register_each_format_then_list_show_revoke(
    tmp_path: Path, env: dict[str, str], name: str, manifest: dict[str, Any]
) -> None:
    """Every manifest format registers its two documents (exit 0, each hash printed);
    running it again stores nothing new; list, show and revoke work by any id; the
    registration is audited with who did it."""
    runner = CliRunner()
    path = write(tmp_path, name, manifest)
    first = runner.invoke(app, ["documents", "register", path, "--by", "release-bot"], env=env)
    again = runner.invoke(app, ["documents", "register", path, "--by", "release-bot"], env=env)
    listed = runner.invoke(app, ["documents", "list"], env=env)
    shown = runner.invoke(app, ["documents", "show", f"sha256:{sha256(CUSTOMERS)}"], env=env)
    revoked = runner.invoke(app, ["documents", "revoke", sha256(CREATE), "--by", "ops"], env=env)
    after = runner.invoke(app, ["documents", "list"], env=env)
    everything = runner.invoke(app, ["documents", "list", "--revoked"], env=env)
    twice = runner.invoke(app, ["documents", "revoke", sha256(CREATE)], env=env)
    assert (first.exit_code, again.exit_code) == (0, 0), first.output
    assert "registered 2 documents, 0 already trusted" in first.output
    assert f"+ sha256:{sha256(CUSTOMERS)}" in first.output
    assert "registered 0 documents, 2 already trusted" in again.output
    assert sorted(line.split()[0] for line in listed.output.splitlines()) == sorted(
        [f"sha256:{sha256(CUSTOMERS)}", f"sha256:{sha256(CREATE)}"]
    )
    assert "operator:release-bot" in listed.output
    assert shown.exit_code == 0
    assert shown.output.rstrip().endswith(CUSTOMERS)
    assert revoked.exit_code == 0
    assert f"sha256:{sha256(CREATE)}" not in after.output
    assert f"sha256:{sha256(CREATE)}  revoked" in everything.output
    assert (twice.exit_code, "already revoked" in twice.output) == (1, True)
    count, entries = stored(env)
    assert count == 2
    assert [(e["actor"], e["detail"]["step"]) for e in entries] == [
        ("operator:release-bot", "register"),
        ("operator:release-bot", "register"),
        ("operator:ops", "revoke"),
    ]
    assert [e["detail"].get("registered") for e in entries] == [2, 0, None]


def test_a_bad_manifest_is_refused_whole_naming_each_entry(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """A manifest with a document the schema refuses and one whose id is not its hash
    exits 1, names both entries, and stores nothing (not even its good entry)."""
    runner = CliRunner()
    invalid = write(
        tmp_path, "invalid.json", {sha256(CUSTOMERS): CUSTOMERS, sha256(INVALID): INVALID}
    )
    mismatched = write(tmp_path, "mismatch.json", {md5("something else"): CUSTOMERS})
    refused = runner.invoke(app, ["documents", "register", invalid], env=env)
    wrong_hash = runner.invoke(app, ["documents", "register", mismatched], env=env)
    missing = runner.invoke(app, ["documents", "register", str(tmp_path / "nope.json")], env=env)
    assert refused.exit_code == 1
    assert "manifest refused, nothing stored" in refused.output
    assert f"entry '{sha256(INVALID)}': GRAPHQL_VALIDATION_FAILED" in refused.output
    assert "Traceback" not in refused.output
    assert wrong_hash.exit_code == 1
    assert f"entry '{md5('something else')}': the id is not the md5" in wrong_hash.output
    assert missing.exit_code == 2
    assert stored(env) == (0, [])


def test_show_of_an_unknown_id_exits_1(env: dict[str, str]) -> None:
    """An id no stored document has, or no id at all, exits 1 with the reason."""
    runner = CliRunner()
    unknown = runner.invoke(app, ["documents", "show", sha256("nothing")], env=env)
    garbage = runner.invoke(app, ["documents", "show", "getCustomers"], env=env)
    assert (unknown.exit_code, "no stored document has this id" in unknown.output) == (1, True)
    assert (garbage.exit_code, "sha256:<64 hex digits>" in garbage.output) == (1, True)


def test_schema_print_writes_the_sdl() -> None:
    """`cvault schema print` writes the schema's SDL, ending in one newline, and nothing
    else (`cvault schema print > schema.graphql` regenerates the committed file)."""
    result = CliRunner().invoke(app, ["schema", "print"])
    assert result.exit_code == 0
    assert result.stdout == build_schema().as_str().rstrip("\n") + "\n"
