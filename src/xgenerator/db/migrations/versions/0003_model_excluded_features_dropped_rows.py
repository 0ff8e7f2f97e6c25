"""models: excluded_features and dropped_rows, what training left out

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 10:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable: models trained before this revision have no record of what was left out.
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("excluded_features", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("dropped_rows", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.drop_column("dropped_rows")
        batch_op.drop_column("excluded_features")
