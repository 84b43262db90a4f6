"""The sizes and options of one run: ``--quick`` and the defaults resolved into a
frozen :class:`Plan`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import bench.graphql


@dataclass(frozen=True)
class Plan:
    customers: int
    interactions: int
    ids: int
    subject_ids: int
    warmup: float
    duration: float
    repeat: int
    connections: int
    threads: int
    processes: tuple[int, ...]
    load_workers: int
    profile: bool
    seed: int
    server: str = "granian"


def parse_plan(argv: Sequence[str] | None) -> tuple[Plan, Path | None]:
    p = argparse.ArgumentParser(
        prog="python -m bench.graphql",
        description=(bench.graphql.__doc__ or "").splitlines()[0],
    )
    p.add_argument("--customers", type=int, default=100_000)
    p.add_argument("--interactions", type=int, default=1_000_000)
    p.add_argument("--quick", action="store_true", help="2,000 customers, 4 s runs")
    p.add_argument("--ids", type=int, default=10_000, help="customer ids to draw from")
    p.add_argument("--subject-ids", type=int, default=1_000, help="data_subject tokens")
    p.add_argument("--warmup", type=float, help="seconds (default 15, quick 3)")
    p.add_argument("--duration", type=float, help="seconds per timed run (default 20, quick 4)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--processes", default="1,2", help="server process counts")
    p.add_argument("--load-workers", type=int, default=2, help="processes writing the data")
    p.add_argument("--profile", action="store_true", help="py-spy our 1-process server")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument(
        "--server",
        choices=("granian", "uvicorn"),
        default="granian",
        help="our HTTP server (cvault serve's default: granian)",
    )
    p.add_argument("--json", type=Path, help="also write all results here")
    a = p.parse_args(argv)
    customers, interactions = a.customers, a.interactions
    if a.quick:
        customers, interactions = 2_000, 20_000
    warmup = a.warmup if a.warmup is not None else (3.0 if a.quick else 15.0)
    duration = a.duration if a.duration is not None else (4.0 if a.quick else 20.0)
    ids = min(a.ids, customers)
    plan = Plan(
        customers=customers,
        interactions=interactions,
        ids=ids,
        subject_ids=min(a.subject_ids, ids),
        warmup=warmup,
        duration=duration,
        repeat=a.repeat,
        connections=a.connections,
        threads=a.threads,
        processes=tuple(int(n) for n in a.processes.split(",")),
        load_workers=max(1, a.load_workers),
        profile=a.profile,
        seed=a.seed,
        server=a.server,
    )
    return plan, a.json
