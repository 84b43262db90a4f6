"""The client CPU of the hot profile statement's rows: dict rows, tuple rows, binary.

The event loop's profile read (:mod:`vault.profiles.reader`) sends one statement whose
rows psycopg decodes on the loop. This sends ``PROFILE_SQL`` (as ``bench/request_cost``'s
floor sends it) on one connection of an :class:`~vault.storage.aio.AsyncPool`, one at a
time, each way in turn (alternated in rounds, so drift in the machine's load falls on
all of them), and prints this process's CPU time per statement for each:

* ``dict``: ``AsyncPool.rows`` (``dict_row``, text results): the read before issue 15's
  tuple rows;
* ``tuple``: ``AsyncPool.tuples`` (``tuple_row``, text results);
* ``binary``: ``AsyncPool.tuples(binary=True)``;
* ``*_fetchall_us``: the decoding alone (``fetchall``, the result already received) of
  dict rows, tuple rows and binary tuple rows;
* ``reader``: the reader's whole ``read`` (statement, rows to objects, decryption,
  policy, audit entries; nothing written), for scale; ``reader_text``: the same with
  text results (``ProfileReader.binary = False``).

Run: ``python -m bench.hot_rows [--customers 300] [--statements 2000] [--rounds 5]
[--payload]``; ``--payload`` also reads the interactions' encrypted payloads (bytea).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from psycopg import AsyncConnection
from psycopg.rows import dict_row, tuple_row
from sqlalchemy import create_engine, make_url, text

from bench.common import PG_URL
from bench.request_cost import _load, _settings
from policies import Role
from vault.authorization.context import AccessContext, Actor
from vault.bootstrap import initialise
from vault.profiles import ProfileReader
from vault.profiles.reader import PROFILE_SQL
from vault.runtime import Vault
from vault.storage.aio import AsyncPool

WAYS = ("dict", "tuple", "binary", "reader", "reader_text")


async def _run(vault: Vault, ids: list[uuid.UUID], args: argparse.Namespace) -> None:
    pool = await asyncio.to_thread(AsyncPool, vault.db.engine, size=1)  # one connection
    await pool.open()
    reader = ProfileReader(
        pool, vault.keys, vault.authz.enforcer, vault.customers.attributes, vault.handles,
        vault.clock, region=vault.settings.default_phone_region,
    )  # fmt: skip
    access = AccessContext(Actor("bench-agent", Role.SUPPORT_AGENT.value), "support")
    common = {
        "purpose": "support", "now": vault.clock(), "granted": "granted",
        "scopes": ["support"], "payload": args.payload, "n": 11,
    }  # fmt: skip
    rng = random.Random(3)

    def way(name: str) -> Callable[[uuid.UUID], Awaitable[object]]:
        if name == "dict":
            return lambda cid: pool.rows(PROFILE_SQL, {"id": cid, **common})
        if name.startswith("reader"):

            def read(cid: uuid.UUID) -> Awaitable[object]:
                reader.binary = name == "reader"
                return reader.read(access, cid, 10)

            return read
        binary = name == "binary"
        return lambda cid: pool.tuples(PROFILE_SQL, {"id": cid, **common}, binary=binary)

    try:
        for name in WAYS:  # warm-up: prepared, caches filled
            for cid in ids[:100]:
                await way(name)(cid)
        cpu = dict.fromkeys(WAYS, 0.0)
        for n in range(args.rounds):
            for name in WAYS if n % 2 == 0 else reversed(WAYS):  # no way always first
                send = way(name)
                asked = [rng.choice(ids) for _ in range(args.statements)]
                start = time.process_time()
                for cid in asked:
                    await send(cid)
                cpu[name] += time.process_time() - start
        sent = args.rounds * args.statements
        decoding = await _decoding(ids, common, args)
        print(json.dumps({
            "customers": len(ids), "statements_each": sent, "payload": args.payload,
            **{f"{n}_cpu_us": round(cpu[n] * 1e6 / sent, 1) for n in WAYS},
            **{f"{n}_fetchall_us": round(v * 1e6 / sent, 1) for n, v in decoding.items()},
        }))  # fmt: skip
    finally:
        await pool.close()


async def _decoding(
    ids: list[uuid.UUID], common: dict[str, Any], args: argparse.Namespace
) -> dict[str, float]:
    """The rows' decoding alone (``fetchall``, the statement's result already in), each
    way, on a connection of the pool's settings (search path, UTC, prepared)."""
    options = f"-c search_path={args.schema} -c TimeZone=UTC"
    dsn = make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    factories: dict[str, tuple[Any, bool]] = {
        "dict": (dict_row, False), "tuple": (tuple_row, False), "binary": (tuple_row, True),
    }  # fmt: skip
    spent = dict.fromkeys(factories, 0.0)
    rng = random.Random(5)
    async with await AsyncConnection.connect(dsn, autocommit=True, options=options) as conn:
        conn.prepare_threshold = 0
        for n in range(args.rounds):
            for name, (factory, binary) in (
                factories.items() if n % 2 == 0 else reversed(factories.items())
            ):
                cursor = conn.cursor(row_factory=factory)
                for _ in range(args.statements):
                    params = {"id": rng.choice(ids), **common}
                    await cursor.execute(PROFILE_SQL, params, prepare=True, binary=binary)
                    start = time.process_time()
                    await cursor.fetchall()
                    spent[name] += time.process_time() - start
    return spent


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--customers", type=int, default=300)
    p.add_argument("--statements", type=int, default=2000, help="per way and round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--payload", action="store_true", help="read the payloads (bytea) too")
    args = p.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="cvault-rows-"))
    schema = args.schema = f"rows_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        settings = _settings(
            workdir / "data", f"{PG_URL}?options={quote(f'-csearch_path={schema}')}"
        )
        initialise(settings)
        vault = Vault.open(settings)
        ids = _load(vault, args.customers)
        vault.policies.refresh()
        asyncio.run(_run(vault, ids, args))
        vault.close()
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
