"""The unit of work: all or nothing, savepoints included, on both backends."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from tests.conftest import CTX
from vault.customers import CustomerInput
from vault.runtime import Vault


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
