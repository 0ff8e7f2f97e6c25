"""Submitting a job: record it, commit, then send its id to the broker.

The row is committed before the task is sent, so a worker never receives an id it cannot
read. If sending fails (broker down, process killed in between) the job stays `queued` and
the reconciler sends it again later.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from sqlalchemy.exc import IntegrityError

from xgenerator.context import Context
from xgenerator.db.tables import Job
from xgenerator.errors import Conflict
from xgenerator.jobs import publish, quota, repository

log = logging.getLogger(__name__)


def request_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def submit(
    context: Context,
    job: Job,
    *,
    idempotency_key: str | None = None,
    request_body: dict[str, Any] | None = None,
    enforce_quota: bool = True,
) -> tuple[Job, bool]:
    """Create and enqueue `job`; returns (job, created). With an idempotency key, the same key
    and body return the job created the first time; the same key with another body is a 409.
    A new job beyond the user's active-job quota is a 429 (`enforce_quota=False` for the
    service's own jobs)."""
    digest = request_hash(request_body or {}) if idempotency_key else None
    if idempotency_key:
        job.idempotency_key = idempotency_key
        job.request_hash = digest
        existing = _replay(context, job.user_id, idempotency_key, digest)
        if existing is not None:
            return existing, False
    # The task id is chosen now and stored with the row: one transaction per submission
    # instead of a second one after the send (bench/: POST /train took four, now three).
    task_id = job.celery_task_id = publish.new_task_id()
    try:
        with context.db.session() as session:
            repository.create(session, job)
            if enforce_quota:
                quota.check_active_jobs(
                    session, job.user_id, context.settings.max_active_jobs_per_user
                )
    except IntegrityError:
        # A concurrent request with the same key won the insert.
        existing = _replay(context, job.user_id, idempotency_key or "", digest)
        if existing is None:
            raise
        return existing, False
    context.metrics.submitted(job.job_type)
    if not publish.publish(context, job, task_id):
        publish.forget_task_id(context, job)
    return job, True


def _replay(context: Context, user_id: str, key: str, digest: str | None) -> Job | None:
    with context.db.session() as session:
        existing = repository.find_by_idempotency_key(session, user_id, key)
    if existing is not None and existing.request_hash != digest:
        raise Conflict(
            "Idempotency-Key was already used with a different request", {"job_id": existing.id}
        )
    return existing
