"""Every interaction names an existing customer: a foreign key on SQLite, the owner check
(migration 0019, docs/interactions-owner-check.md) on PostgreSQL, with the same error for
callers (SQLSTATE 23503, constraint ``fk_interactions_customer_id_customers``)."""

from __future__ import annotations

import importlib.util
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Connection, event, func, insert, inspect, select, text, update
from sqlalchemy.exc import IntegrityError

from tests.conftest import CTX
from vault.customers import CustomerInput
from vault.errors import InvalidInput
from vault.interactions import InteractionInput
from vault.interactions.service import InteractionService
from vault.runtime import Vault
from vault.storage.models import CustomerRow, InteractionRow
from vault.storage.models.interactions import OWNER_CHECK_DDL, OWNER_FK

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
# The storage layer hands PostgreSQL's COPY error through as psycopg raised it (as it
# did with the foreign key); statements through SQLAlchemy raise its IntegrityError.
REFUSED = (IntegrityError, psycopg.IntegrityError)


def _postgresql_only(vault: Vault) -> None:
    if vault.db.dialect != "postgresql":
        pytest.skip("SQLite keeps its foreign key; the owner check is PostgreSQL's")


def _customers(vault: Vault, count: int) -> list[uuid.UUID]:
    with vault.unit(CTX) as s:
        return [
            vault.customers.create(s, CustomerInput(first_name=f"Owner {n}")).id
            for n in range(count)
        ]


def _row(customer_id: uuid.UUID, n: int) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(), "customer_id": customer_id, "channel": "web", "type": "page_view",
        "occurred_at": T0 + timedelta(minutes=n), "amount_minor": None, "currency": None,
        "external_id": f"owner-{uuid.uuid4()}", "payload_ct": None, "recorded_at": T0,
    }  # fmt: skip


def _stored(vault: Vault) -> int:
    with vault.db.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(InteractionRow)) or 0)


def _sqlstate(error: BaseException) -> str | None:
    orig = getattr(error, "orig", error)
    return getattr(orig, "sqlstate", None)


def _constraint(error: BaseException) -> str | None:
    orig = getattr(error, "orig", error)
    diag = getattr(orig, "diag", None)
    return None if diag is None else diag.constraint_name


def _insert_sql(conn: Connection, customer_id: uuid.UUID) -> None:
    conn.execute(insert(InteractionRow), [_row(customer_id, 0)])


def _delete_dependants(conn: Connection, customer_id: uuid.UUID) -> None:
    """Delete the rows of other tables whose foreign key names the customer (a new
    customer has a data key, perhaps a consent state), so it can be deleted itself."""
    inspector = inspect(conn)
    for table in inspector.get_table_names():
        for fk in inspector.get_foreign_keys(table):
            if fk["referred_table"] == "customers" and table != "interactions":
                column = fk["constrained_columns"][0]
                conn.execute(
                    text(f"DELETE FROM {table} WHERE {column} = :id"),
                    {"id": customer_id},
                )


def test_the_migration_installs_the_owner_check_of_the_models() -> None:
    """Migration 0019's frozen DDL equals what the models install after create_all."""
    path = Path(__file__).parents[2] / "migrations/versions/0019_interactions_owner_check.py"
    spec = importlib.util.spec_from_file_location("m0019", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module._DDL == OWNER_CHECK_DDL
    assert module._FK == OWNER_FK


def test_the_foreign_key_exists_on_sqlite_only(vault: Vault) -> None:
    """SQLite has the foreign key; PostgreSQL has the owner-check triggers instead."""
    with vault.db.engine.connect() as conn:
        names = {fk["name"] for fk in inspect(conn).get_foreign_keys("interactions")}
        triggers = (
            set(
                conn.scalars(
                    text(
                        "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgrelid IN "
                        "('interactions'::regclass, 'customers'::regclass)"
                    )
                )
            )
            if vault.db.dialect == "postgresql"
            else set()
        )
    if vault.db.dialect == "sqlite":
        assert names == {OWNER_FK}
    else:
        assert names == set()
        assert {
            "interactions_owner_insert", "interactions_owner_update",
            "customers_keep_referenced", "customers_keep_referenced_truncate",
        } <= triggers  # fmt: skip


def test_a_raw_insert_naming_no_customer_is_a_foreign_key_violation(vault: Vault) -> None:
    """INSERT of a row whose customer does not exist fails as an integrity error; on
    PostgreSQL with SQLSTATE 23503 and the foreign key's name, as before."""
    with pytest.raises(IntegrityError) as refused, vault.db.engine.begin() as conn:
        _insert_sql(conn, uuid.uuid4())
    if vault.db.dialect == "postgresql":
        assert (_sqlstate(refused.value), _constraint(refused.value)) == ("23503", OWNER_FK)
    assert _stored(vault) == 0


def test_the_service_refuses_an_unknown_customer_and_stores_nothing(vault: Vault) -> None:
    """record_many names the item whose customer is unknown (before any write)."""
    (known,) = _customers(vault, 1)
    items = [
        InteractionInput(
            customer_id=cid, channel="web", type="page_view", occurred_at=T0,
            external_id=f"svc-{n}",
        )
        for n, cid in enumerate([known, uuid.uuid4()])
    ]  # fmt: skip
    with pytest.raises(InvalidInput, match="no known customer"), vault.unit(CTX) as s:
        vault.interactions.record_many(s, items)
    assert _stored(vault) == 0


def test_a_batch_of_1000_with_one_unknown_owner_writes_nothing(vault: Vault) -> None:
    """The storage path (COPY on PostgreSQL) refuses a batch of 1,000 rows where one
    names no customer: the whole batch, with the foreign key's error."""
    owners = _customers(vault, 5)
    rows = [_row(owners[n % 5], n) for n in range(1000)]
    rows[637]["customer_id"] = uuid.uuid4()
    with pytest.raises(REFUSED) as refused, vault.db.transaction() as s:
        InteractionService._insert(s, rows)
    if vault.db.dialect == "postgresql":
        assert (_sqlstate(refused.value), _constraint(refused.value)) == ("23503", OWNER_FK)
    assert _stored(vault) == 0


def test_merging_moves_interactions_to_the_kept_customer(vault: Vault) -> None:
    """A merge (an UPDATE of interactions.customer_id) passes the owner check."""
    keep, gone = _customers(vault, 2)
    items = [
        InteractionInput(
            customer_id=gone, channel="web", type="page_view",
            occurred_at=T0 + timedelta(minutes=n), external_id=f"merge-{n}",
        )
        for n in range(3)
    ]  # fmt: skip
    with vault.unit(CTX) as s:
        vault.interactions.record_many(s, items)
    with vault.unit(CTX) as s:
        vault.customers.merge(s, keep, gone)
    with vault.db.transaction() as s:
        owners = set(s.scalars(select(InteractionRow.customer_id)))
    assert owners == {keep}


def test_moving_interactions_to_no_customer_is_refused(vault: Vault) -> None:
    """An UPDATE that points interactions at a missing customer fails with 23503."""
    (owner,) = _customers(vault, 1)
    with vault.db.engine.begin() as conn:
        _insert_sql(conn, owner)
    with pytest.raises(IntegrityError) as refused, vault.db.engine.begin() as conn:
        conn.execute(update(InteractionRow).values(customer_id=uuid.uuid4()))
    if vault.db.dialect == "postgresql":
        assert (_sqlstate(refused.value), _constraint(refused.value)) == ("23503", OWNER_FK)


def test_a_customer_with_interactions_cannot_be_deleted_or_rekeyed(vault: Vault) -> None:
    """Deleting (or changing the id of) a customer that interactions name is refused;
    one without interactions can be deleted (its dependants first)."""
    _postgresql_only(vault)
    named, free = _customers(vault, 2)
    with vault.db.engine.begin() as conn:
        _insert_sql(conn, named)
    for statement in (
        text("DELETE FROM customers WHERE id = :id"),
        text("UPDATE customers SET id = gen_random_uuid() WHERE id = :id"),
    ):
        with pytest.raises(IntegrityError) as refused, vault.db.engine.begin() as conn:
            conn.execute(statement, {"id": named})
        assert (_sqlstate(refused.value), _constraint(refused.value)) == ("23503", OWNER_FK)
    with pytest.raises(IntegrityError), vault.db.engine.begin() as conn:
        conn.execute(text("TRUNCATE customers CASCADE"))
    with vault.db.engine.begin() as conn:
        _delete_dependants(conn, free)
        conn.execute(text("UPDATE customers SET id = id WHERE id = :id"), {"id": named})
        gone = conn.execute(text("DELETE FROM customers WHERE id = :id"), {"id": free}).rowcount
    assert gone == 1


def _blocked(vault: Vault, pid: int) -> Iterator[bool]:
    """Polls whether the backend ``pid`` waits for a lock (one query per poll)."""
    while True:
        with vault.db.engine.connect() as conn:
            yield bool(
                conn.scalar(
                    text("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = :p"),
                    {"p": pid},
                )
            )


def _wait_until_blocked(vault: Vault, pid: int, worker: threading.Thread) -> None:
    for polls, blocked in enumerate(_blocked(vault, pid)):
        if blocked or not worker.is_alive():
            return
        assert polls < 100_000, "the second transaction never waited"


def _second_waits_for_first(
    vault: Vault, first: Callable[[Connection], None], second: Callable[[Connection], None]
) -> list[BaseException]:
    """``first`` runs in a transaction left open while ``second`` runs in another; once
    ``second`` is seen waiting on a lock, ``first`` commits. The integrity errors
    ``second`` raised."""
    errors: list[BaseException] = []
    started = threading.Event()
    pid: list[int] = []

    def run_second() -> None:
        with vault.db.engine.connect() as conn:
            pid.append(int(conn.scalar(text("SELECT pg_backend_pid()")) or 0))
            conn.rollback()
            started.set()
            try:
                with conn.begin():
                    second(conn)
            except IntegrityError as error:
                errors.append(error)

    with vault.db.engine.connect() as conn:
        with conn.begin():
            first(conn)
            worker = threading.Thread(target=run_second)
            worker.start()
            started.wait()
            _wait_until_blocked(vault, pid[0], worker)
        worker.join()
    return errors


def _delete_customer(cid: uuid.UUID) -> Callable[[Connection], None]:
    def delete(conn: Connection) -> None:
        _delete_dependants(conn, cid)
        conn.execute(text("DELETE FROM customers WHERE id = :id"), {"id": cid})

    return delete


def test_a_delete_waits_for_an_insert_in_flight_and_then_refuses(vault: Vault) -> None:
    """An insert naming the customer, not yet committed, and a concurrent delete of that
    customer: the delete waits for the insert's commit, then sees its row and refuses."""
    _postgresql_only(vault)
    (cid,) = _customers(vault, 1)
    errors = _second_waits_for_first(
        vault, lambda conn: _insert_sql(conn, cid), _delete_customer(cid)
    )
    assert [(_sqlstate(e), _constraint(e)) for e in errors] == [("23503", OWNER_FK)]
    with vault.db.transaction() as s:
        assert s.scalar(select(func.count()).where(CustomerRow.id == cid)) == 1
    assert _stored(vault) == 1


def test_an_insert_waits_for_a_delete_in_flight_and_then_refuses(vault: Vault) -> None:
    """A delete of a customer without interactions, not yet committed, and a concurrent
    insert naming it: the insert waits for the delete's commit, then finds no customer."""
    _postgresql_only(vault)
    (cid,) = _customers(vault, 1)
    errors = _second_waits_for_first(
        vault, _delete_customer(cid), lambda conn: _insert_sql(conn, cid)
    )
    assert [(_sqlstate(e), _constraint(e)) for e in errors] == [("23503", OWNER_FK)]
    assert _stored(vault) == 0


def test_creating_customers_while_ingesting_for_them_and_others(vault: Vault) -> None:
    """One thread creates customers and ingests for each right after; another ingests for
    existing customers at the same time: every row lands, nothing is refused."""
    existing = _customers(vault, 20)
    failures: list[BaseException] = []

    def items(owners: list[uuid.UUID], tag: str) -> list[InteractionInput]:
        return [
            InteractionInput(
                customer_id=cid, channel="web", type="page_view",
                occurred_at=T0 + timedelta(minutes=n), external_id=f"{tag}-{i}-{n}",
            )
            for i, cid in enumerate(owners)
            for n in range(5)
        ]  # fmt: skip

    def creator() -> None:
        try:
            for round_ in range(10):
                new = _customers(vault, 3)
                with vault.unit(CTX) as s:
                    vault.interactions.record_many(s, items(new, f"new{round_}"))
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            failures.append(error)

    def ingester() -> None:
        try:
            for round_ in range(10):
                with vault.unit(CTX) as s:
                    vault.interactions.record_many(s, items(existing, f"old{round_}"))
        except BaseException as error:  # noqa: BLE001
            failures.append(error)

    workers = [threading.Thread(target=creator), threading.Thread(target=ingester)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert failures == []
    assert _stored(vault) == 10 * 3 * 5 + 10 * 20 * 5


def test_a_batch_reads_its_owners_and_their_keys_in_one_statement(vault: Vault) -> None:
    """With the key cache cold and warm, a batch of 1,000 rows over 100 customers sends
    one statement that reads customers (their data keys joined in) and none that reads
    data keys on its own."""
    owners = _customers(vault, 100)
    seen: list[str] = []

    def before(_conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    counts = []
    for tag in ("cold", "warm"):
        if tag == "cold":
            vault.keys.forget_all()
        items = [
            InteractionInput(
                customer_id=owners[n % 100], channel="web", type="page_view",
                occurred_at=T0 + timedelta(seconds=n), external_id=f"{tag}-{n}",
            )
            for n in range(1000)
        ]  # fmt: skip
        seen.clear()
        event.listen(vault.db.engine, "before_cursor_execute", before)
        try:
            with vault.unit(CTX) as s:
                assert vault.interactions.record_many(s, items).inserted == 1000
        finally:
            event.remove(vault.db.engine, "before_cursor_execute", before)
        owners_read = [q for q in seen if "FROM customers" in q and "data_keys" in q]
        keys_alone = [q for q in seen if "FROM data_keys" in q]
        counts.append((tag, len(owners_read), len(keys_alone)))
    assert counts == [("cold", 1, 0), ("warm", 1, 0)]


def test_the_downgrade_restores_the_foreign_key(database_url: tuple[str, str | None]) -> None:
    """On PostgreSQL, 0019 drops the foreign key for the triggers; its downgrade puts the
    foreign key back and drops them; upgrading again replaces it again."""
    from alembic import command  # noqa: PLC0415

    from vault.storage.db import make_engine  # noqa: PLC0415
    from vault.storage.migrate import _config, upgrade  # noqa: PLC0415

    url, schema = database_url
    if not url.startswith("postgresql"):
        pytest.skip("SQLite keeps its foreign key through 0019")
    engine = make_engine(url, schema=schema)

    def state() -> tuple[list[str], int]:
        with engine.connect() as conn:
            fks = [fk["name"] or "" for fk in inspect(conn).get_foreign_keys("interactions")]
            triggers = conn.scalar(
                text(
                    "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgrelid IN "
                    "('interactions'::regclass, 'customers'::regclass) AND (tgname LIKE "
                    "'interactions_owner_%' OR tgname LIKE 'customers_keep_referenced%')"
                )
            )
        return fks, int(triggers or 0)

    try:
        upgrade(engine)
        at_head = state()
        config = _config()
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0018")
        before = state()
        upgrade(engine)
        again = state()
    finally:
        engine.dispose()
    assert (at_head, before, again) == (([], 4), ([OWNER_FK], 0), ([], 4))
