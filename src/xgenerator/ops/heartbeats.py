"""Worker heartbeats: one row per running worker, which `/status` and `/metrics` read.

The main process of each worker refreshes its row every `worker_heartbeat_interval_s`
(tasks/worker.py) and deletes it on a clean shutdown. A worker that was killed leaves its row
behind; it counts as dead once `last_seen_at` is older than `worker_heartbeat_timeout_s`, and
the cleanup job deletes such rows a day later.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.orm import Session

import xgenerator
from xgenerator.db.tables import WorkerHeartbeat, utcnow


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker says about itself in its heartbeat."""

    hostname: str
    queues: list[str]
    concurrency: int
    pid: int = field(default_factory=os.getpid)

    @property
    def worker_id(self) -> str:
        # Celery node names are unique per host only by convention; the pid makes them unique.
        return f"{self.hostname}:{self.pid}"


def local_info(hostname: str | None, queues: list[str], concurrency: int) -> WorkerInfo:
    return WorkerInfo(hostname or socket.gethostname(), sorted(queues), concurrency)


def beat(session: Session, info: WorkerInfo, now: datetime | None = None) -> None:
    """Insert or refresh this worker's row. Only its own heartbeat thread writes it, so an
    update-else-insert needs no upsert dialect."""
    now = now or utcnow()
    refreshed = session.execute(
        update(WorkerHeartbeat)
        .where(WorkerHeartbeat.worker_id == info.worker_id)
        .values(last_seen_at=now, queues=info.queues, concurrency=info.concurrency)
    )
    if isinstance(refreshed, CursorResult) and refreshed.rowcount == 1:
        return
    session.add(
        WorkerHeartbeat(
            worker_id=info.worker_id,
            hostname=info.hostname,
            queues=info.queues,
            concurrency=info.concurrency,
            pid=info.pid,
            version=xgenerator.__version__,
            started_at=now,
            last_seen_at=now,
        )
    )


def remove(session: Session, worker_id: str) -> None:
    session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.worker_id == worker_id))


def alive(session: Session, now: datetime, timeout_s: float) -> list[WorkerHeartbeat]:
    """Workers heard from within the timeout, oldest first."""
    since = now - timedelta(seconds=timeout_s)
    query = select(WorkerHeartbeat).where(WorkerHeartbeat.last_seen_at >= since)
    return list(session.scalars(query.order_by(WorkerHeartbeat.started_at)))


def prune(session: Session, older_than: datetime) -> int:
    """Delete the rows of workers silent since `older_than`; how many went."""
    result = session.execute(
        delete(WorkerHeartbeat).where(WorkerHeartbeat.last_seen_at < older_than)
    )
    return result.rowcount if isinstance(result, CursorResult) else 0
