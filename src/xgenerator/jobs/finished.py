"""Counting a job that reached a final status: the one place that does it, called by
whoever made the final transition (the runner, the reconciler, a cancel of a queued job),
after that transition committed, so each finished job is counted once."""

from __future__ import annotations

from xgenerator.context import Context
from xgenerator.jobs.status import JobStatus


def record(
    context: Context, job_type: str, status: JobStatus, duration_s: float | None = None
) -> None:
    """Count the job in the Prometheus metrics; `duration_s` is its running time, if it ran."""
    if not status.is_final:
        raise ValueError(f"{status} is not a final status")
    context.metrics.finished(job_type, status.value, duration_s)
