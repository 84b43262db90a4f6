"""bench/pages.py still measures what it says: in its smoke mode (20 demo customers, a few
requests) it sets up a real ``cvault serve`` on SQLite, signs a customer in through the
outbox and an officer in through ``cvault console link``, and every request of every view
at both concurrencies is a good answer. Counted, never timed (the bench is SQLite only, as
``make run`` is)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.processes

ROOT = Path(__file__).resolve().parents[2]
VIEWS = {
    "healthz (floor)", "privacy: data", "privacy: consents", "privacy: access history",
    "privacy: requests", "console: audit, no filter", "console: audit, customer + action",
    "console: audit, purpose + outcome (scan)",
}  # fmt: skip


def test_the_smoke_run_gets_a_good_answer_to_every_request(tmp_path: Path) -> None:
    """Exit 0; per view and concurrency (1 and 8) the 8 requests sent are 8 answered 200,
    with no failure of any kind."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "bench.pages", "--smoke", "--concurrency", "1,8"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
    measured = {(r["view"], r["concurrency"]): r for r in lines if "view" in r}
    none: dict[str, int] = {}
    expected = {(view, c): (8, 8, none) for view in VIEWS for c in (1, 8)}
    actual = {key: (r["requests"], r["ok"], r["failures"]) for key, r in measured.items()}
    assert expected == actual
    loads = [r["concurrency"] for r in lines if "load_before" in r and "view" not in r]
    assert loads == [1, 8]
