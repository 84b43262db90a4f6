"""The audit benchmark's results: each measure's runs summed up (median, best and the
median of every extra they carry), as JSON lines while they come and a markdown table
of rows beside their floors at the end."""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass
from typing import Any

from bench.common import emit


def record(results: list[dict[str, Any]], result: dict[str, Any]) -> None:
    """Keep one result for the ``--json`` file and print it as a JSON line."""
    results.append(result)
    emit(result)


def summary(runs: list[dict[str, Any]], key: str, *, higher: bool) -> dict[str, Any]:
    values = [r[key] for r in runs]
    out: dict[str, Any] = {
        "best": max(values) if higher else min(values),
        "median": statistics.median(values),
        "runs": len(runs),
    }
    extras = ("cpu_ms_per_1k", "server_cpu_ms_per_1k", "cpu",
              "server_cpu", "hwm_mib", "maxrss_mib", "base_rss_mib", "steal_pct",
              "machine_busy_pct", "other_cores")  # fmt: skip
    for extra in extras:
        got = [r[extra] for r in runs if r.get(extra) is not None]
        if got:
            out[extra] = statistics.median(got)
    return out


@dataclass
class Row:
    measure: str
    unit: str  # "entries/s" (higher is better) or "s" (lower is better)
    vault: dict[str, Any]
    floor_name: str
    floor: dict[str, Any] | None
    target: str
    met: bool | None
    note: str = ""


def _fmt(value: float, unit: str) -> str:
    return f"{value:,.0f}" if unit == "entries/s" else f"{value:.2f}"


def _cpu_text(s: dict[str, Any], unit: str) -> str:
    if unit == "entries/s":
        client, server = s["cpu_ms_per_1k"], s.get("server_cpu_ms_per_1k")
        if server is None:
            return f"{client:.1f}"
        capacity = (os.cpu_count() or 1) * 1e6 / (client + server) if client + server else 0
        return f"{client:.1f} + {server:.1f} (CPU-bound: {capacity / 1000:,.1f}k/s)"
    server = s.get("server_cpu")
    return f"{s['cpu']:.2f} s" + ("" if server is None else f" + {server:.2f} s")


def print_table(rows: list[Row], meta: dict[str, Any]) -> None:
    print()
    print(f"{meta['date']} on {meta['host']} ({meta['cpus']} CPUs, {meta['python']}, "
          f"{meta['postgres']}); {meta['entries']:,} entries, {meta['writers']} writers, "
          f"median and best of {meta['repeat']} runs")  # fmt: skip
    print()
    print(
        "| measure | result (median / best) | CPU client + server | floor "
        "| floor (median / best) | floor CPU client + server | time vs floor (median) "
        "| others' load (cores) | target | met |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        u = r.unit
        result = f"{_fmt(r.vault['median'], u)} / {_fmt(r.vault['best'], u)} {u}"
        if "hwm_mib" in r.vault:
            result += f", peak RSS {r.vault['hwm_mib']:.0f} MiB"
        if r.floor is None:
            floor_result = floor_cpu = ratio = "-"
        else:
            floor_result = f"{_fmt(r.floor['median'], u)} / {_fmt(r.floor['best'], u)} {u}"
            floor_cpu = _cpu_text(r.floor, u)
            times = (
                r.floor["median"] / r.vault["median"]
                if u == "entries/s"
                else r.vault["median"] / r.floor["median"]
            )
            ratio = f"{times:.2f}x"
        others = r.vault.get("other_cores")
        load = "-" if others is None else f"{others:.2f}"
        met = "-" if r.met is None else ("yes" if r.met else "**no**")
        cells = [f"{r.measure}{r.note}", result, _cpu_text(r.vault, u), r.floor_name,
                 floor_result, floor_cpu, ratio, load, r.target, met]  # fmt: skip
        print("| " + " | ".join(cells) + " |")
    print()
    print(
        "CPU: for rates, CPU-ms per 1,000 entries, client processes + their PostgreSQL\n"
        "backends, and the rate those would allow if they had every core; for times, CPU\n"
        "seconds. Others' load: cores kept busy meanwhile by processes not measured here\n"
        "(the machine is shared). Peak RSS: VmHWM of the fresh interpreter that ran it\n"
        "(its ru_maxrss is floored at its parent's peak, inherited across fork and exec)."
    )
