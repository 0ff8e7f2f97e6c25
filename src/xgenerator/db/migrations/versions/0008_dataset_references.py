"""datasets: source_uri and source_fingerprint, for datasets registered by reference

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 11:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable: an uploaded or derived dataset lives in the store and has no source URI.
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_uri", sa.String(length=1000), nullable=True))
        batch_op.add_column(sa.Column("source_fingerprint", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.drop_column("source_fingerprint")
        batch_op.drop_column("source_uri")
