"""The operator's view of the whole service, for `GET /status`.

Every check is independent: a dead broker still lets the database sections answer, and the
other way round. Workers are known from their heartbeat rows (heartbeats.py), queue depths from
the broker's Redis lists, job counts from the jobs table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

import redis
import xgboost
from sqlalchemy import select, text

import xgenerator
from xgenerator.context import Context
from xgenerator.db.tables import Job, WorkerHeartbeat, utcnow
from xgenerator.errors import ServiceUnavailable
from xgenerator.jobs import stats
from xgenerator.jobs.kinds import cleanup
from xgenerator.jobs.queues import QUEUES, Queue
from xgenerator.ops import broker, heartbeats


@dataclass
class Check:
    ok: bool
    latency_ms: float | None = None
    error: str | None = None


@dataclass
class QueueStatus:
    name: str
    depth: int | None  # messages waiting in Redis; None when the broker is unreachable
    queued_jobs: int  # jobs the database says are queued here
    oldest_queued_age_s: float | None
    workers_alive: int


@dataclass
class StatusReport:
    status: str  # "ok", or "degraded" when the database or the broker is unreachable
    version: str
    xgboost_version: str
    checked_at: datetime
    database: Check
    broker: Check
    workers_alive: int = 0
    workers: list[WorkerHeartbeat] = field(default_factory=list)
    queues: list[QueueStatus] = field(default_factory=list)
    jobs_by_status: dict[str, int] = field(default_factory=dict)
    oldest_queued_age_s: float | None = None
    gpu_queue_without_worker: bool = False
    warnings: list[str] = field(default_factory=list)
    last_cleanup: Job | None = None


def collect(context: Context, now: datetime | None = None) -> StatusReport:
    now = now or utcnow()
    settings = context.settings
    report = StatusReport(
        status="ok",
        version=xgenerator.__version__,
        xgboost_version=xgboost.__version__,
        checked_at=now,
        database=Check(ok=False),
        broker=Check(ok=False),
    )
    depths: dict[str, int] | None = None
    queued: dict[str, int] = {}
    oldest: dict[str, datetime] = {}
    started = time.perf_counter()
    try:
        with context.db.session() as session:
            session.execute(text("SELECT 1"))
            report.database = Check(ok=True, latency_ms=_ms(started))
            report.jobs_by_status = stats.by_status(stats.counts(session))
            queued = stats.queued_by_queue(session)
            oldest = stats.oldest_queued(session)
            report.workers = heartbeats.alive(session, now, settings.worker_heartbeat_timeout_s)
            report.last_cleanup = session.scalar(
                select(Job)
                .where(Job.user_id == cleanup.SYSTEM_USER_ID, Job.job_type == cleanup.JOB_TYPE)
                .order_by(Job.created_at.desc())
                .limit(1)
            )
    except ServiceUnavailable as exc:
        report.database = Check(ok=False, error=exc.message)
    report.workers_alive = len(report.workers)
    if context.redis is None:
        report.broker = Check(ok=False, error="no broker configured")
    else:
        started = time.perf_counter()
        try:
            broker.ping(context.redis)
            report.broker = Check(ok=True, latency_ms=_ms(started))
            depths = broker.queue_depths(context.redis, QUEUES)
        except redis.RedisError as exc:
            report.broker = Check(ok=False, error=str(exc)[:200])
    if oldest:
        report.oldest_queued_age_s = (now - min(oldest.values())).total_seconds()
    for name in QUEUES:
        serving = sum(name in w.queues for w in report.workers)
        at = oldest.get(name)
        queue = QueueStatus(
            name=name,
            depth=depths.get(name, 0) if depths is not None else None,
            queued_jobs=queued.get(name, 0),
            oldest_queued_age_s=(now - at).total_seconds() if at else None,
            workers_alive=serving,
        )
        report.queues.append(queue)
        waiting = queue.queued_jobs or (queue.depth or 0)
        if waiting and not serving and report.database.ok:
            report.warnings.append(
                f"queue {name!r} has {waiting} queued job(s) but no live worker serves it"
            )
            if name == Queue.GPU:
                report.gpu_queue_without_worker = True
    if not (report.database.ok and report.broker.ok):
        report.status = "degraded"
    return report


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
