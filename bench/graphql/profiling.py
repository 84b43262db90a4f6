"""``--profile``: py-spy on our one-process server under load, and where its CPU goes
(by package, by function, by the innermost function of ours on each stack)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import emit
from bench.graphql.plan import Plan
from bench.graphql.servers import Server

OUT_DIR = Path(__file__).resolve().parents[1] / "out"


def profile(plan: Plan, server: Server, script: Path, cpu_ms: float) -> dict[str, Any] | None:
    """py-spy under load (GIL-holding samples: the interpreter's CPU): a flame graph,
    collapsed stacks, and where the CPU goes, as shares and as CPU-ms per request
    (``cpu_ms``: the server's CPU-ms per request measured in the timed runs)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        emit({"event": "profile", "skipped": "py-spy not installed"})
        return None
    OUT_DIR.mkdir(exist_ok=True)
    seconds = max(10, int(plan.duration))
    raw, svg = OUT_DIR / "graphql-profile.txt", OUT_DIR / "graphql-profile.svg"
    load = subprocess.Popen(  # noqa: S603
        ["wrk", f"-t{plan.threads}", f"-c{plan.connections}",  # noqa: S607
         f"-d{2 * seconds + 6}s", "-s", str(script), server.url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(2)
        for fmt, path in (("raw", raw), ("flamegraph", svg)):
            subprocess.run(  # noqa: S603
                [spy, "record", "--pid", str(server.workers()[0]), "--duration", str(seconds),
                 "--rate", "250", "--gil", "--nonblocking", "--format", fmt, "-o", str(path)],
                check=True, capture_output=True,
            )  # fmt: skip
    finally:
        load.wait()
    found = summarise(raw, cpu_ms)
    return {"event": "profile", "raw": str(raw), "flamegraph": str(svg)} | found


_PACKAGES = (
    ("graphql/", "graphql-core"), ("strawberry/", "strawberry"), ("sqlalchemy/", "sqlalchemy"),
    ("psycopg", "psycopg"), ("uvicorn/", "uvicorn"), ("starlette/", "starlette"),
    ("anyio/", "anyio"), ("asyncio/", "asyncio"), ("uvloop/", "uvloop"),
    ("structlog/", "structlog"), ("logging/", "logging"), ("joserfc/", "joserfc (JWT)"),
    ("cryptography/", "cryptography"), ("prometheus_client/", "prometheus_client"),
    ("casbin/", "casbin"), ("api/", "api (ours)"), ("vault/crypto/", "vault.crypto (ours)"),
    ("vault/", "vault (ours)"), ("policies/", "policies (ours)"), ("audit/", "audit (ours)"),
    ("json/", "json"), ("threading.py", "threading"), ("concurrent/", "concurrent"),
)  # fmt: skip
_OURS = ("api/", "vault/", "policies/", "audit/")


def _where(frame: str) -> str:
    return frame[frame.rfind("(") + 1 :]


def _package(frame: str) -> str:
    where = _where(frame)
    for needle, name in _PACKAGES:
        if needle in where:
            return name
    return "other: " + where.split(":")[0][-40:]


def _function(frame: str) -> str:
    """``CustomerService.get (vault/customers/service.py)``: the frame without its line number."""
    return re.sub(r":\d+\)$", ")", frame)


def summarise(raw: Path, cpu_ms: float, top: int = 25) -> dict[str, Any]:
    """Shares of the samples: self time by package; inclusive time by function; and by
    the innermost function of ours on the stack (what our code asked for), with the
    packages that did the work under it, converted to CPU-ms per request."""
    total = 0
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    under: dict[str, Counter[str]] = {}
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += n
        leaf = _package(frames[-1])
        own[leaf] += n
        for name in {_function(f) for f in frames}:
            inclusive[name] += n
        mine = [f for f in frames if _where(f).startswith(_OURS)]
        bucket = _function(mine[-1]) if mine else f"(no code of ours: {leaf})"
        ours[bucket] += n
        under.setdefault(bucket, Counter())[leaf] += n
    share = 100.0 / max(1, total)
    return {
        "samples": total,
        "cpu_ms_per_req": cpu_ms,
        "self_by_package_pct": {k: round(v * share, 1) for k, v in own.most_common()},
        "inclusive_pct": {k: round(v * share, 1) for k, v in inclusive.most_common(top)},
        "by_innermost_function_of_ours": [
            {
                "function": name,
                "pct": round(n * share, 1),
                "cpu_ms_per_req": round(n * share * cpu_ms / 100, 3),
                "in": {k: round(v * share, 1) for k, v in under[name].most_common(4)},
            }
            for name, n in ours.most_common(top)
        ],
    }
