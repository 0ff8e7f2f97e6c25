"""A job's per-round metrics (its "history"), stored one row per round in `job_rounds`.

A running job appends the rounds since its last progress write, so each write costs the same
at round 10 as at round 10,000, and a live stream reads only the rounds after its cursor.
Callers see a history as before: a list of `{"round": n, <metric>: value, ...}`, ascending.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from xgenerator.db.tables import JobRound, Model


def write(session: Session, job_id: str, entries: Sequence[dict[str, Any]]) -> None:
    """Store these rounds (ascending), replacing every row from the first of them on.

    A round written again (an attempt resumed from its checkpoint replays the rounds after
    it) replaces the earlier row, and rows an earlier attempt wrote past the rounds this one
    has reached go, so the stored history is always one attempt's, without gaps or repeats.
    Costs one indexed DELETE over the replaced rows and one INSERT of the new ones."""
    if not entries:
        return
    first = int(entries[0]["round"])
    session.execute(delete(JobRound).where(JobRound.job_id == job_id, JobRound.round >= first))
    session.execute(
        insert(JobRound),
        [
            {
                "job_id": job_id,
                "round": int(e["round"]),
                "metrics": {k: v for k, v in e.items() if k != "round"},
            }
            for e in entries
        ],
    )


def read(
    session: Session, job_id: str, *, after: int = 0, upto: int | None = None
) -> list[dict[str, Any]]:
    """The job's rounds in (`after`, `upto`], ascending (a range scan of the primary key)."""
    query = select(JobRound.round, JobRound.metrics).where(
        JobRound.job_id == job_id, JobRound.round > after
    )
    if upto is not None:
        query = query.where(JobRound.round <= upto)
    return [{"round": r, **m} for r, m in session.execute(query.order_by(JobRound.round))]


def of_jobs(session: Session, job_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """The histories of several jobs (a search's trials) in one query."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if not job_ids:
        return out
    query = (
        select(JobRound.job_id, JobRound.round, JobRound.metrics)
        .where(JobRound.job_id.in_(list(job_ids)))
        .order_by(JobRound.job_id, JobRound.round)
    )
    for job_id, number, metrics in session.execute(query):
        out[job_id].append({"round": number, **metrics})
    return out


def history(session: Session, job_id: str, model_id: str | None) -> list[dict[str, Any]]:
    """The job's rounds, or its model's copy of them when the job has none."""
    rows = read(session, job_id)
    if not rows and model_id is not None:
        rows = list(session.scalar(select(Model.history).where(Model.id == model_id)) or [])
    return rows
