"""A job that does nothing: measures the machinery itself (queue, claim, finish)."""

from __future__ import annotations

from xgenerator.context import Context
from xgenerator.db.tables import Job
from xgenerator.jobs.kinds import Outcome, register
from xgenerator.jobs.runtime import Runtime


class NoopKind:
    job_type = "noop"

    def run(self, context: Context, job: Job, runtime: Runtime) -> Outcome:
        return Outcome(result={"ok": True})


register(NoopKind())
