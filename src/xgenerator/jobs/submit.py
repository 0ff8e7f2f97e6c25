"""Publishing a job's task to the broker, and recording the task id with the job.

The only place that sends: submission, retries and the reconciler all come through here.
"""

from __future__ import annotations

import logging
import uuid

from xgenerator.context import Context
from xgenerator.db.tables import Job

log = logging.getLogger(__name__)


def new_task_id() -> str:
    return uuid.uuid4().hex


def send(context: Context, job: Job, countdown: float | None = None) -> None:
    """Publish the job's task under a new id, then record the id; a failure is logged, not
    raised: the reconciler retries."""
    task_id = new_task_id()
    if not publish(context, job, task_id, countdown):
        return
    job.celery_task_id = task_id
    with context.db.session() as session:
        session.query(Job).filter(Job.id == job.id).update({"celery_task_id": task_id})


def publish(context: Context, job: Job, task_id: str, countdown: float | None = None) -> bool:
    try:
        context.dispatcher.send(job.id, job.queue, countdown, task_id=task_id)
    except Exception:
        log.exception("job %s: could not send its task; the reconciler will", job.id)
        return False
    return True
