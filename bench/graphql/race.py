"""The race: the tokens and wrk scripts of a run, both servers at each process count
(cross-checked to hold the same data, then raced in alternation), the one-connection
runs and the profile, and the report of what was collected."""

from __future__ import annotations

import random
import statistics
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from api.auth import LocalTokenIssuer
from bench.common import emit
from bench.graphql.client import OUR_QUERY, PEER_QUERY, post
from bench.graphql.plan import Plan
from bench.graphql.profiling import profile
from bench.graphql.report import memory_table, profile_table, single_table, table
from bench.graphql.servers import Server, memory_of, start_ours, start_peer, wait_ready
from bench.graphql.target import Target
from bench.graphql.wrk import lua_script, run_wrk
from policies import Role

_FIELDS = ("id", "email", "phone", "firstName", "lastName", "birthDate", "address")


def _view(customer: dict[str, Any], connection: str) -> dict[str, Any]:
    """What both servers must agree on: the fields, and the page's interactions."""
    edges = customer[connection]["edges"]
    return {k: customer[k] for k in _FIELDS} | {
        "interactions": sorted(e["node"]["id"] for e in edges),
        "amounts": sorted(str(e["node"]["amount"]) for e in edges),
    }


def cross_check(ours: Server, peer: Server, ids: Sequence[uuid.UUID], tokens: Sequence[str],
                agent: str) -> dict[str, Any]:  # fmt: skip
    """Same data in both: a data subject sees its record in clear, as PostGraphile does;
    a support agent gets masks, a null birth date listed as redacted, no errors."""
    checked = 0
    for cid, token in zip(ids, tokens, strict=False):
        mine = post(ours.url, OUR_QUERY, {"id": str(cid)},
                    {"Authorization": f"Bearer {token}", "X-Purpose": "self"})  # fmt: skip
        theirs = post(peer.url, PEER_QUERY, {"id": str(cid)}, {})
        if mine.get("errors") or theirs.get("errors"):
            raise RuntimeError(f"errors: {mine.get('errors')} {theirs.get('errors')}")
        a = _view(mine["data"]["customer"], "interactions")
        b = _view(theirs["data"]["pgCustomerById"], "pgInteractionsByCustomerId")
        if a != b:
            raise RuntimeError(f"servers disagree on {cid}: {a} != {b}")
        checked += 1
    sample = post(ours.url, OUR_QUERY, {"id": str(ids[0])},
                  {"Authorization": f"Bearer {agent}", "X-Purpose": "support"})  # fmt: skip
    if sample.get("errors") or sample["data"]["customer"]["birthDate"] is not None:
        raise RuntimeError(f"support agent view is wrong: {sample}")
    return {"event": "cross_check", "customers_identical": checked,
            "support_agent_sample": sample["data"]["customer"] | {"interactions": "..."},
            "support_agent_extensions": sample.get("extensions")}  # fmt: skip


@dataclass
class Variant:
    """A server x a caller: what is measured, with its wrk script."""

    label: str
    server: Server
    script: Path
    runs: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        def med(key: str) -> float:
            return round(float(statistics.median(r[key] for r in self.runs)), 2)

        out: dict[str, Any] = {
            "server": self.server.name, "caller": self.label,
            "processes": self.server.processes,
            "req_s": med("req_s"), "runs_req_s": [r["req_s"] for r in self.runs],
            "p50_ms": med("p50_ms"), "p99_ms": med("p99_ms"),
            "server_cpu_ms_per_req": med("server_cpu_ms_per_req"),
            "postgres_cpu_ms_per_req": med("postgres_cpu_ms_per_req"),
            "postgres_own_cpu_ms_per_req": med("postgres_own_cpu_ms_per_req"),
            "non_2xx": sum(r["non_2xx"] for r in self.runs),
            "pg_sessions_per_1k_req": round(
                1000 * sum(r["pg_sessions_opened"] for r in self.runs)
                / max(1, sum(r["requests"] for r in self.runs)), 1),
        }  # fmt: skip
        if self.server.processes > 1:
            out["connections_by_worker"] = [r.get("connections_by_worker") for r in self.runs]
            out["cpu_share_by_worker"] = [r.get("cpu_share_by_worker") for r in self.runs]
        return out


def race(plan: Plan, variants: Sequence[Variant]) -> None:
    """Warm every variant up, then alternate their timed runs."""
    for v in variants:
        warm = run_wrk(plan, v.server, v.script, plan.warmup)
        emit({"event": "warmup", "server": v.server.name, "caller": v.label,
              "processes": v.server.processes, "req_s": warm["req_s"]})  # fmt: skip
    for n in range(plan.repeat):
        for v in variants:
            result = run_wrk(plan, v.server, v.script, plan.duration)
            v.runs.append(result)
            emit({"event": "run", "server": v.server.name, "caller": v.label,
                  "processes": v.server.processes, "run": n + 1} | result)  # fmt: skip


def _tokens(target: Target, ids: Sequence[uuid.UUID]) -> tuple[str, list[str]]:
    settings = target.settings()
    issuer = LocalTokenIssuer.load_or_create(
        settings.jwt_signing_key, settings.jwt_issuer, settings.jwt_audience
    )
    ttl = timedelta(hours=12)
    agent = issuer.issue("bench-agent", Role.SUPPORT_AGENT, ttl=ttl)
    subjects = [issuer.issue(f"bench-subject-{n}", Role.DATA_SUBJECT, customer_id=cid, ttl=ttl)
                for n, cid in enumerate(ids)]  # fmt: skip
    return agent, subjects


@dataclass
class Race:
    """Everything one run collects, and the servers to stop whatever happens."""

    plan: Plan
    target: Target
    workdir: Path
    binary: Path
    chosen: list[uuid.UUID] = field(default_factory=list)
    scripts: dict[str, Path] = field(default_factory=dict)
    agent: str = ""
    subject_ids: list[uuid.UUID] = field(default_factory=list)
    subject_tokens: list[str] = field(default_factory=list)
    servers: list[Server] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    summaries: list[dict[str, Any]] = field(default_factory=list)
    single: list[dict[str, Any]] = field(default_factory=list)
    header: dict[str, Any] = field(default_factory=dict)
    memory: list[dict[str, Any]] = field(default_factory=list)

    def prepare(self, ids: list[uuid.UUID]) -> None:
        plan, workdir = self.plan, self.workdir
        self.chosen = random.Random(plan.seed + 1).sample(ids, plan.ids)
        self.subject_ids = self.chosen[: plan.subject_ids]
        self.agent, self.subject_tokens = _tokens(self.target, self.subject_ids)
        self.scripts = {
            "agent": lua_script(workdir / "agent.lua", OUR_QUERY, self.chosen, self.headers),
            "subject": lua_script(workdir / "subject.lua", OUR_QUERY, self.subject_ids,
                                  {"X-Purpose": "self"}, self.subject_tokens),
            "peer": lua_script(workdir / "peer.lua", PEER_QUERY, self.chosen, {}),
        }  # fmt: skip

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.agent}", "X-Purpose": "support"}

    def at_processes(self, processes: int) -> None:
        """Both servers at one process count: check, race, one connection, profile."""
        plan, first = self.plan, str(self.chosen[0])
        ours = start_ours(self.target, processes, self.workdir, plan.server)
        self.servers.append(ours)
        peer = start_peer(self.target, processes, self.workdir, self.binary)
        self.servers.append(peer)
        self.header |= {"server": ours.notes["server"], "loop": ours.notes["loop"],
                        "http": ours.notes["http"]}  # fmt: skip
        wait_ready(ours, (OUR_QUERY, {"id": first}, self.headers))
        wait_ready(peer, (PEER_QUERY, {"id": first}, {}))
        emit({"event": "servers", "processes": processes, "ours": ours.notes,
              "ours_workers": ours.workers(), "peer_workers": peer.workers()})  # fmt: skip
        emit(cross_check(ours, peer, self.subject_ids[:25], self.subject_tokens[:25], self.agent))
        variants = [
            Variant("support_agent (support)", ours, self.scripts["agent"]),
            Variant("-", peer, self.scripts["peer"]),
        ]
        race(plan, variants)
        subject = Variant("data_subject (self, all clear)", ours, self.scripts["subject"])
        race(plan, [subject])
        for server in (ours, peer):  # memory after the race, every process of each server
            self.memory.append(memory_of(server))
            emit({"event": "memory"} | self.memory[-1])
        for v in [*variants, subject]:
            self.summaries.append(v.summary())
            self.results.append(self.summaries[-1] | {"runs": v.runs})
            emit({"event": "summary"} | self.summaries[-1])
        if processes == 1:  # latency without queueing: one connection
            for v in variants:
                one = run_wrk(plan, v.server, v.script, plan.duration, connections=1)
                self.single.append({"server": v.server.name, "caller": v.label} | one)
                emit({"event": "one_connection"} | self.single[-1])
            if plan.profile:
                cpu = variants[0].summary()["server_cpu_ms_per_req"]  # the support agent's
                found = profile(plan, ours, self.scripts["agent"], cpu)
                if found is not None:
                    emit(found)
                    self.results.append(found)
        for server in (ours, peer):
            server.stop()

    def report(self) -> str:
        order = {"ours": 0, "postgraphile": 1}
        self.summaries.sort(
            key=lambda s: (s["processes"], order[s["server"]], s["caller"].startswith("data"))
        )
        parts = [table(self.summaries, self.header)]
        if self.single:
            parts.append(single_table(self.single))
        if self.memory:
            parts.append(memory_table(self.memory))
        parts += [profile_table(r) for r in self.results if r.get("event") == "profile"]
        return "\n\n".join(parts)
