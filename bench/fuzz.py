"""The long fuzzing run (issue 13, item 10): generated GraphQL operations for every role.

The harness of ``tests/api/test_fuzz.py`` (operations from the live schema through
hypothesis-graphql, every answer checked by ``tests.fuzzing.problems``, counted by
``Tally``), run longer and with random seeds: ``--operations`` per role (5,000 by
default) through the real ASGI app (Starlette's TestClient, lifespan and background
tasks included) over a fresh vault on SQLite or PostgreSQL.

The roles run one after the other against the same vault (admin's accepted writes
stay for the roles after it); after each role, and at the end, the policy in force is
compared with the shipped default. The floor beside each role is the same client
posting ``{ __typename }`` (parsing, authentication, the purpose check, the answer).

Reported per role: operations sent, answers by HTTP status, error codes, the problems
found (each kind with a count and an example operation), wall time and operations/s.
Exit status 1 when a problem was found or the policy changed.

Run: ``python -m bench.fuzz --operations 5000 --backend sqlite`` (about 100 ms per
operation on a 2-core machine: 50 minutes for six roles).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from starlette.testclient import TestClient

from api.app import create_app
from api.auth import LocalTokenIssuer
from api.graphql.endpoint import RateLimiter
from api.graphql.schema import build_schema
from bench.common import BENCH, drop_target, emit, new_target, open_vault
from policies import Role
from policies.enforcer import PolicyLines, default_policy_lines
from tests.fuzzing import ROLE_PURPOSES, Tally, operations, seed_customers
from vault.logs import configure_logging
from vault.runtime import Vault

ISSUER = "customer-vault"
FLOOR_OPERATIONS = 200


def _default_policy_in_force(vault: Vault) -> bool:
    vault.policies.refresh()
    with vault.unit(BENCH) as s:
        in_force = vault.policies.current(s)
    return in_force == (0, list(PolicyLines(default_policy_lines()).lines))


def _floor(client: TestClient, headers: dict[str, str]) -> float:
    """Operations/s of the trivial query through the same client and app."""
    started = time.perf_counter()
    for _ in range(FLOOR_OPERATIONS):
        client.post("/graphql", json={"query": "{ __typename }"}, headers=headers)
    return FLOOR_OPERATIONS / (time.perf_counter() - started)


def _fuzz_role(
    client: TestClient, headers: dict[str, str], count: int, role_seed: int, progress: str
) -> tuple[Tally, float]:
    tally = Tally()
    schema = build_schema()._schema

    @seed(role_seed)
    @settings(
        max_examples=count,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(operations(schema))
    def send(operation: str) -> None:
        response = client.post("/graphql", json={"query": operation}, headers=headers)
        tally.add(operation, response.status_code, response.text)
        if tally.sent % 500 == 0:
            print(f"{progress}: {tally.sent} sent, {len(tally.failures)} problems",
                  file=sys.stderr, flush=True)  # fmt: skip

    started = time.perf_counter()
    send()
    return tally, time.perf_counter() - started


def _problem_kinds(tally: Tally) -> list[dict[str, Any]]:
    groups: dict[str, list[str]] = {}
    for operation, problem in tally.failures:
        groups.setdefault(problem[:100], []).append(operation)
    return [
        {"count": len(ops), "problem": kind, "example": ops[0][:1000]}
        for kind, ops in sorted(groups.items(), key=lambda item: -len(item[1]))
    ]


def run(backend: str, count: int, base_seed: int, roles: Sequence[Role]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        target = new_target(backend, Path(tmp), "fuzz")
        vault = open_vault(target)
        try:
            customer_ids = seed_customers(vault, BENCH)
            issuer = LocalTokenIssuer.load_or_create(Path(tmp) / "jwt.json", ISSUER, ISSUER)
            app = create_app(
                vault,
                verifier=issuer.verifier(),
                local_issuer=issuer,
                rate_limiter=RateLimiter(10**9),
                webhook_every=None,
            )
            with TestClient(app) as client:
                for n, role in enumerate(roles):
                    subject = customer_ids[0] if role is Role.DATA_SUBJECT else None
                    token = issuer.issue(f"fuzz-{role.value}", role, customer_id=subject)
                    headers = {
                        "Authorization": f"Bearer {token}",
                        "X-Purpose": ROLE_PURPOSES[role],
                    }
                    role_seed = base_seed + n
                    floor = _floor(client, headers)
                    tally, wall = _fuzz_role(
                        client, headers, count, role_seed, f"{backend}/{role.value}"
                    )
                    record = {
                        "bench": "fuzz",
                        "backend": backend,
                        "role": role.value,
                        "seed": role_seed,
                        "sent": tally.sent,
                        "statuses": dict(sorted(tally.statuses.items())),
                        "codes": dict(sorted(tally.codes.items(), key=lambda kv: -kv[1])),
                        "problems": len(tally.failures),
                        "problem_kinds": _problem_kinds(tally),
                        "wall_s": round(wall, 1),
                        "ops_per_s": round(tally.sent / wall, 1),
                        "floor_ops_per_s": round(floor, 1),
                        "default_policy_after": _default_policy_in_force(vault),
                    }
                    emit(record)
                    results.append(record)
        finally:
            vault.close()
            drop_target(target)
    return results


def _table(results: Sequence[dict[str, Any]]) -> None:
    print()
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} ({os.cpu_count()} CPUs, "
          f"{platform.python_implementation()} {platform.python_version()})")  # fmt: skip
    print(
        "| backend | role | seed | sent | HTTP status | error codes (top 5) | problems "
        "| wall s | ops/s | floor ops/s | default policy after |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        statuses = ", ".join(f"{k}: {v:,}" for k, v in r["statuses"].items())
        codes = ", ".join(f"{k} {v:,}" for k, v in list(r["codes"].items())[:5])
        policy = "yes" if r["default_policy_after"] else "NO"
        print(f"| {r['backend']} | {r['role']} | {r['seed']} | {r['sent']:,} | {statuses} | "
              f"{codes} | {r['problems']} | {r['wall_s']} | {r['ops_per_s']} | "
              f"{r['floor_ops_per_s']} | {policy} |")  # fmt: skip
    for r in results:
        for kind in r["problem_kinds"]:
            print(f"\n{r['backend']}/{r['role']}: {kind['count']} x {kind['problem']}\n"
                  f"    {kind['example']}")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--operations", type=int, default=5_000, help="per role")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--seed", type=int, help="first role's seed (random by default)")
    parser.add_argument(
        "--roles", default=",".join(r.value for r in ROLE_PURPOSES), help="comma-separated"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    configure_logging("warning", stream=sys.stderr)  # one request line per operation otherwise
    base_seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    roles = [Role(r) for r in args.roles.split(",")]
    results = run(args.backend, args.operations, base_seed, roles)
    policy_ok = all(r["default_policy_after"] for r in results)
    problems = sum(r["problems"] for r in results)
    emit({"bench": "fuzz", "backend": args.backend, "roles": len(results),
          "sent": sum(r["sent"] for r in results), "problems": problems,
          "default_policy_at_end": policy_ok})  # fmt: skip
    _table(results)
    print(f"\ndefault policy still in force at the end: {'yes' if policy_ok else 'NO'}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    return 0 if policy_ok and problems == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
