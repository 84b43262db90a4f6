"""The unit of work: all or nothing, savepoints included, on both backends."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from tests.conftest import CTX
from vault.customers import CustomerInput
from vault.runtime import Vault
from vault.storage.db import make_engine


class Boom(Exception):
    pass


def _count(vault: Vault) -> int:
    from sqlalchemy import func, select  # noqa: PLC0415

    from vault.storage.models import CustomerRow  # noqa: PLC0415

    with vault.unit(CTX) as s:
        return int(s.scalar(select(func.count()).select_from(CustomerRow)) or 0)


def test_outer_rollback_undoes_a_released_savepoint(vault: Vault) -> None:
    """Rows written inside a released SAVEPOINT vanish when the outer transaction rolls
    back (pysqlite's deferred BEGIN would otherwise commit them on SQLite)."""

    def nested_then_fail() -> None:
        with vault.unit(CTX) as s:
            with s.begin_nested():
                vault.customers.create(s, CustomerInput(first_name="Nested"))
            raise Boom

    with pytest.raises(Boom):
        nested_then_fail()
    assert _count(vault) == 0


def test_savepoint_rollback_keeps_the_outer_work(vault: Vault) -> None:
    """A failed SAVEPOINT rolls back alone; the outer transaction's rows still commit."""

    def fail_inside(s: Session) -> None:
        with s.begin_nested():
            vault.customers.create(s, CustomerInput(first_name="Dropped"))
            raise Boom

    with vault.unit(CTX) as s:
        vault.customers.create(s, CustomerInput(first_name="Kept"))
        with pytest.raises(Boom):
            fail_inside(s)
    assert _count(vault) == 1


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_pooled_connection_that_died_while_idle_is_replaced(
    database_url: tuple[str, str | None],
) -> None:
    """A PostgreSQL connection killed while it sat in the pool (a server restart, an idle
    timeout) is checked and replaced at checkout: the next unit of work just works."""
    url, schema = database_url
    engine = make_engine(url, schema=schema, ping_idle_after=0.0)
    try:
        with engine.connect() as conn:
            victim = conn.scalar(text("SELECT pg_backend_pid()"))
        admin = create_engine(url)
        with admin.begin() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": victim})
        admin.dispose()
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT 1")) == 1
            assert victim != conn.scalar(text("SELECT pg_backend_pid()"))
    finally:
        engine.dispose()


def test_a_connection_in_steady_use_is_not_pinged(database_url: tuple[str, str | None]) -> None:
    """Checking a connection out again right after it came back sends no ping (the
    round trip SQLAlchemy's pre-ping would add to every request)."""
    url, schema = database_url
    engine = make_engine(url, schema=schema)
    pings: list[object] = []
    original = engine.dialect.do_ping

    def counted(dbapi: object) -> bool:
        pings.append(dbapi)
        return bool(original(dbapi))  # type: ignore[arg-type]

    engine.dialect.do_ping = counted  # type: ignore[method-assign,assignment]
    try:
        for _ in range(3):
            with engine.connect() as conn:
                conn.execute(text("SELECT 2"))
        assert not pings
    finally:
        engine.dispose()
