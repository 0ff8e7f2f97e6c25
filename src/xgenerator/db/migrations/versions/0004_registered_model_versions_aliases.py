"""models: version per (user, name); model_aliases and their append-only moves

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 10:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import xgenerator.db.tables

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=True))
    # Models trained before versions existed are numbered by age within their name.
    op.execute(
        """
        UPDATE models SET version = (
            SELECT COUNT(*) FROM models AS older
            WHERE older.user_id = models.user_id AND older.name = models.name
              AND (older.created_at < models.created_at
                   OR (older.created_at = models.created_at AND older.id <= models.id))
        )
        """
    )
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.create_unique_constraint(
            "uq_models_user_name_version", ["user_id", "name", "version"]
        )
    op.create_table(
        "model_aliases",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", xgenerator.db.tables.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "name", "alias"),
    )
    op.create_table(
        "model_alias_moves",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=False),
        sa.Column("from_version", sa.Integer(), nullable=True),
        sa.Column("to_version", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("at", xgenerator.db.tables.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("model_alias_moves", schema=None) as batch_op:
        batch_op.create_index("ix_model_alias_moves_name", ["user_id", "name", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("model_alias_moves", schema=None) as batch_op:
        batch_op.drop_index("ix_model_alias_moves_name")
    op.drop_table("model_alias_moves")
    op.drop_table("model_aliases")
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.drop_constraint("uq_models_user_name_version", type_="unique")
        batch_op.drop_column("version")
