"""Publishing a job's task: the one way a job id reaches the broker and its task id is
recorded (submission, retries, the reconciler's re-sends and re-queues all come here), so
the id stored with the job is always that of the last message sent."""

from __future__ import annotations

import logging
import uuid

from xgenerator.context import Context
from xgenerator.db.tables import Job
from xgenerator.errors import ServiceUnavailable

log = logging.getLogger(__name__)


def new_task_id() -> str:
    return uuid.uuid4().hex


def send(context: Context, job: Job, countdown: float | None = None) -> bool:
    """Publish the job's task under a new id, then record the id; a failure is logged, not
    raised (the reconciler retries). Returns whether the task was published."""
    task_id = new_task_id()
    if not publish(context, job, task_id, countdown):
        return False
    job.celery_task_id = task_id
    with context.db.session() as session:
        session.query(Job).filter(Job.id == job.id).update({"celery_task_id": task_id})
    return True


def publish(context: Context, job: Job, task_id: str, countdown: float | None = None) -> bool:
    """Publish under a task id the caller already recorded (submission stores it with the
    row, saving a transaction); False when the broker refused."""
    try:
        context.dispatcher.send(job.id, job.queue, countdown, task_id=task_id)
    except Exception:
        log.exception("job %s: could not send its task; the reconciler will", job.id)
        return False
    return True


def forget_task_id(context: Context, job: Job) -> None:
    """The task recorded with the job was never sent: show none, like any job not sent yet
    (unless the reconciler sent one meanwhile)."""
    sent, job.celery_task_id = job.celery_task_id, None
    try:
        with context.db.session() as session:
            session.query(Job).filter(Job.id == job.id, Job.celery_task_id == sent).update(
                {"celery_task_id": None}
            )
    except ServiceUnavailable:
        log.warning("job %s: could not clear the task id of an unsent task", job.id)
