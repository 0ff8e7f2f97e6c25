"""A job's per-round metrics (its "history"), stored one row per round in `job_rounds`.

A running job appends the rounds since its last progress write, so each write costs the same
at round 10 as at round 10,000, and a live stream reads only the rounds after its cursor.
Callers see a history as before: a list of `{"round": n, <metric>: value, ...}`, ascending.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from cachetools import LRUCache
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from xgenerator.db.tables import Job, JobRound, Model
from xgenerator.jobs.status import FINAL


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


# The rounds of a job that has ended never change, and a search reads those of all its trials
# each time it schedules one (and as a trial decides whether to prune, or ends): read from the
# database each time, a search's cost grew with the square of its size. Each process keeps
# them, up to this many rounds in all (about 20 MB), least recently used first out.
ENDED_ROUNDS_KEPT = 50_000
_ended: LRUCache[str, list[dict[str, Any]]] = LRUCache(
    maxsize=ENDED_ROUNDS_KEPT, getsizeof=lambda history: len(history) + 1
)


def of_jobs(session: Session, jobs: Sequence[Job]) -> dict[str, list[dict[str, Any]]]:
    """The histories of several jobs (a search's trials), those not kept in one query.
    Shared between callers: read them, never change them."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    unread = []
    for job in jobs:
        kept = _ended.get(job.id) if job.status in FINAL else None
        if kept is None:
            unread.append(job)
        else:
            out[job.id] = kept
    if not unread:
        return out
    query = (
        select(JobRound.job_id, JobRound.round, JobRound.metrics)
        .where(JobRound.job_id.in_([job.id for job in unread]))
        .order_by(JobRound.job_id, JobRound.round)
    )
    for job_id, number, metrics in session.execute(query):
        out[job_id].append({"round": number, **metrics})
    for job in unread:
        # its status was read before its rounds: an ended job's rounds were all committed
        if job.status in FINAL and len(out[job.id]) < ENDED_ROUNDS_KEPT:
            _ended[job.id] = out[job.id]
    return out


def history(session: Session, job_id: str, model_id: str | None) -> list[dict[str, Any]]:
    """The job's rounds, or its model's copy of them when the job has none."""
    rows = read(session, job_id)
    if not rows and model_id is not None:
        rows = list(session.scalar(select(Model.history).where(Model.id == model_id)) or [])
    return rows
