"""What Relay's global ids, sealed cursors, last/before and totalCount cost (issue 16).

In-process, like ``bench/request_cost.py`` (whose loader and ASGI driver it reuses): the
real application on a fresh PostgreSQL schema (or SQLite file), requests sent straight
to the ASGI callable, CPU time per request of this process. Each measurement stands
beside its floor, measured in the same run:

* ``handle``: sealing and opening one global id, beside ``str(uuid)`` (what an id cost);
* ``profile``: the compiled profile query (a customer and 10 interactions) asking for
  global ids and cursors (``id``, ``cursor``), beside the same query asking for the
  UUIDs (``customerId``, ``interactionId``: no handle sealed);
* ``page``: 20 customers from the middle of the list, taken backward
  (``last``/``before``), beside the same 20 taken forward (``first``/``after``); and
  forward with ``totalCount`` (one more statement and audit entry).

Run: ``python -m bench.relay [--backend sqlite] [--requests 1000]``; one JSON line each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
import timeit
import uuid
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, text

from api.app import create_app
from api.auth import LocalTokenIssuer
from bench.common import PG_URL, emit
from bench.request_cost import _drive, _load, _settings
from policies import Role
from vault.bootstrap import initialise
from vault.runtime import Vault

_PROFILE = (
    "query($id: ID!) {{ customer(id: $id) {{ {cid} email phone firstName lastName "
    "birthDate address interactions(first: 10) {{ edges {{ {cursor} node {{ {iid} channel "
    "type occurredAt amount }} }} }} }} }}"
)
GLOBAL = _PROFILE.format(cid="id", cursor="cursor", iid="id")
UUIDS = _PROFILE.format(cid="customerId", cursor="", iid="interactionId")
_PAGE = "edges { node { customerId email } } pageInfo { hasNextPage hasPreviousPage }"
FORWARD = "query($c: String) { customers(first: 20, after: $c) { " + _PAGE + " } }"
BACKWARD = "query($c: String) { customers(last: 20, before: $c) { " + _PAGE + " } }"
COUNTED = "query($c: String) { customers(first: 20, after: $c) { totalCount " + _PAGE + " } }"


def _cpu_ms(app: Any, bodies: list[bytes], token: str, concurrency: int) -> float:  # noqa: ANN401
    """CPU milliseconds of this process per request, over ``bodies``."""
    asyncio.run(_drive(app, bodies[: max(1, len(bodies) // 10)], token, concurrency))  # warm
    cpu = time.process_time()
    done = asyncio.run(_drive(app, bodies, token, concurrency))
    return round((time.process_time() - cpu) * 1000 / done, 3)


def _handles(vault: Vault) -> None:
    handles, local = vault.handles, uuid.uuid4()
    sealed = handles.seal("node", f"Customer:{local}")
    rounds = 200_000
    emit({
        "bench": "handle", "us_seal": round(timeit.timeit(
            lambda: handles.seal("node", f"Customer:{local}"), number=rounds) * 1e6 / rounds, 3),
        "us_open": round(timeit.timeit(
            lambda: handles.open("node", sealed), number=rounds) * 1e6 / rounds, 3),
        "floor_us_str_uuid": round(timeit.timeit(
            lambda: str(local), number=rounds) * 1e6 / rounds, 3),
    })  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    p.add_argument("--customers", type=int, default=300)
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=8)
    args = p.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="cvault-relay-"))
    schema = f"relay_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL) if args.backend == "postgresql" else None
    if admin is not None:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{PG_URL}?options={quote(f'-csearch_path={schema}')}"
    else:
        url = f"sqlite:///{workdir / 'vault.db'}"
    try:
        settings = _settings(workdir / "data", url)
        initialise(settings)
        vault = Vault.open(settings)
        ids = _load(vault, args.customers)
        issuer = LocalTokenIssuer.load_or_create(
            settings.jwt_signing_key, settings.jwt_issuer, settings.jwt_audience
        )
        token = issuer.issue("relay-agent", Role.SUPPORT_AGENT, ttl=timedelta(hours=1))
        app = create_app(vault, webhook_every=None)
        vault.policies.refresh()
        _handles(vault)
        rng = random.Random(11)
        picks = [str(rng.choice(ids)) for _ in range(args.requests)]

        def bodies(query: str, variables: list[dict[str, Any]]) -> list[bytes]:
            return [json.dumps({"query": query, "variables": v}).encode() for v in variables]

        profile = {
            name: _cpu_ms(app, bodies(q, [{"id": i} for i in picks]), token, args.concurrency)
            for name, q in (("uuids", UUIDS), ("global_ids", GLOBAL))
        }
        emit({"bench": "profile", "backend": args.backend, "requests": args.requests,
              "cpu_ms_global_ids": profile["global_ids"],
              "floor_cpu_ms_uuids": profile["uuids"]})  # fmt: skip
        middle = _middle_cursor(app, token)
        page = {
            name: _cpu_ms(app, bodies(q, [{"c": middle}] * (args.requests // 2)), token,
                          args.concurrency)
            for name, q in (("forward", FORWARD), ("backward", BACKWARD), ("counted", COUNTED))
        }  # fmt: skip
        emit({"bench": "page", "backend": args.backend, "requests": args.requests // 2,
              "cpu_ms_backward": page["backward"], "cpu_ms_with_total_count": page["counted"],
              "floor_cpu_ms_forward": page["forward"]})  # fmt: skip
        vault.close()
    finally:
        if admin is not None:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


def _middle_cursor(app: Any, token: str) -> str:  # noqa: ANN401
    """The cursor of the customer in the middle of the list."""
    from starlette.testclient import TestClient  # noqa: PLC0415 - only to read one cursor

    reply = (
        TestClient(app)
        .post(
            "/graphql",
            json={"query": "{ customers(first: 100) { edges { cursor } } }"},
            headers={"Authorization": f"Bearer {token}", "X-Purpose": "support"},
        )
        .json()
    )
    edges = reply["data"]["customers"]["edges"]
    return str(edges[len(edges) // 2]["cursor"])


if __name__ == "__main__":
    main()
