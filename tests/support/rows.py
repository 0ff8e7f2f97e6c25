"""Job rows made directly (no API, no worker) and the broker messages sent for them."""

from __future__ import annotations

import json

from xgenerator.context import Context
from xgenerator.db.tables import Job, User
from xgenerator.jobs import repository
from xgenerator.ops.broker import queue_keys, redis_client


def new_user(context: Context, username: str = "alice") -> str:
    with context.db.session() as session:
        user = User(username=username, email=f"{username}@example.com")
        session.add(user)
        session.flush()
        return user.id


def new_job(context: Context, job_type: str = "noop", queue: str = "maintenance") -> Job:
    """A job committed as `queued` but never sent."""
    user_id = new_user(context)
    with context.db.session() as session:
        job = Job(user_id=user_id, job_type=job_type, queue=queue, config={})
        repository.create(session, job)
        return job


def queued_task_ids(context: Context, queue: str) -> list[str]:
    broker = redis_client(context.settings.broker_url or "")
    try:
        return [
            json.loads(m)["headers"]["id"]
            for key in queue_keys(queue)
            for m in broker.lrange(key, 0, -1)
        ]
    finally:
        broker.close()
