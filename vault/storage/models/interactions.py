"""The interactions table: one row per touch point, its payload a field token.

Every interaction names an existing customer. On SQLite a foreign key says so. On
PostgreSQL the foreign key is replaced by triggers (migration 0019,
docs/interactions-owner-check.md): a per-row foreign-key check cost ingest more database
CPU than any index (a probe and a ``FOR KEY SHARE`` lock of the customer per row), where
one anti-join of each statement's new rows with ``customers`` gives the same guarantee
together with a guard on ``customers`` that refuses to delete, re-key or truncate a
customer that interactions still name. :data:`OWNER_CHECK_DDL` installs them (after
``create_all`` too); the migration keeps a frozen copy, compared with it by a test.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Connection,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    String,
    Table,
    Uuid,
    event,
)
from sqlalchemy.orm import Mapped, mapped_column

from vault.storage.models.base import Base, UTCDateTime, in_enum
from vault.types import Channel

__all__ = [
    "OWNER_CHECK_DDL",
    "OWNER_FK",
    "InteractionRow",
    "compared_by_autogenerate",
    "owner_check_ddl",
]

# The foreign key that PostgreSQL replaces with the owner check (its name, by convention).
OWNER_FK = "fk_interactions_customer_id_customers"


class InteractionRow(Base):
    """One touch point. ``amount_minor`` is in the currency's minor unit (cents)."""

    __tablename__ = "interactions"
    __table_args__ = (
        CheckConstraint(in_enum("channel", Channel), name="channel"),
        CheckConstraint("(amount_minor IS NULL) = (currency IS NULL)", name="amount_currency"),
        Index("ix_interactions_customer_timeline", "customer_id", "occurred_at", "id"),
        # SQLite only: PostgreSQL has the owner-check triggers instead (see the module).
        ForeignKeyConstraint(["customer_id"], ["customers.id"]).ddl_if(dialect="sqlite"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    channel: Mapped[str] = mapped_column(String(16))
    type: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    external_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    payload_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


# Segment rules read interactions by type and time with the customer and the amount
# (``vault.segments.compile``): with every column they need in one index, PostgreSQL
# answers them with index-only scans instead of a random heap read per interaction.
# Its (type, occurred_at) prefix also serves retention, so no narrower index is kept:
# every index is paid for on each ingested row.
Index(
    "ix_interactions_segment_scan",
    InteractionRow.type,
    InteractionRow.occurred_at,
    InteractionRow.customer_id,
    InteractionRow.channel,
    InteractionRow.currency,
    InteractionRow.amount_minor,
)

_FK_ERROR = (
    f"ERRCODE = 'foreign_key_violation', CONSTRAINT = '{OWNER_FK}', "
    "TABLE = 'interactions', COLUMN = 'customer_id'"
)
_READ_COMMITTED = "current_setting('transaction_isolation') = 'read committed'"

# PostgreSQL only. Kept in step with migration 0019 (frozen there, compared by a test).
OWNER_CHECK_DDL: list[str] = [
    # (a), (b): after each INSERT / COPY / UPDATE statement on interactions, one anti-join
    # of its new rows with customers; the same SQLSTATE, constraint name and message as
    # the foreign key's. Under REPEATABLE READ or SERIALIZABLE the statement's snapshot
    # may predate a concurrent delete, so the named customers are also locked there
    # (FOR KEY SHARE, as the foreign key does): a delete committed since raises a
    # serialization failure. Under READ COMMITTED the guard below makes locks needless.
    "CREATE OR REPLACE FUNCTION cvault_interactions_owner_check() RETURNS trigger "  # noqa: S608 - constants
    "LANGUAGE plpgsql AS $$ DECLARE missing uuid; BEGIN "
    f"IF NOT {_READ_COMMITTED} THEN "
    "PERFORM 1 FROM customers c WHERE c.id IN "
    "(SELECT n.customer_id FROM cvault_new_rows n) FOR KEY SHARE OF c; END IF; "
    "SELECT n.customer_id INTO missing FROM cvault_new_rows n WHERE n.customer_id IS NOT "
    "NULL AND NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = n.customer_id) LIMIT 1; "
    "IF FOUND THEN RAISE EXCEPTION USING MESSAGE = 'insert or update on table "
    f'"interactions" violates foreign key constraint "{OWNER_FK}"\', '
    "DETAIL = 'Key (customer_id)=(' || missing || ') is not present in table "
    f'"customers".\', {_FK_ERROR}; END IF; RETURN NULL; END $$',
    # (c): a customer that interactions name is never deleted, re-keyed or truncated
    # away. SHARE on interactions waits for every transaction that wrote interactions
    # (their inserts hold ROW EXCLUSIVE to commit) and holds off new ones until this
    # transaction ends, so the check that follows (a fresh READ COMMITTED snapshot) sees
    # every committed row, and an insert that waited sees the customer gone. Under
    # another isolation level the snapshot could miss such rows: refused.
    "CREATE OR REPLACE FUNCTION cvault_customers_keep_referenced() RETURNS trigger "  # noqa: S608 - constants
    "LANGUAGE plpgsql AS $$ BEGIN "
    "IF TG_OP = 'UPDATE' THEN IF NEW.id = OLD.id THEN RETURN NEW; END IF; END IF; "
    f"IF NOT {_READ_COMMITTED} THEN RAISE EXCEPTION USING MESSAGE = 'customers are "
    "deleted or re-keyed under READ COMMITTED only (interactions owner check)', "
    f"{_FK_ERROR}; END IF; "
    "LOCK TABLE interactions IN SHARE MODE; "
    "IF TG_OP = 'TRUNCATE' THEN "
    "IF EXISTS (SELECT 1 FROM interactions) THEN RAISE EXCEPTION USING MESSAGE = "
    "'cannot truncate customers: interactions name customers', "
    f"{_FK_ERROR}; END IF; RETURN NULL; END IF; "
    "IF EXISTS (SELECT 1 FROM interactions i WHERE i.customer_id = OLD.id) THEN "
    'RAISE EXCEPTION USING MESSAGE = \'update or delete on table "customers" violates '
    f'foreign key constraint "{OWNER_FK}" on table "interactions"\', '
    "DETAIL = 'Key (id)=(' || OLD.id || ') is still referenced from table "
    f'"interactions".\', {_FK_ERROR}; END IF; '
    "IF TG_OP = 'DELETE' THEN RETURN OLD; END IF; RETURN NEW; END $$",
    "CREATE TRIGGER interactions_owner_insert AFTER INSERT ON interactions "
    "REFERENCING NEW TABLE AS cvault_new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION cvault_interactions_owner_check()",
    # Transition tables allow no column list: every UPDATE statement is checked (only
    # merges update interactions).
    "CREATE TRIGGER interactions_owner_update AFTER UPDATE ON interactions "
    "REFERENCING NEW TABLE AS cvault_new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION cvault_interactions_owner_check()",
    "CREATE TRIGGER customers_keep_referenced BEFORE DELETE OR UPDATE OF id ON customers "
    "FOR EACH ROW EXECUTE FUNCTION cvault_customers_keep_referenced()",
    "CREATE TRIGGER customers_keep_referenced_truncate BEFORE TRUNCATE ON customers "
    "FOR EACH STATEMENT EXECUTE FUNCTION cvault_customers_keep_referenced()",
]


def owner_check_ddl(dialect: str) -> list[str]:
    """The statements that replace the foreign key on ``dialect`` (none on SQLite)."""
    return list(OWNER_CHECK_DDL) if dialect == "postgresql" else []


def _install_owner_check(target: Table, connection: Connection, **_: Any) -> None:  # noqa: ANN401
    for statement in owner_check_ddl(connection.dialect.name):
        connection.exec_driver_sql(statement)


# After interactions: customers exists by then (create_all orders by the foreign key,
# which stays in the metadata on every dialect).
event.listen(InteractionRow.__table__, "after_create", _install_owner_check)


def compared_by_autogenerate(dialect: str) -> Callable[..., bool]:
    """Alembic autogenerate's ``include_object``: everything, except the one documented
    exception: on PostgreSQL the interactions owner check (triggers, migration 0019)
    replaces the foreign key :data:`OWNER_FK` that the models keep for SQLite
    (``ddl_if(dialect="sqlite")``, which autogenerate does not read)."""

    def include(_obj: object, name: str | None, type_: str, *_: object) -> bool:
        return not (
            dialect == "postgresql" and type_ == "foreign_key_constraint" and name == OWNER_FK
        )

    return include
