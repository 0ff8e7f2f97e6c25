"""job_rounds: a job's per-round metrics as rows appended as they come (was jobs.history, a
JSON list rewritten whole by every progress write)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 10:00:00.000000
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_jobs = sa.table("jobs", sa.column("id", sa.String), sa.column("history", sa.JSON))
_rounds = sa.table(
    "job_rounds",
    sa.column("job_id", sa.String),
    sa.column("round", sa.Integer),
    sa.column("metrics", sa.JSON),
)


def upgrade() -> None:
    op.create_table(
        "job_rounds",
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("round", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id", "round"),
    )
    # Read first, write after the column is gone: on SQLite the batch operation re-creates
    # `jobs`, and dropping the old table cascades to rows that refer to it.
    connection = op.get_bind()
    rows = [
        row
        for job_id, history in connection.execute(sa.select(_jobs.c.id, _jobs.c.history))
        for row in _rows(job_id, history)
    ]
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("history")
    if rows:
        connection.execute(_rounds.insert(), rows)


def downgrade() -> None:
    connection = op.get_bind()
    by_job: dict[str, list[dict[str, Any]]] = {}
    query = sa.select(_rounds.c.job_id, _rounds.c.round, _rounds.c.metrics)
    for job_id, number, metrics in connection.execute(query.order_by("job_id", "round")):
        by_job.setdefault(job_id, []).append({"round": number, **metrics})
    op.drop_table("job_rounds")  # before `jobs` is re-created (SQLite), which would cascade
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("history", sa.JSON(), nullable=True))
    for job_id, history in by_job.items():
        connection.execute(_jobs.update().where(_jobs.c.id == job_id).values(history=history))
    connection.execute(_jobs.update().where(_jobs.c.history.is_(None)).values(history=[]))
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.alter_column("history", existing_type=sa.JSON(), nullable=False)


def _rows(job_id: str, history: Any) -> list[dict[str, Any]]:
    """One row per round; a round recorded twice (a replay after a resume) keeps its last."""
    if isinstance(history, str):
        history = json.loads(history)
    by_round: dict[int, dict[str, Any]] = {}
    for entry in history or []:
        if isinstance(entry, dict) and isinstance(entry.get("round"), int):
            by_round[entry["round"]] = {k: v for k, v in entry.items() if k != "round"}
    return [{"job_id": job_id, "round": r, "metrics": m} for r, m in sorted(by_round.items())]
