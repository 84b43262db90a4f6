"""Every long ``cvault`` job draws a progress bar with a total on a terminal, and nothing
when stderr is not one: imports count their rows first (a CSV record across lines counts
once, a malformed one too), segment refresh counts segments, retention its steps, a key
rotation the data keys, an audit export its entries. On SQLite and PostgreSQL."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner, Result

from api.cli import app, common
from tests.api.test_cli import cli_env
from tests.conftest import CTX
from vault.config import Settings
from vault.customers import CustomerInput
from vault.importing.reader import count_rows
from vault.runtime import Vault

CSV = (
    "email,first_name,last_name\n"
    'a@example.com,\u0645\u0631\u06cc\u0645,"two\nlines"\n'
    "\n"
    "b@example.com,\u674e,x,too many\n"
    "c@example.com,\u0e2a\u0e21\u0e0a\u0e32\u0e22,y\n"
)
JSONL = '\ufeff{"email": "a@example.com"}\n\n{"email": "b@example.com"}\nnot json\n'


@pytest.fixture
def env(tmp_path: Path, database_url: tuple[str, str | None]) -> dict[str, str]:
    environment = cli_env(tmp_path, database_url)
    assert CliRunner().invoke(app, ["init"], env=environment).exit_code == 0
    vault = Vault.open(Settings.from_env(environment))
    try:
        with vault.unit(CTX) as s:
            for tier in ("gold", "gold", "silver"):
                vault.customers.create(s, CustomerInput(first_name="Ada", tier=tier))
            for name in ("gold", "silver"):
                rule = {"attribute": {"field": "tier", "op": "eq", "value": name}}
                vault.segments.create(s, name=name, definition=rule)
        vault.audit.sequence(vault.db)
    finally:
        vault.close()
    return environment


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """stderr as a terminal: what the bars draw lands here."""
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120, color_system=None)
    monkeypatch.setattr(common, "err", console)
    return screen


def _run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def _final(screen: io.StringIO, description: str) -> tuple[int, int]:
    """The last ``done/total`` the bar called ``description`` drew."""
    found = re.findall(rf"{description}\s.*?(\d+)/(\d+)", screen.getvalue())
    assert found, screen.getvalue()
    done, total = found[-1]
    return int(done), int(total)


def test_count_rows_counts_what_the_reader_yields(tmp_path: Path) -> None:
    """A quoted field across two lines is one row, a blank line none, a row with a field
    too many one (it is rejected, still a row); JSONL skips a BOM and blank lines."""
    csv_file, jsonl_file = tmp_path / "c.csv", tmp_path / "c.jsonl"
    csv_file.write_text(CSV, encoding="utf-8")
    jsonl_file.write_text(JSONL, encoding="utf-8")
    assert (count_rows(csv_file, "csv"), count_rows(jsonl_file, "jsonl")) == (3, 3)


def test_import_counts_its_rows_first(
    env: dict[str, str], tmp_path: Path, terminal: io.StringIO
) -> None:
    """The import bar's total is the rows of the file, and it ends full."""
    path = tmp_path / "people.csv"
    path.write_text(CSV, encoding="utf-8")
    result = _run(env, "import", "customers", str(path))
    assert result.exit_code == 1, result.output  # the row with a field too many
    assert _final(terminal, "import customers") == (3, 3)


def test_long_jobs_show_their_totals(
    env: dict[str, str], tmp_path: Path, terminal: io.StringIO
) -> None:
    """segments refresh: 2 segments; retention: its 7 steps; keys rotate: the 3 data
    keys; audit export: every entry of the checkpointed tree, or those a filter keeps."""
    assert _run(env, "segments", "refresh").exit_code == 0
    assert _final(terminal, "refreshing segments") == (2, 2)
    assert _run(env, "retention", "run", "--dry-run").exit_code == 0
    assert _final(terminal, "retention") == (7, 7)
    assert _run(env, "keys", "rotate").exit_code == 0
    assert _final(terminal, "re-wrapping data keys") == (3, 3)
    exported = _run(env, "audit", "export", "-o", str(tmp_path / "trail.jsonl"))
    assert exported.exit_code == 0, exported.output
    done, total = _final(terminal, "exporting audit entries")
    assert (done, f"exported {done} entries" in exported.stdout) == (total, True)
    filtered = _run(env, "audit", "export", "--action", "customer.create",
                    "-o", str(tmp_path / "creates.jsonl"))  # fmt: skip
    assert filtered.exit_code == 0, filtered.output
    assert _final(terminal, "exporting audit entries") == (3, 3)


def test_no_bar_when_stderr_is_not_a_terminal(env: dict[str, str], tmp_path: Path) -> None:
    """Piped, a job prints its result and no bar."""
    path = tmp_path / "people.jsonl"
    path.write_text('{"email": "d@example.com"}\n', encoding="utf-8")
    result = _run(env, "import", "customers", str(path))
    assert (result.exit_code, result.stderr) == (0, "")
