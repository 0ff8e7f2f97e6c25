"""What `GET /status` answers (read from `system_status.StatusReport`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AliasChoices, Field

from xgenerator.api.schemas import Response


class CheckPublic(Response):
    ok: bool
    latency_ms: float | None
    error: str | None


class WorkerPublic(Response):
    worker_id: str
    hostname: str
    queues: list[str]
    concurrency: int
    pid: int
    version: str
    started_at: datetime
    last_seen_at: datetime


class QueuePublic(Response):
    name: str
    depth: int | None = Field(description="messages waiting in the broker; null if unreachable")
    queued_jobs: int = Field(description="jobs the database says are queued here")
    oldest_queued_age_s: float | None
    workers_alive: int = Field(description="live workers serving this queue")


class CleanupPublic(Response):
    job_id: str = Field(validation_alias=AliasChoices("job_id", "id"))
    status: str
    created_at: datetime
    completed_at: datetime | None
    result: dict[str, Any] | None


class StatusPublic(Response):
    status: str = Field(description='"ok", or "degraded" when the database or broker is down')
    version: str
    xgboost_version: str
    checked_at: datetime
    database: CheckPublic
    broker: CheckPublic
    workers_alive: int
    workers: list[WorkerPublic]
    queues: list[QueuePublic]
    jobs_by_status: dict[str, int]
    oldest_queued_age_s: float | None
    gpu_queue_without_worker: bool
    warnings: list[str]
    last_cleanup: CleanupPublic | None
