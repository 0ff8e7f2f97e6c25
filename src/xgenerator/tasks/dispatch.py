"""Sending job ids to workers through Celery (the only place that publishes)."""

from __future__ import annotations

import uuid

from celery import Celery

from xgenerator.settings import Settings
from xgenerator.tasks.app import RUN_JOB, make_celery


class CeleryDispatcher:
    def __init__(self, app: Celery) -> None:
        self.app = app

    @classmethod
    def from_settings(cls, settings: Settings) -> CeleryDispatcher:
        return cls(make_celery(settings))

    def send(
        self, job_id: str, queue: str, countdown: float | None = None, task_id: str | None = None
    ) -> str:
        task_id = task_id or uuid.uuid4().hex
        self.app.send_task(
            RUN_JOB, args=[job_id], queue=queue, task_id=task_id, countdown=countdown
        )
        return task_id
