"""audit tables earn their indexes

Revision ID: 0019
Revises: 0016
Create Date: 2026-12-07 11:20:00

Every request appends to ``audit_entries`` and ``audit_pending``; each index and the
queue's foreign key cost on every append. Kept: what a query of ours uses (EXPLAINs in
docs/audit-verification.md, "Indexes"). The entries themselves are untouched: old entries
verify as before.

- ``ix_audit_entries_customer_id`` becomes (customer_id, id): the access history and a
  search by customer read newest first straight from it, no sort;
- ``ix_audit_entries_action`` and ``ix_audit_entries_actor`` go: no query of ours picks
  them (the access history goes by customer, the alert detector by log position, a
  search by actor or action walks the primary key newest first);
- ``ix_audit_entries_recorded_at`` becomes a BRIN index on PostgreSQL (entries arrive in
  time order; a few pages instead of a B-tree entry per row; a B-tree on SQLite);
- the queue's foreign key goes: its only writer inserts ids returned by the entry insert
  of the same statement (or transaction), entries can never be deleted (append-only
  triggers), and the sequencer refuses a queue row that names no entry.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_entries_action")
        batch_op.drop_index("ix_audit_entries_actor")
        batch_op.drop_index("ix_audit_entries_customer_id")
        batch_op.drop_index("ix_audit_entries_recorded_at")
        batch_op.create_index("ix_audit_entries_customer", ["customer_id", "id"], unique=False)
        batch_op.create_index(
            "ix_audit_entries_recorded_at", ["recorded_at"], unique=False,
            postgresql_using="brin",
        )  # fmt: skip
    with op.batch_alter_table("audit_pending", schema=None) as batch_op:
        batch_op.drop_constraint("fk_audit_pending_entry_pk_audit_entries", type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("audit_pending", schema=None) as batch_op:
        batch_op.create_foreign_key(
            "fk_audit_pending_entry_pk_audit_entries", "audit_entries", ["entry_pk"], ["id"]
        )
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_entries_recorded_at")
        batch_op.drop_index("ix_audit_entries_customer")
        batch_op.create_index("ix_audit_entries_recorded_at", ["recorded_at"], unique=False)
        batch_op.create_index("ix_audit_entries_customer_id", ["customer_id"], unique=False)
        batch_op.create_index("ix_audit_entries_actor", ["actor"], unique=False)
        batch_op.create_index("ix_audit_entries_action", ["action"], unique=False)
