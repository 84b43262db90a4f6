"""``cvault demo`` and ``cvault import``: output, exit codes and stderr lines.

These run the real command line, after ``cvault init`` (which applies the
migrations), on each test database: a SQLite file in a temporary directory, or
a PostgreSQL schema named through the URL's ``options``.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner, Result

from api.cli import app
from vault.demo.service import DEMO_TABLES


class Cli:
    def __init__(self, data_dir: Path, url: str) -> None:
        self.env = {
            "CVAULT_DATA_DIR": str(data_dir),
            "CVAULT_DATABASE_URL": url,
            "CVAULT_ENV": "test",
            "CVAULT_LOG_LEVEL": "warning",
        }
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Result:
        return self.runner.invoke(app, list(args), env=self.env)


@pytest.fixture
def cli(tmp_path: Path, database_url: tuple[str, str | None]) -> Cli:
    """The CLI on an initialised vault of the parametrised backend."""
    url, schema = database_url
    if schema is not None:
        url = f"{url}?options={quote(f'-csearch_path={schema}')}"
    runner = Cli(tmp_path / "data", url)
    result = runner("init")
    assert (result.exit_code, result.stderr) == (0, "")
    assert "schema          empty -> " in result.stdout
    return runner


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_demo_loads_and_reports_counts(cli: Cli) -> None:
    """`cvault demo` loads N customers and prints how many customers, interactions and
    consents it added; running it again with the same seed adds nothing."""
    first = cli("demo", "--customers", "15", "--seed", "5")
    assert first.exit_code == 0
    words = first.stdout.split()
    assert words[:3] == ["loaded", "15", "customers"]
    assert int(words[4]) >= 15 * 5
    assert words[7:9] == ["consents", "granted"]
    assert int(words[6]) > 0
    again = cli("demo", "--customers", "15", "--seed", "5")
    assert (again.exit_code, again.stdout.strip()) == (
        0,
        "loaded 0 customers and 0 interactions\n0 consents granted (0 later withdrawn)",
    )


def _analysed(database_url: tuple[str, str | None]) -> set[str]:
    """The vault's tables with planner statistics: analysed since created (PostgreSQL:
    ``pg_stat_user_tables.last_analyze``; SQLite: rows in ``sqlite_stat1``)."""
    url, schema = database_url
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if schema is not None:
                query = "SELECT relname FROM pg_stat_user_tables WHERE schemaname = :schema "
                query += "AND last_analyze IS NOT NULL"
                return set(conn.scalars(text(query), {"schema": schema}))
            stat = "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'"
            if not conn.scalar(text(stat)):
                return set()
            return set(conn.scalars(text("SELECT DISTINCT tbl FROM sqlite_stat1")))
    finally:
        engine.dispose()


def test_demo_gathers_statistics_of_the_tables_it_loaded(
    cli: Cli, database_url: tuple[str, str | None]
) -> None:
    """`cvault demo` ends with ANALYZE of the tables it filled, so a fresh demo vault is
    planned on statistics (none before it)."""
    assert _analysed(database_url) == set()
    assert cli("demo", "--customers", "15").exit_code == 0
    assert set(DEMO_TABLES) <= _analysed(database_url)


def test_import_gathers_statistics_of_the_tables_it_loaded(
    cli: Cli, tmp_path: Path, database_url: tuple[str, str | None]
) -> None:
    """`cvault import` ends with ANALYZE of the tables it filled, when it accepted rows."""
    customers = tmp_path / "c.jsonl"
    customers.write_text(json.dumps({"source": "shop", "external_id": "C1"}) + "\n")
    assert cli("import", "customers", str(customers)).exit_code == 0
    assert {"customers", "customer_external_ids"} <= _analysed(database_url)
    assert "interactions" not in _analysed(database_url)
    row = {"source": "shop", "customer_external_id": "C1", "channel": "web", "type": "page_view",
           "occurred_at": "2026-11-01T09:00:00Z"}  # fmt: skip
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(row) + "\n")
    assert cli("import", "interactions", str(events)).exit_code == 0
    assert "interactions" in _analysed(database_url)


def test_demo_if_empty_skips_a_vault_with_customers(cli: Cli) -> None:
    """With --if-empty, demo data is loaded only into an empty vault."""
    assert cli("demo", "--customers", "3", "--if-empty").exit_code == 0
    skipped = cli("demo", "--customers", "3", "--if-empty", "--seed", "99")
    assert (skipped.exit_code, skipped.stdout.strip()) == (
        0,
        "vault already holds customers; demo data not loaded",
    )


def test_import_all_accepted_exits_0_and_reimport_finds_duplicates(
    cli: Cli, tmp_path: Path
) -> None:
    """Exit 0 when every row is accepted; importing the same file again reports duplicates
    and still exits 0."""
    path = tmp_path / "customers.csv"
    path.write_text(
        "email,first_name,source,external_id\n"
        "a@example.com,\u0632\u0647\u0631\u0627,crm,1\n"
        "b@example.com,\u0e2a\u0e21\u0e0a\u0e32\u0e22,crm,2\n",
        encoding="utf-8",
    )
    first = cli("import", "customers", str(path))
    assert (first.exit_code, first.stderr) == (0, "")
    assert first.stdout.strip() == "2 rows read, 2 accepted, 0 already present, 0 rejected"
    again = cli("import", "customers", str(path))
    assert (again.exit_code, again.stderr) == (0, "")
    assert again.stdout.strip() == "2 rows read, 0 accepted, 2 already present, 0 rejected"


def test_import_with_rejected_rows_exits_1_and_names_lines(cli: Cli, tmp_path: Path) -> None:
    """Exit 1 when some rows are rejected; stderr has one 'file:LINE: reason' line each."""
    path = tmp_path / "customers.csv"
    path.write_text(
        "email,address\n"
        'ok@example.com,"1 Main St\nSpringfield"\n'
        "secret-value,\n"
        "fine@example.com,\n",
        encoding="utf-8",
    )
    result = cli("import", "customers", str(path))
    assert result.exit_code == 1
    assert _lines(result.stderr) == ["customers.csv:4: email: is not a valid email address"]
    assert "secret-value" not in result.stderr + result.stdout
    assert result.stdout.strip() == "3 rows read, 2 accepted, 0 already present, 1 rejected"


def test_import_interactions_from_jsonl(cli: Cli, tmp_path: Path) -> None:
    """Interactions import by external customer id; a naive timestamp is rejected (exit 1)."""
    customers = tmp_path / "c.jsonl"
    customers.write_text(json.dumps({"source": "shop", "external_id": "C1"}) + "\n")
    assert cli("import", "customers", str(customers)).exit_code == 0
    rows = [
        {"source": "shop", "customer_external_id": "C1", "channel": "web", "type": "page_view",
         "occurred_at": "2026-11-01T09:00:00Z", "external_id": "e-1"},
        {"source": "shop", "customer_external_id": "C1", "channel": "web", "type": "page_view",
         "occurred_at": "2026-11-01T09:00:00", "external_id": "e-2"},
    ]  # fmt: skip
    events = tmp_path / "events.ndjson"
    events.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = cli("import", "interactions", str(events))
    assert result.exit_code == 1
    assert _lines(result.stderr) == [
        "events.ndjson:2: occurred_at: must carry a time zone offset or Z"
    ]
    assert result.stdout.strip() == "2 rows read, 1 accepted, 0 already present, 1 rejected"


@pytest.mark.parametrize(
    "case",
    [
        ("missing.csv", None, (), "missing.csv: no such file"),
        ("data.txt", "email\n", (), "unknown file type"),
        ("bad.csv", "email,shoe_size\n", (), "unknown column(s): shoe_size"),
        ("data.txt", "nonsense\n", ("--format", "jsonl"), None),
    ],
)
def test_file_errors_exit_2(
    cli: Cli, tmp_path: Path, case: tuple[str, str | None, tuple[str, ...], str | None]
) -> None:
    """A file that cannot be imported at all (missing, unknown type, bad header) exits 2
    with an error line; rows that are merely bad do not."""
    name, content, args, message = case
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    result = cli("import", "customers", str(path), *args)
    if message is None:  # a bad JSON line is a rejected row, not a file error
        assert (result.exit_code, _lines(result.stderr)) == (
            1,
            [f"{name}:1: record: is not valid JSON"],
        )
        return
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
