"""``cvault import customers --on-duplicate``, ``cvault customers duplicates`` and
``cvault customers reindex``: output, exit codes and stderr lines (ids, never values)."""

from __future__ import annotations

from pathlib import Path

from tests.api.test_cli_data import Cli, cli

__all__ = ["cli"]  # the fixture, used by name

HEAD = "email,phone,first_name,last_name,birth_date,source,external_id\n"
FIRST = (
    "zahra@example.com,,\u0632\u0647\u0631\u0627,\u0645\u062d\u0645\u062f\u06cc,1990-01-02,crm,1\n"
    "ZAHRA@example.com,,,,,crm,2\n"  # 3: the same email as line 2
)


def _file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(HEAD + text, encoding="utf-8")
    return path


def test_import_fail_names_each_duplicate_line(cli: Cli, tmp_path: Path) -> None:
    """--on-duplicate fail: the duplicate row is rejected on stderr with its line, and
    the command exits 1; its email is nowhere in the output."""
    result = cli(
        "import", "customers", str(_file(tmp_path, "a.csv", FIRST)), "--on-duplicate", "fail"
    )
    assert (
        result.exit_code,
        result.stderr.splitlines(),
    ) == (1, ["a.csv:3: email: the same customer as line 2"])
    assert "2 rows read, 1 accepted, 0 already present, 1 rejected" in result.stdout
    assert "zahra" not in (result.stdout + result.stderr).lower()


def test_import_link_and_skip(cli: Cli, tmp_path: Path) -> None:
    """--on-duplicate link says how many duplicates it linked; skip (the default) counts
    them as already present and exits 0."""
    linked = cli(
        "import", "customers", str(_file(tmp_path, "a.csv", FIRST)), "--on-duplicate", "link"
    )
    assert (linked.exit_code, linked.stderr) == (0, "")
    assert "2 rows read, 1 accepted, 1 already present, 0 rejected (1 duplicates linked)" in (
        linked.stdout
    )
    again = cli(
        "import", "customers", str(_file(tmp_path, "b.csv", "zahra@example.com,,,,,crm,3\n"))
    )
    assert (
        again.exit_code,
        again.stdout.strip(),
    ) == (0, "1 rows read, 0 accepted, 1 already present, 0 rejected")


def test_duplicates_lists_pairs_and_reindex_counts(cli: Cli, tmp_path: Path) -> None:
    """`customers duplicates` prints one line per pair (ids and reasons)
    and a count; `customers reindex` finds nothing left to backfill on a new vault."""
    twice = (
        "a@example.com,,Ana,Silva,1980-01-01,crm,1\nb@example.com,,ANA, silva ,1980-01-01,crm,2\n"
    )
    assert cli("import", "customers", str(_file(tmp_path, "a.csv", twice))).exit_code == 0
    listed = cli("customers", "duplicates")
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert (len(lines), lines[-1]) == (2, "1 candidate pairs")
    keep, duplicate, reasons = lines[0].split()
    assert (len(keep), len(duplicate), reasons) == (36, 36, "name_and_birth_date")
    assert "ana" not in listed.stdout.lower()
    reindexed = cli("customers", "reindex")
    assert (reindexed.exit_code, reindexed.stdout.strip()) == (0, "0 customers reindexed")
    assert cli("customers", "duplicates", "--limit", "0").exit_code == 2
