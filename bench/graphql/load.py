"""Both copies of the data: the vault's tables written through our services on forked
workers (customers in units, interactions in batches), and the same values in clear
copied into PostGraphile's plain tables; then sequenced and vacuumed."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import psycopg

from bench.common import BENCH, fork_map
from bench.graphql.dataset import BATCH, interaction_batch, person
from bench.graphql.plan import Plan
from bench.graphql.target import LIBPQ_URL, Target
from vault.bootstrap import initialise
from vault.runtime import Vault

CUSTOMERS_PER_UNIT = 500

PlainCustomer = tuple[uuid.UUID, str | None, str | None, str | None, str | None, str | None,
                      str | None]  # fmt: skip


class WorkerFailed(RuntimeError):
    """A loading worker's error, as text: domain errors do not pickle back."""


def _load_customers(args: tuple[Target, int, int, int]) -> list[PlainCustomer]:
    try:
        return _create_customers(*args)
    except Exception as exc:  # noqa: BLE001 - any failure goes back to the parent as text
        raise WorkerFailed(f"{type(exc).__name__}: {exc}") from None


def _create_customers(target: Target, start: int, stop: int, seed: int) -> list[PlainCustomer]:
    """Customers [start, stop) through the vault; their clear values back."""
    vault = Vault.open(target.settings())
    rows: list[PlainCustomer] = []
    try:
        for unit_start in range(start, stop, CUSTOMERS_PER_UNIT):
            with vault.unit(BENCH) as session:
                for n in range(unit_start, min(stop, unit_start + CUSTOMERS_PER_UNIT)):
                    data = person(random.Random(seed * 7 + n), n)  # random phones may repeat
                    c = vault.customers.create(session, data, check_duplicates=False)
                    row = (c.id, c.email, c.phone, c.first_name, c.last_name, c.birth_date,
                           c.address)  # fmt: skip
                    rows.append(row)
    finally:
        vault.close()
    return rows


def _load_interactions(
    args: tuple[Target, list[tuple[int, list[int]]], list[uuid.UUID], int, datetime],
) -> int:
    try:
        return _record_interactions(*args)
    except Exception as exc:  # noqa: BLE001 - any failure goes back to the parent as text
        raise WorkerFailed(f"{type(exc).__name__}: {exc}") from None


def _record_interactions(
    target: Target,
    batches: list[tuple[int, list[int]]],
    ids: list[uuid.UUID],
    seed: int,
    now: datetime,
) -> int:
    """Batches of interactions through the vault; their payloads in clear go to a
    staging table of the plain schema, joined on the external id later."""
    vault = Vault.open(target.settings())
    stored = 0
    try:
        with psycopg.connect(LIBPQ_URL, autocommit=True) as plain:
            for batch, owners in batches:
                items = interaction_batch(batch, owners, ids, seed, now)
                with vault.unit(BENCH) as session:
                    stored += vault.interactions.record_many(session, items).inserted
                stage = f'"{target.plain_schema}".stage'
                with plain.cursor() as cur, cur.copy(f"COPY {stage} FROM STDIN") as copy:
                    for item in items:
                        copy.write_row((item.external_id, json.dumps(item.payload)))
    finally:
        vault.close()
    return stored


def _sql(statements: Sequence[str]) -> None:
    with psycopg.connect(LIBPQ_URL, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement.encode())


def load(plan: Plan, target: Target) -> tuple[list[uuid.UUID], dict[str, float]]:
    """Both copies of the data; returns the customer ids and how long each step took."""
    timings: dict[str, float] = {}
    plain, vs = f'"{target.plain_schema}"', f'"{target.vault_schema}"'
    started = time.perf_counter()
    initialise(target.settings())  # data dir, keyring, audit key, migrations
    _sql([
        f"CREATE TABLE {plain}.pg_customers (id uuid PRIMARY KEY, email text, phone text, "
        "first_name text, last_name text, birth_date date, address text)",
        f"CREATE TABLE {plain}.pg_interactions (id uuid PRIMARY KEY, customer_id uuid NOT NULL "
        f"REFERENCES {plain}.pg_customers (id), channel text NOT NULL, type text NOT NULL, "
        "occurred_at timestamptz NOT NULL, amount numeric(12, 2), payload jsonb)",
        f"CREATE UNLOGGED TABLE {plain}.stage (external_id text, payload jsonb)",
    ])  # fmt: skip
    timings["setup_s"] = time.perf_counter() - started
    workers = plan.load_workers

    started = time.perf_counter()
    bounds = [plan.customers * w // workers for w in range(workers + 1)]
    tasks = [(target, bounds[w], bounds[w + 1], plan.seed) for w in range(workers)]
    people = [row for part in fork_map(_load_customers, tasks) for row in part]
    timings["vault_customers_s"] = time.perf_counter() - started
    ids = [row[0] for row in people]

    started = time.perf_counter()
    rng = random.Random(plan.seed)
    owners = sorted(rng.randrange(len(ids)) for _ in range(plan.interactions))
    batches = [(b, owners[b * BATCH : (b + 1) * BATCH]) for b in range(-(-len(owners) // BATCH))]
    now = datetime.now(UTC)
    jobs = [(target, batches[w::workers], ids, plan.seed, now) for w in range(workers)]
    stored = sum(fork_map(_load_interactions, jobs))
    if stored != plan.interactions:
        raise RuntimeError(f"stored {stored} interactions of {plan.interactions}")
    timings["vault_interactions_s"] = time.perf_counter() - started

    started = time.perf_counter()
    with psycopg.connect(LIBPQ_URL) as conn:
        with conn.cursor() as cur, cur.copy(f"COPY {plain}.pg_customers FROM STDIN") as copy:
            for row in people:
                copy.write_row(row)
        copy_plain = (
            f"INSERT INTO {plain}.pg_interactions SELECT i.id, i.customer_id, i.channel, "  # noqa: S608
            "i.type, i.occurred_at, (i.amount_minor::numeric / 100)::numeric(12, 2), s.payload "
            f"FROM {vs}.interactions i JOIN {plain}.stage s ON s.external_id = i.external_id"
        )
        conn.execute(copy_plain.encode())
    _sql([
        f"CREATE INDEX ON {plain}.pg_interactions (customer_id, occurred_at DESC)",
        f"DROP TABLE {plain}.stage",
        f"VACUUM ANALYZE {plain}.pg_customers",
        f"VACUUM ANALYZE {plain}.pg_interactions",
    ])  # fmt: skip
    timings["plain_copy_s"] = time.perf_counter() - started

    started = time.perf_counter()
    vault = Vault.open(target.settings())
    try:
        vault.audit.sequence(vault.db)  # the load's audit entries, not the race's work
    finally:
        vault.close()
    tables = ("customers", "data_keys", "interactions", "customer_external_ids", "audit_entries")
    _sql([f"VACUUM ANALYZE {vs}.{t}" for t in tables])
    timings["vault_sequence_vacuum_s"] = time.perf_counter() - started
    return ids, {k: round(v, 1) for k, v in timings.items()}
