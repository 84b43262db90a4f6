"""customers.match_bidx: a blind index of the normalised full name + birth date

Duplicate candidates are customers sharing an email or phone blind index, or this one
(re-checked after decryption: blind indexes are short on purpose). Existing rows get it
from ``cvault customers reindex``; new and changed ones when they are written.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 11:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("match_bidx", sa.BigInteger(), nullable=True))
        batch.create_index("ix_customers_match_bidx", ["match_bidx"])


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_index("ix_customers_match_bidx")
        batch.drop_column("match_bidx")
