"""Fuzzing in the suite (issue 13, item 10): operations generated from the live schema go
through the real ASGI app for every role, on SQLite and PostgreSQL.

Each role sends ``CVAULT_FUZZ_OPERATIONS`` operations (300 by default; derandomised, so
a run is repeatable). Every answer: no 5xx, no INTERNAL, no traceback, exception class
name or SQL in an error; afterwards the default policy is still in force, admin fuzzing
included. ``bench/fuzz.py`` runs the same harness longer, with random seeds.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from starlette.testclient import TestClient

from api.app import create_app
from api.auth import LocalTokenIssuer
from api.graphql.endpoint import RateLimiter
from api.graphql.schema import build_schema
from policies import Role
from policies.enforcer import PolicyLines, default_policy_lines
from tests.conftest import CTX
from tests.fuzzing import ROLE_PURPOSES, Tally, operations, seed_customers
from vault.runtime import Vault

OPERATIONS = int(os.environ.get("CVAULT_FUZZ_OPERATIONS", "300"))
ISSUER = "customer-vault"


@pytest.mark.parametrize("role", list(ROLE_PURPOSES), ids=lambda r: r.value)
def test_generated_operations_get_clean_answers(vault: Vault, tmp_path: Path, role: Role) -> None:
    """Every generated operation is answered without a 5xx, an INTERNAL error or a leak of
    internals, and the policy in force afterwards is the default one."""
    customer_ids = [str(i) for i in seed_customers(vault, CTX)]
    issuer = LocalTokenIssuer.load_or_create(tmp_path / "jwt.json", ISSUER, ISSUER)
    app = create_app(
        vault,
        verifier=issuer.verifier(),
        local_issuer=issuer,
        rate_limiter=RateLimiter(1_000_000),
        webhook_every=None,
    )
    subject = customer_ids[0] if role is Role.DATA_SUBJECT else None
    token = issuer.issue(
        f"fuzz-{role.value}", role, customer_id=None if subject is None else uuid.UUID(subject)
    )
    headers = {"Authorization": f"Bearer {token}", "X-Purpose": ROLE_PURPOSES[role]}
    tally = Tally()
    schema = build_schema()._schema

    with TestClient(app) as client:

        @settings(
            max_examples=OPERATIONS,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(operations(schema))
        def send(operation: str) -> None:
            response = client.post("/graphql", json={"query": operation}, headers=headers)
            tally.add(operation, response.status_code, response.text)

        send()

    report = os.environ.get("CVAULT_FUZZ_REPORT")
    if report:
        with Path(report).open("a", encoding="utf-8") as out:
            out.write(f"## {role.value}\n" + "\n".join(tally.summary()) + "\n")
    assert (tally.sent, tally.summary()) == (OPERATIONS, [])
    with vault.unit(CTX) as s:
        in_force = vault.policies.current(s)
    assert (0, list(PolicyLines(default_policy_lines()).lines)) == in_force
