"""Where one GraphQL request's CPU goes, in-process: no sockets, no wrk, no peer.

A quick loop for working on the gateway's cost between runs of ``bench/graphql/``
(which is the benchmark of record). It builds the real ASGI application (middleware,
endpoint, domain, audit) on a fresh PostgreSQL schema (or SQLite file) with a few
hundred customers written through the vault, then sends the profile query straight
to the ASGI callable, ``--concurrency`` requests in flight, and prints the CPU time
per request of this process (the database server's time is not in it). With
``--cprofile`` it also prints the 30 most expensive functions by cumulative time.

The query goes as text (``CVAULT_TRUSTED_DOCUMENTS=allow``); with ``--trusted`` the same
run then registers it and sends ``{"documentId": "sha256:..."}`` to an app under
``require`` (its AST cached once), and over GET: the floor is the text line before it.

Run: ``python -m bench.request_cost [--backend sqlite] [--requests 2000] [--cprofile]
[--trusted] [--lookup email|phone]``; ``--lookup`` sends the same selection through
``customerByEmail`` or ``customerByPhone`` (its floor: the lookup's statement by hand).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import random
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, event, text

from api.app import create_app
from api.auth import LocalTokenIssuer
from bench.common import PG_URL
from policies import Role
from vault.authorization.context import AccessContext
from vault.bootstrap import initialise
from vault.config import Environment, Settings
from vault.customers import CustomerInput
from vault.customers.addresses import PostalAddress
from vault.customers.normalize import normalise_email, normalise_phone
from vault.interactions import InteractionInput
from vault.profiles.reader import LOOKUP_SQL, PROFILE_SQL
from vault.runtime import Vault
from vault.types import PiiField

QUERY = (
    "query($id: ID!) { customer(id: $id) { id email phone firstName lastName birthDate "
    "address interactions(first: 10) { edges { node { id channel type occurredAt amount } "
    "} } } }"
)
# --lookup email / phone: the same selection found by ``customerByEmail`` / ``customerByPhone``.
LOOKUPS = {
    "email": QUERY.replace("$id: ID!", "$email: String!").replace(
        "customer(id: $id)", "customerByEmail(email: $email)"
    ),
    "phone": QUERY.replace("$id: ID!", "$phone: String!").replace(
        "customer(id: $id)", "customerByPhone(phone: $phone)"
    ),
}
SYSTEM = AccessContext.system("bench")


def _settings(data_dir: Path, url: str, trusted: str = "allow") -> Settings:
    return Settings.from_env(
        {
            "CVAULT_DATA_DIR": str(data_dir),
            "CVAULT_DATABASE_URL": url,
            "CVAULT_ENV": Environment.PRODUCTION.value,
            "CVAULT_TRUSTED_DOCUMENTS": trusted,
            "CVAULT_RATE_LIMIT_PER_MINUTE": str(10**7),
            "CVAULT_LOG_LEVEL": "warning",
        }
    )


def _load(vault: Vault, customers: int) -> list[uuid.UUID]:
    rng = random.Random(5)
    now = datetime.now(UTC)
    ids = []
    with vault.unit(SYSTEM) as session:
        for n in range(customers):
            created = vault.customers.create(
                session,
                CustomerInput(
                    email=f"c{n}@example.com", phone=f"+4420794{n:05d}", first_name="Zoë",
                    last_name="Nguyễn", birth_date="1990-02-03",
                    address=PostalAddress(f"{n} Rue Ⅻ", "Paris", country="FR"),
                ),
            )  # fmt: skip
            ids.append(created.id)
        items = [
            InteractionInput(
                customer_id=cid,
                channel="web",
                type="purchase",
                occurred_at=now - timedelta(minutes=rng.randrange(500_000)),
                amount=Decimal("12.50"),
                currency="EUR",
                external_id=f"x-{cid}-{k}",
                payload={"url": "/p"},
            )
            for cid in ids
            for k in range(12)
        ]
        for start in range(0, len(items), 1000):
            vault.interactions.record_many(session, items[start : start + 1000])
    return ids


def _scope(body: bytes, token: str, purpose: str) -> dict[str, Any]:
    """POST with ``body``; a body starting with ``?`` is a GET with that query string."""
    get = body.startswith(b"?")
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": "GET" if get else "POST", "scheme": "http", "path": "/graphql",
        "raw_path": b"/graphql", "query_string": body[1:] if get else b"",
        "root_path": "", "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000),
        "headers": [
            (b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {token}".encode()), (b"x-purpose", purpose.encode()),
            (b"content-length", str(len(body)).encode()),
        ],
    }  # fmt: skip


async def _drive(app: Any, bodies: Sequence[bytes], token: str, concurrency: int) -> int:  # noqa: ANN401
    ok = 0
    queue = list(reversed(bodies))

    async def one(body: bytes) -> None:
        nonlocal ok
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        status = 0
        chunks: list[bytes] = []

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await app(_scope(body, token, "support"), receive, send)
        reply = json.loads(b"".join(chunks))
        if status != 200 or "errors" in reply:
            raise RuntimeError(f"{status}: {reply}")
        ok += 1

    async def worker() -> None:
        while queue:
            await one(queue.pop())

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok


def _print_statements(app: Any, vault: Vault, body: list[bytes], token: str) -> None:  # noqa: ANN401
    """Run one request (after the timed ones) and print each SQL statement it sent: the
    round trips of a request, the background sequencer's included if it ran meanwhile."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:  # noqa: ANN401
        seen.append(" ".join(statement.split())[:160])

    event.listen(vault.db.engine, "before_cursor_execute", record)
    try:
        asyncio.run(_drive(app, body, token, 1))
    finally:
        event.remove(vault.db.engine, "before_cursor_execute", record)
    print(json.dumps({"statements_per_request": len(seen)}))
    for line in seen:
        print("  ", line)


def _trusted(
    vault: Vault,
    settings: Settings,
    ids: list[uuid.UUID],
    token: str,
    args: Any,  # noqa: ANN401
) -> None:
    """The same query registered, sent by documentId (POST) and over GET to an app under
    require: one line each, as the text line."""
    import dataclasses  # noqa: PLC0415
    from urllib.parse import urlencode  # noqa: PLC0415

    from api.graphql.schema import build_schema  # noqa: PLC0415
    from api.graphql.trusted import schema_checker  # noqa: PLC0415
    from vault.documents import document_sha256, parse_manifest  # noqa: PLC0415

    sha = document_sha256(QUERY)
    manifest = parse_manifest(json.dumps({f"sha256:{sha}": QUERY}).encode())
    with vault.unit(SYSTEM) as session:
        vault.documents.register(session, manifest, schema_checker(build_schema()._schema))
    required = Vault.open(
        dataclasses.replace(settings, trusted_documents_setting=None),  # production: require
        keyring=vault.keyring, database=vault.db,
    )  # fmt: skip
    app = create_app(required, webhook_every=None)
    rng = random.Random(11)

    def post(n: int) -> list[bytes]:
        return [
            json.dumps(
                {"documentId": f"sha256:{sha}", "variables": {"id": str(rng.choice(ids))}}
            ).encode()
            for _ in range(n)
        ]

    def get(n: int) -> list[bytes]:
        variables = [json.dumps({"id": str(rng.choice(ids))}) for _ in range(n)]
        return [
            b"?" + urlencode({"documentId": f"sha256:{sha}", "variables": v}).encode()
            for v in variables
        ]

    for kind, bodies in (("documentId", post), ("GET documentId", get)):
        asyncio.run(_drive(app, bodies(300), token, args.concurrency))  # warm-up
        work = bodies(args.requests)
        cpu, wall = time.process_time(), time.perf_counter()
        done = asyncio.run(_drive(app, work, token, args.concurrency))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(json.dumps({
            "backend": args.backend, "document": kind, "requests": done,
            "req_s": round(done / wall, 1), "cpu_ms_per_req": round(cpu * 1000 / done, 3),
        }))  # fmt: skip


PATHS = ("general", "compiled", "hot")


async def _paths(
    app: Any,  # noqa: ANN401
    vault: Vault,
    bodies: Callable[[int], list[bytes]],
    token: str,
    args: argparse.Namespace,
) -> None:
    """Under the app's lifespan (gc.freeze, the event-loop pool), the same requests on
    graphql-core, on the compiled plan in a worker thread, and on the event-loop path
    (PostgreSQL), then the floor: the hot path's one statement sent by hand, without
    decryption, policy, audit, GraphQL or ASGI."""
    endpoint = app.state.graphql
    async with app.router.lifespan_context(app):
        reader = endpoint.hot.reader
        for path in args.paths:
            if path == "hot" and reader is None:
                continue  # SQLite: no event-loop path
            endpoint.compiled = path != "general"
            endpoint.hot.reader = reader if path == "hot" else None
            await _drive(app, bodies(300), token, args.concurrency)  # warm-up
            work = bodies(args.requests)
            # CPU time of this thread (the event loop's), not wall time: waits on the
            # database are not the profile's.
            profiler = cProfile.Profile(time.thread_time) if args.cprofile else None
            statements = [0]

            def count(*_: Any, statements: list[int] = statements) -> None:  # noqa: ANN401
                statements[0] += 1

            event.listen(vault.db.engine, "before_cursor_execute", count)
            # The hot path's appends batch on the event loop (LoopWriter), the rest on the
            # writer thread: requests per commit of the writer the path went through.
            on_loop = endpoint.hot.writer if path == "hot" else None
            stats = (
                on_loop.stats if on_loop is not None
                else None if vault.writer is None else vault.writer.stats
            )  # fmt: skip
            before = (0, 0) if stats is None else (stats.batches, stats.requests)
            pooled = reader.pool.statements if reader is not None else 0
            cpu, wall = time.process_time(), time.perf_counter()
            if profiler:
                profiler.enable()
            done = await _drive(app, work, token, args.concurrency)
            if profiler:
                profiler.disable()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            event.remove(vault.db.engine, "before_cursor_execute", count)
            pooled = (reader.pool.statements if reader is not None else 0) - pooled
            batches, appends = (
                (0, 0) if stats is None
                else (stats.batches - before[0], stats.requests - before[1])
            )  # fmt: skip
            print(json.dumps({
                "backend": args.backend, "document": "text", "by": args.lookup, "path": path,
                "requests": done,
                "req_s": round(done / wall, 1), "cpu_ms_per_req": round(cpu * 1000 / done, 3),
                "engine_statements_per_req": round(statements[0] / done, 2),
                "pool_statements_per_req": round(pooled / done, 2),
                "audit_commits": batches,
                "requests_per_commit": round(appends / batches, 1) if batches else None,
            }))  # fmt: skip
            if profiler:
                pstats.Stats(profiler).sort_stats(args.sort).print_stats(40)
        endpoint.compiled, endpoint.hot.reader = True, reader
        if reader is not None:
            await _floor(reader, vault, bodies, args)


def _normal(field: PiiField, value: str) -> str:
    return normalise_email(value) if field is PiiField.EMAIL else normalise_phone(value)


async def _floor(
    reader: Any,  # noqa: ANN401
    vault: Vault,
    bodies: Callable[[int], list[bytes]],
    args: argparse.Namespace,
) -> None:
    asked = [json.loads(b)["variables"] for b in bodies(args.requests)]
    common = {
        "purpose": "support", "now": vault.clock(), "granted": "granted",
        "scopes": ["support"], "payload": False, "n": 11,
    }  # fmt: skip
    ids: list[dict[str, Any]]
    if args.lookup == "id":
        sql, ids = PROFILE_SQL, [{"id": uuid.UUID(v["id"])} for v in asked]
    else:
        field = PiiField(args.lookup)
        index = vault.keys.keyring.blind_indexer.index
        sql, readable = LOOKUP_SQL[field], ["active", "restricted"]
        ids = [
            {
                "bidx": index(field, _normal(field, v[args.lookup])),
                "readable": readable,
            }
            for v in asked
        ]
    queue: list[dict[str, Any]] = []

    async def worker() -> None:
        while queue:
            await reader.pool.tuples(sql, {**queue.pop(), **common}, binary=True)  # as the reader

    for n in (300, len(ids)):  # a warm-up, then the timed run
        queue[:] = ids[:n]
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(json.dumps({
        "backend": args.backend, "by": args.lookup, "path": "floor (the hot statement by hand)",
        "requests": len(ids), "req_s": round(len(ids) / wall, 1),
        "cpu_ms_per_req": round(cpu * 1000 / len(ids), 3),
    }))  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    p.add_argument("--customers", type=int, default=300)
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--cprofile", action="store_true")
    p.add_argument("--sort", default="tottime", help="the order of --cprofile's lines")
    p.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS))
    p.add_argument(
        "--statements", action="store_true", help="print the SQL statements of one request"
    )
    p.add_argument(
        "--trusted", action="store_true", help="then by documentId (require) and over GET"
    )
    p.add_argument(
        "--lookup", choices=("id", "email", "phone"), default="id",
        help="find the customer by id (customer), email or phone (customerByEmail/Phone)",
    )  # fmt: skip
    args = p.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="cvault-cost-"))
    schema = f"cost_{uuid.uuid4().hex[:8]}"
    if args.backend == "postgresql":
        admin = create_engine(PG_URL)
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
        token = issuer.issue("cost-agent", Role.SUPPORT_AGENT, ttl=timedelta(hours=1))
        app = create_app(vault, webhook_every=None)
        vault.policies.refresh()
        rng = random.Random(7)

        def bodies(n: int) -> list[bytes]:
            if args.lookup == "id":
                return [
                    json.dumps({"query": QUERY, "variables": {"id": str(rng.choice(ids))}}).encode()
                    for _ in range(n)
                ]
            # the customers are written with c{n}@example.com and +4420794{n:05d}
            values = (f"c{k}@example.com" if args.lookup == "email" else f"+4420794{k:05d}"
                      for k in (rng.randrange(len(ids)) for _ in range(n)))  # fmt: skip
            query = LOOKUPS[args.lookup]
            return [
                json.dumps({"query": query, "variables": {args.lookup: v}}).encode() for v in values
            ]

        asyncio.run(_paths(app, vault, bodies, token, args))
        if args.trusted:
            _trusted(vault, settings, ids, token, args)
        if args.statements:
            _print_statements(app, vault, bodies(1), token)
        vault.close()
    finally:
        if args.backend == "postgresql":
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


if __name__ == "__main__":
    main()
