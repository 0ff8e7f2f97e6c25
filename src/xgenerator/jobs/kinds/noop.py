"""A job that does nothing: measures the machinery itself (queue, claim, finish)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from xgenerator.context import Context
from xgenerator.db.tables import Job
from xgenerator.jobs.kinds import Outcome, register
from xgenerator.jobs.queues import Queue
from xgenerator.jobs.runtime import Runtime
from xgenerator.settings import Settings


class NoopKind:
    job_type = "noop"

    def prepare(
        self, session: Session, settings: Settings, user_id: str, request: dict[str, Any]
    ) -> Job:
        return Job(user_id=user_id, job_type=self.job_type, queue=Queue.MAINTENANCE, config={})

    def run(self, context: Context, job: Job, runtime: Runtime) -> Outcome:
        return Outcome(result={"ok": True})


register(NoopKind())
