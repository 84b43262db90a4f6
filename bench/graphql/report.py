"""The markdown tables printed at the end: the race (with the ratio to PostGraphile
and the targets of issue 15), one connection, memory, and where our CPU goes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# Issue 15's targets for the support agent's profile query (16 connections unless noted).
RATIO_TARGET = 0.4  # req/s vs PostGraphile's at the same process count
SERVER_CPU_TARGET_MS = 1.5  # server CPU-ms per request
POSTGRES_CPU_TARGET_MS = 0.5  # PostgreSQL CPU-ms per request
P99_OVER_P50_TARGET = 3.0  # p99 at 16 connections <= 3x its p50
ONE_CONNECTION_P50_TARGET_MS = 1.5  # p50 at one connection, one process


def _pg_own(s: dict[str, Any]) -> float:
    """PostgreSQL CPU-ms per request of the server's own backends (results written
    before that was measured: all of PostgreSQL's)."""
    return float(s.get("postgres_own_cpu_ms_per_req", s["postgres_cpu_ms_per_req"]))


def _targets(s: dict[str, Any], ratio: float) -> str:
    """Which of issue 15's targets a row of ours reached (the support agent's are the
    targets; the data subject's row is shown against the same bars for comparison)."""
    checks = {
        f">= {RATIO_TARGET}x": ratio >= RATIO_TARGET,
        f"CPU <= {SERVER_CPU_TARGET_MS}": s["server_cpu_ms_per_req"] <= SERVER_CPU_TARGET_MS,
        f"PG <= {POSTGRES_CPU_TARGET_MS}": _pg_own(s) <= POSTGRES_CPU_TARGET_MS,
        f"p99 <= {P99_OVER_P50_TARGET:g}x p50": s["p99_ms"] <= P99_OVER_P50_TARGET * s["p50_ms"],
    }
    return ", ".join(f"{name} {'met' if ok else 'missed'}" for name, ok in checks.items())


def table(summaries: Sequence[dict[str, Any]], header: dict[str, Any]) -> str:
    lines = [
        f"{header['date']} on {header['host']} ({header['cpus']} CPUs, Python "
        f"{header['python']}, Node {header['node']}, PostGraphile {header['postgraphile']}, "
        f"uvicorn loop={header['loop']} http={header['http']})",
        f"Data: {header['customers']:,} customers / {header['interactions']:,} interactions; "
        f"{header['ids']:,} random ids ({header['subject_ids']:,} for data_subject); wrk "
        f"{header['threads']} threads, {header['connections']} connections, "
        f"{header['warmup']:g} s warm-up, {header['repeat']} x {header['duration']:g} s. "
        f"Load (not raced): {header['load']}.",
        "",
        "| server | caller | processes | req/s (median) | runs | p50 ms | p99 ms "
        "| server CPU-ms/req | PostgreSQL CPU-ms/req: own backends (all) "
        "| PG sessions opened per 1k req "
        "| connections per worker | req/s vs PostGraphile | target |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in summaries:
        peer = next(
            (p for p in summaries
             if p["server"] == "postgraphile" and p["processes"] == s["processes"]), None,
        )  # fmt: skip
        ratio, target = "-", "-"
        if s["server"] == "ours" and peer is not None:
            r = s["req_s"] / peer["req_s"]
            ratio = f"{r:.2f}x"
            target = _targets(s, r)
        split = "-"
        if s["processes"] > 1:
            split = ", ".join("/".join(str(c) for c in runs or []) for runs in
                              s["connections_by_worker"])  # fmt: skip
        runs = " / ".join(f"{x:,.0f}" for x in s["runs_req_s"])
        lines.append(
            f"| {s['server']} | {s['caller']} | {s['processes']} | {s['req_s']:,.0f} | {runs} "
            f"| {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | {s['server_cpu_ms_per_req']:.2f} "
            f"| {_pg_own(s):.2f} ({s['postgres_cpu_ms_per_req']:.2f}) "
            f"| {s['pg_sessions_per_1k_req']:.1f} | {split} "
            f"| {ratio} | {target} |"
        )
    return "\n".join(lines)


def single_table(single: Sequence[dict[str, Any]]) -> str:
    lines = [
        "One connection, one process (no queueing: the per-request latency floor):",
        "",
        "| server | caller | req/s | p50 ms | p99 ms | server CPU-ms/req "
        "| PostgreSQL CPU-ms/req: own backends (all) | target |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in single:
        target = "-"
        if r["server"] == "ours":
            met = "met" if r["p50_ms"] <= ONE_CONNECTION_P50_TARGET_MS else "missed"
            target = f"{met} (p50 <= {ONE_CONNECTION_P50_TARGET_MS} ms)"
        lines.append(
            f"| {r['server']} | {r['caller']} | {r['req_s']:,.0f} | {r['p50_ms']:.2f} "
            f"| {r['p99_ms']:.2f} | {r['server_cpu_ms_per_req']:.2f} "
            f"| {_pg_own(r):.2f} ({r['postgres_cpu_ms_per_req']:.2f}) | {target} |"
        )
    return "\n".join(lines)


def profile_table(found: dict[str, Any]) -> str:
    lines = [
        f"Where our 1-process server's CPU goes (py-spy, {found['samples']:,} GIL samples, "
        f"{found['cpu_ms_per_req']:.2f} CPU-ms per request; {found['flamegraph']}):",
        "",
        "| innermost function of ours on the stack | share | CPU-ms/req | spent in |",
        "| --- | --- | --- | --- |",
    ]
    for row in found["by_innermost_function_of_ours"]:
        spent = ", ".join(f"{k} {v}%" for k, v in row["in"].items())
        lines.append(
            f"| {row['function']} | {row['pct']}% | {row['cpu_ms_per_req']:.3f} | {spent} |"
        )
    packages = ", ".join(f"{k} {v}%" for k, v in list(found["self_by_package_pct"].items())[:12])
    lines += ["", f"Self time by package: {packages}."]
    return "\n".join(lines)


RSS_TARGET_MB = 200.0  # issue 15 item 7: each of our processes after the race


def memory_table(memory: Sequence[dict[str, Any]]) -> str:
    lines = [
        "Resident memory after the race (VmRSS of each process, MB):",
        "",
        "| server | processes | per process (role: MB) | total MB | target |",
        "| --- | --- | --- | --- | --- |",
    ]
    for m in memory:
        each = ", ".join(f"{p['role']} {p['mb']:.0f}" for p in m["rss_mb"])
        target = "-"
        if m["server"] == "ours":
            top = max((p["mb"] for p in m["rss_mb"]), default=0.0)
            met = "met" if top <= RSS_TARGET_MB else "missed"
            target = f"{met} (each <= {RSS_TARGET_MB:.0f} MB)"
        lines.append(
            f"| {m['server']} | {m['processes']} | {each} | {m['total_mb']:.0f} | {target} |"
        )
    return "\n".join(lines)
