"""audit tables earn their indexes

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 11:20:00

Every request appends to ``audit_entries`` and ``audit_pending``; each index and the
queue's foreign key cost on every append. Kept: what a query of ours uses (EXPLAINs in
docs/audit-verification.md, "Indexes"). The entries themselves are untouched: old entries
verify as before.

- ``ix_audit_entries_customer_id`` becomes (customer_id, id): the access history and a
  search by customer read newest first straight from it, no sort;
- ``ix_audit_entries_actor`` and ``ix_audit_entries_recorded_at`` become one
  (actor, recorded_at): the alert detector's per-actor hour windows read it exactly;
- ``ix_audit_entries_action`` goes: the access history goes by customer, the detector's
  scan by log position (bounded by entry id), a search by action walks the primary key
  newest first (a console search by a rare action alone scans: accepted, see the doc);
- the queue's foreign key goes: its only writer inserts ids returned by the entry insert
  of the same statement (or transaction), entries can never be deleted (append-only
  triggers), and the sequencer refuses a queue row that names no entry.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_entries_action")
        batch_op.drop_index("ix_audit_entries_actor")
        batch_op.drop_index("ix_audit_entries_customer_id")
        batch_op.drop_index("ix_audit_entries_recorded_at")
        batch_op.create_index("ix_audit_entries_customer", ["customer_id", "id"], unique=False)
        batch_op.create_index("ix_audit_entries_actor_time", ["actor", "recorded_at"], unique=False)
    with op.batch_alter_table("audit_pending", schema=None) as batch_op:
        batch_op.drop_constraint("fk_audit_pending_entry_pk_audit_entries", type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("audit_pending", schema=None) as batch_op:
        batch_op.create_foreign_key(
            "fk_audit_pending_entry_pk_audit_entries", "audit_entries", ["entry_pk"], ["id"]
        )
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_entries_actor_time")
        batch_op.drop_index("ix_audit_entries_customer")
        batch_op.create_index("ix_audit_entries_recorded_at", ["recorded_at"], unique=False)
        batch_op.create_index("ix_audit_entries_customer_id", ["customer_id"], unique=False)
        batch_op.create_index("ix_audit_entries_actor", ["actor"], unique=False)
        batch_op.create_index("ix_audit_entries_action", ["action"], unique=False)
