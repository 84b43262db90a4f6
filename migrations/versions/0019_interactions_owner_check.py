"""interactions: the owner check replaces the foreign key on PostgreSQL

The foreign key ``interactions.customer_id -> customers`` is used by no query and cost
ingest +4.0 PostgreSQL CPU-ms per 1,000 rows (a probe and a ``FOR KEY SHARE`` lock of
the customer per row; docs/benchmarks.md). On PostgreSQL it is replaced by:

- a statement-level ``AFTER INSERT`` and ``AFTER UPDATE`` trigger on interactions that
  anti-joins the statement's new rows (``REFERENCING NEW TABLE``) with customers and
  raises ``foreign_key_violation`` (23503, the same constraint name and message) when one
  names no customer;
- a ``BEFORE DELETE OR UPDATE OF id`` (per row) and ``BEFORE TRUNCATE`` trigger on
  customers that refuses (23503) while interactions name the customer, after taking
  ``SHARE`` on interactions so that no insert in flight can be missed.

The guarantee and its reasoning: docs/interactions-owner-check.md. SQLite keeps its
foreign key; the downgrade restores it on PostgreSQL.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 14:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FK = "fk_interactions_customer_id_customers"

_FK_ERROR = (
    f"ERRCODE = 'foreign_key_violation', CONSTRAINT = '{_FK}', "
    "TABLE = 'interactions', COLUMN = 'customer_id'"
)
_READ_COMMITTED = "current_setting('transaction_isolation') = 'read committed'"

# Frozen copy of vault.storage.models.interactions.OWNER_CHECK_DDL at this revision.
_DDL: list[str] = [
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
    f'"interactions" violates foreign key constraint "{_FK}"\', '
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
    f'foreign key constraint "{_FK}" on table "interactions"\', '
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

_DROP = [
    "DROP TRIGGER IF EXISTS customers_keep_referenced_truncate ON customers",
    "DROP TRIGGER IF EXISTS customers_keep_referenced ON customers",
    "DROP TRIGGER IF EXISTS interactions_owner_update ON interactions",
    "DROP TRIGGER IF EXISTS interactions_owner_insert ON interactions",
    "DROP FUNCTION IF EXISTS cvault_customers_keep_referenced()",
    "DROP FUNCTION IF EXISTS cvault_interactions_owner_check()",
]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite keeps the foreign key
    op.drop_constraint(_FK, "interactions", type_="foreignkey")
    for statement in _DDL:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in _DROP:
        op.execute(statement)
    op.create_foreign_key(_FK, "interactions", "customers", ["customer_id"], ["id"])
