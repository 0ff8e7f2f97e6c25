"""models: importance, the SHAP summary computed when the model is trained

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 11:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable: models trained before this revision have no SHAP summary.
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("importance", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.drop_column("importance")
