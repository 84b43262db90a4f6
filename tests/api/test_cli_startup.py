"""`cvault` starts without the vault: the command list and a development token import
neither SQLAlchemy nor Strawberry (nor, for the help, Casbin or the crypto library).

Counted, not timed: each command runs in a fresh interpreter that prints, at exit, which
of the heavy packages it imported (bench/cli_startup.py measures the seconds)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("sqlalchemy", "strawberry", "casbin", "cryptography", "alembic", "graphql")
_REPORT = (
    "import atexit, sys\n"
    "heavy = set({heavy!r})\n"
    "atexit.register(lambda: print('HEAVY', sorted(heavy & {{m.split('.')[0] for m in "
    "sys.modules}}), file=sys.stderr))\n"
    "sys.argv = ['cvault', *{args!r}]\n"
    "from api.cli import main\n"
    "main()\n"
)


def imported(args: list[str], tmp_path: Path) -> tuple[int, str, list[str]]:
    """Run `cvault ARGS` in a fresh interpreter: exit code, stdout, heavy packages loaded."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CVAULT_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        [sys.executable, "-c", _REPORT.format(heavy=HEAVY, args=args)],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    line = next(x for x in done.stderr.splitlines() if x.startswith("HEAVY "))
    return done.returncode, done.stdout, eval(line.removeprefix("HEAVY "))


def test_help_imports_none_of_the_heavy_packages(tmp_path: Path) -> None:
    """`cvault --help` lists every command group without importing SQLAlchemy, Strawberry,
    Casbin, cryptography, Alembic or graphql-core."""
    code, output, heavy = imported(["--help"], tmp_path)
    assert (code, heavy) == (0, [])
    for group in ("init", "import", "audit", "dsr", "policy", "token", "retention"):
        assert group in output


def test_group_help_imports_none_of_the_heavy_packages(tmp_path: Path) -> None:
    """A command group's help (`cvault dsr --help`, `cvault audit export --help`) is as light."""
    for args in (
        ["dsr", "--help"],
        ["audit", "export", "--help"],
        ["policy", "--help"],
        ["documents", "--help"],
        ["schema", "--help"],
    ):
        code, _, heavy = imported(args, tmp_path)
        assert (args, code, heavy) == (args, 0, [])


def test_token_issue_needs_no_database_layer(tmp_path: Path) -> None:
    """`cvault token issue` signs a token (so loads the signing library) without importing
    SQLAlchemy, Strawberry, Alembic or graphql-core."""
    code, output, heavy = imported(["token", "issue", "--role", "analyst", "--sub", "a"], tmp_path)
    assert code == 0
    assert output.count(".") == 2  # one JWT: header.payload.signature
    assert set(heavy) & {"sqlalchemy", "strawberry", "alembic", "graphql"} == set()


def test_token_issue_with_a_malformed_customer_id_prints_one_line(tmp_path: Path) -> None:
    """`cvault token issue --customer-id not-a-uuid` exits 2 with one line naming the
    option (no traceback, no echo of the value)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CVAULT_DATA_DIR": str(tmp_path / "data")}
    args = ["token", "issue", "--role", "data_subject", "--sub", "s", "--customer-id", "nope-x"]
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    expected = (2, "", ["error: --customer-id is not a customer id (a UUID)"])
    assert (done.returncode, done.stdout, done.stderr.splitlines()) == expected
