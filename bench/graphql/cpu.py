"""CPU accounting from ``/proc``: a process tree's CPU by pid, PostgreSQL's (exited
backends included), and the difference between two readings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.common import CLK_TCK


@dataclass(frozen=True)
class Proc:
    """One process from ``/proc/<pid>/stat``: CPU seconds of its own and of its
    children that exited (a PostgreSQL backend's CPU lands in the postmaster's)."""

    ppid: int
    name: str
    cpu: float
    reaped: float


def all_stats() -> dict[int, Proc]:
    out: dict[int, Proc] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        rest = raw[raw.rfind(")") + 2 :].split()
        out[int(entry.name)] = Proc(
            ppid=int(rest[1]),
            name=raw[raw.find("(") + 1 : raw.rfind(")")],
            cpu=(int(rest[11]) + int(rest[12])) / CLK_TCK,
            reaped=(int(rest[13]) + int(rest[14])) / CLK_TCK,
        )
    return out


def tree_cpu(root: int) -> dict[int, float]:
    """CPU seconds of a process and all its live descendants, by pid."""
    stats = all_stats()
    children: dict[int, list[int]] = {}
    for pid, proc in stats.items():
        children.setdefault(proc.ppid, []).append(pid)
    out: dict[int, float] = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            out[pid] = stats[pid].cpu
            todo.extend(children.get(pid, []))
    return out


def postgres_cpu() -> dict[int, float]:
    """CPU seconds of every PostgreSQL process, plus (under the key 0) what backends
    that already exited used: a pool that churns connections leaves no live backend."""
    stats = all_stats()
    out = {pid: p.cpu for pid, p in stats.items() if p.name == "postgres"}
    out[0] = sum(
        p.reaped
        for p in stats.values()
        if p.name == "postgres" and stats.get(p.ppid, Proc(0, "", 0, 0)).name != "postgres"
    )
    return out


def delta(before: dict[int, float], after: dict[int, float]) -> dict[int, float]:
    """CPU used in between, by pid. A process that exited in between is counted through
    its parent's reaped time (key 0), so what it had used before is taken off."""
    out = {pid: after[pid] - before.get(pid, 0.0) for pid in after}
    for pid in before.keys() - after.keys():
        out[pid] = -before[pid]
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def rss_mb(pid: int) -> float | None:
    """Resident memory of a live process in MB (``VmRSS`` of ``/proc/<pid>/status``),
    or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:  # noqa: PTH123
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def tree_rss_mb(root: int) -> dict[int, float]:
    """Resident memory in MB of a process and each of its live descendants, by pid."""
    out: dict[int, float] = {}
    for pid in tree_cpu(root):
        rss = rss_mb(pid)
        if rss is not None:
            out[pid] = round(rss, 1)
    return out
