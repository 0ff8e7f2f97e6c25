"""Per-user quotas, checked inside the transaction that records a new job."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from xgenerator.db.tables import Job, User
from xgenerator.errors import QuotaExceeded
from xgenerator.jobs.status import ACTIVE

# Seconds a client is told to wait; jobs rarely finish sooner than this.
QUOTA_RETRY_AFTER_S = 30


def check_active_jobs(session: Session, user_id: str, limit: int) -> None:
    """Refuse a new job while the user has `limit` jobs queued or running (0 = no quota).

    Called right after the new job's row was inserted, in the same transaction: it counts
    itself, and raising rolls the insert back. Inserting first makes SQLite take its write lock
    before the count (so concurrent submissions are counted one after the other); PostgreSQL
    gets the same order from the lock on the user's row, taken before counting.
    """
    if limit <= 0:
        return
    # FOR NO KEY UPDATE: serializes one user's submissions without blocking inserts that
    # merely reference the user (uploads, keys).
    session.execute(select(User.id).where(User.id == user_id).with_for_update(key_share=True))
    query = select(func.count()).where(
        Job.user_id == user_id, Job.status.in_([s.value for s in ACTIVE])
    )
    others = (session.scalar(query) or 0) - 1
    if others >= limit:
        raise QuotaExceeded(
            f"you already have {others} active jobs; the limit is {limit}",
            retry_after=QUOTA_RETRY_AFTER_S,
            details={"active_jobs": others, "limit": limit},
        )
