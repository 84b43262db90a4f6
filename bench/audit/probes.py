"""What a measure reads around its timed work: wall and CPU time, a PostgreSQL backend's
CPU, the machine's load from others, peak memory, and an optional CPU-time profile."""

from __future__ import annotations

import cProfile
import os
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.common import CLK_TCK


def backend_cpu(pid: int | None) -> float | None:
    """CPU seconds a PostgreSQL backend has used (None if /proc does not show it)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine() -> tuple[float, float, float]:
    """(busy, steal, total) jiffies of the whole machine, from /proc/stat."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return (0.0, 0.0, 0.0)
    idle = values[3] + values[4]
    steal = values[7] if len(values) > 7 else 0
    total = sum(values[:8])
    return (float(total - idle - steal), float(steal), float(total))


def machine_share(before: tuple[float, float, float], ours: float = 0.0) -> dict[str, float]:
    """Busy and steal shares of the machine since ``before``, and how many cores others
    (not ``ours`` CPU seconds) kept busy meanwhile: the machine is shared."""
    after = machine()
    total = after[2] - before[2]
    if total <= 0:
        return {}
    cores = os.cpu_count() or 1
    wall = total / CLK_TCK / cores
    busy = (after[0] - before[0]) / CLK_TCK
    return {
        "machine_busy_pct": round(100 * busy / wall / cores, 1),
        "steal_pct": round(100 * (after[1] - before[1]) / total, 1),
        "other_cores": round(max(0.0, busy - ours) / wall, 2),
    }


def status_kb(field: str) -> int:
    """A ``kB`` field of ``/proc/self/status`` (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def memory() -> dict[str, float]:
    return {
        "maxrss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "hwm_mib": round(status_kb("VmHWM") / 1024, 1),
    }


@dataclass
class Span:
    """One timed block: its start and end (``perf_counter``), the CPU seconds of this
    process, and those of a PostgreSQL backend (None if /proc did not show them)."""

    start: float = 0.0
    end: float = 0.0
    cpu: float = 0.0
    server_cpu: float | None = None

    @property
    def wall(self) -> float:
        return self.end - self.start


@contextmanager
def timed(pid: int | None) -> Iterator[Span]:
    """Measure the block: wall and CPU time here, CPU time of the backend ``pid``."""
    span = Span()
    server = backend_cpu(pid)
    cpu = time.process_time()
    span.start = time.perf_counter()
    yield span
    span.end = time.perf_counter()
    span.cpu = time.process_time() - cpu
    after = backend_cpu(pid)
    span.server_cpu = None if server is None or after is None else after - server


@contextmanager
def profiled(path: str | None) -> Iterator[None]:
    """cProfile the block in CPU time into ``path`` (nothing without a path)."""
    if not path:
        yield
        return
    profile = cProfile.Profile(time.process_time)  # CPU time: waits on the server drop out
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        profile.dump_stats(path)
