"""What the API and the workers share: settings, database, artifact store and dispatcher.

Built once per process at an entry point and passed down; nothing below reads the environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

import redis

from xgenerator.artifacts import ArtifactStore, open_store
from xgenerator.db.engine import Database
from xgenerator.ops.broker import redis_client
from xgenerator.ops.prometheus import JobMetrics
from xgenerator.settings import Settings


class Dispatcher(Protocol):
    """Sends the task that carries a job id to a worker; returns the broker's task id
    (`task_id` when the caller chose it, so that it could record it beforehand)."""

    def send(
        self, job_id: str, queue: str, countdown: float | None = None, task_id: str | None = None
    ) -> str: ...


@dataclass
class Context:
    settings: Settings
    db: Database
    store: ArtifactStore
    dispatcher: Dispatcher

    @cached_property
    def redis(self) -> redis.Redis | None:
        """The broker's Redis, read directly for queue depths, metrics and rate limits
        (built on first use; None without a broker)."""
        url = self.settings.broker_url
        return redis_client(url) if url else None

    @cached_property
    def metrics(self) -> JobMetrics:
        return JobMetrics(self.redis)

    def close(self) -> None:
        self.db.dispose()
        client = self.__dict__.get("redis")
        if client is not None:
            client.close()


def build_context(settings: Settings, dispatcher: Dispatcher | None = None) -> Context:
    if dispatcher is None:
        from xgenerator.tasks.dispatch import CeleryDispatcher

        dispatcher = CeleryDispatcher.from_settings(settings)
    return Context(
        settings, Database(settings.resolved_database_url), open_store(settings), dispatcher
    )
