"""jobs: parent_job_id, a hyper-parameter search's trials point at the search

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 11:35:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable: a job that is no search's trial has no parent.
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_job_id", sa.String(length=32), nullable=True))
        batch_op.create_index("ix_jobs_parent", ["parent_job_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_parent")
        batch_op.drop_column("parent_job_id")
