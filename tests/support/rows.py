"""Job and model rows made directly (no API, no worker) and the broker messages sent for
them."""

from __future__ import annotations

import json
from typing import Any

from xgenerator.context import Context
from xgenerator.db.tables import Job, Model, User, new_id
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


def model_row(user_id: str, **fields: Any) -> Model:
    """A registry row with placeholder training fields (no booster file behind it): what
    retention and model references read. `fields` override any column."""
    values: dict[str, Any] = {
        "user_id": user_id,
        "job_id": new_id(),
        "name": "m",
        "task_type": "regression",
        "target": "y",
        "features": [],
        "params": {},
        "metrics": {},
        "history": [],
        "labels": None,
        "row_count": 1,
        "num_boost_round": 1,
        "storage_key": f"models/{new_id()}.ubj",
        "xgboost_version": "3",
    }
    return Model(**(values | fields))


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
