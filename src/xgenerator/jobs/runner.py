"""Running one delivery of a job: claim, run its kind, record the outcome (fenced).

A delivery that cannot claim the job (it is running elsewhere, finished or cancelled) does
nothing, which is what makes at-least-once delivery safe.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from xgenerator.context import Context
from xgenerator.db.tables import Job, JobArtifact
from xgenerator.errors import InvalidInput, NotFound, ServiceUnavailable, TrainingFailed
from xgenerator.jobs import finished, isolation, kinds, publish, repository, rounds, state
from xgenerator.jobs.kinds import Outcome
from xgenerator.jobs.runtime import (
    JobCancelled,
    JobEnded,
    LeaseLost,
    Runtime,
    TimeLimitExceeded,
    TrialPruned,
)
from xgenerator.jobs.status import FINAL, JobStatus

log = logging.getLogger(__name__)
T = TypeVar("T")

FollowUp = Callable[[], None] | None

# How long a worker keeps trying to record a job's outcome while the database is away.
FINISH_PATIENCE_S = 120.0


def run(context: Context, job_id: str, worker_id: str) -> str:
    """Run the job if this delivery can claim it; returns what happened (for logs and tests)."""
    settings = context.settings
    with context.db.session() as session:
        job = repository.claim_job(session, job_id, worker_id, settings.lease_s)
    if job is None:
        log.info("job %s: not claimable, delivery ignored", job_id)
        return "skipped"
    attempt = job.attempts
    if attempt == 1 and job.started_at is not None:
        context.metrics.started(job.job_type, (job.started_at - job.created_at).total_seconds())
    runtime = Runtime(context, job_id, attempt, job.job_type)

    def on_end(result: str) -> None:
        """Once the outcome is known, before the work that follows a success."""
        if result in FINISHED:
            status = JobStatus(FINISHED[result])
            finished.record(context, job.job_type, status, time.monotonic() - runtime.started)
        if job.parent_job_id is not None:
            # a search's trial: its end (or retry) lets the search schedule the next trials
            from xgenerator.jobs import search

            search.on_trial_finished(context, job.parent_job_id)

    if isolation.wanted(settings, job.job_type):
        # in a process of its own, which the lease thread stops at once when the job must end
        call = isolation.Call(job_id, attempt, isolation.works_elsewhere(job))
        return isolation.run(context, runtime, call, in_job_process, on_end)
    with runtime.keeping_lease():
        result, then = _execute(context, job, runtime)
    on_end(result)
    _follow_up(job_id, then)
    return result


def in_job_process(context: Context, call: isolation.Call) -> tuple[Runtime, isolation.Work]:
    """In the job's own process: the claimed attempt, read back, and the job's work."""
    job = _patiently(lambda: _load(context, call.job_id))
    runtime = Runtime(context, call.job_id, call.attempt, job.job_type)

    def work() -> tuple[str, Callable[[], None]]:
        result, then = _execute(context, job, runtime)
        return result, lambda: _follow_up(call.job_id, then)

    return runtime, work


# What `run` returns when the job reached a final status, and that status: the status's
# name, or "pruned" for a search's trial that its pruner stopped (it ends `cancelled`; its
# process, unlike a cancelled job's, runs the next job).
FINISHED = {s.value: s.value for s in FINAL} | {"pruned": JobStatus.CANCELLED.value}


def _execute(context: Context, job: Job, runtime: Runtime) -> tuple[str, FollowUp]:
    """Run the job's kind and record how it ended; returns what happened, and the work that
    follows a success (`Outcome.then`), for the caller to run once it has said so."""
    job_id, attempt = job.id, runtime.attempt
    try:
        outcome = kinds.get(job.job_type).run(context, job, runtime)
        runtime.check()  # the last phase may have run past the limit, or the job was ended
    except TrialPruned as exc:
        return _pruned(context, runtime, exc), None
    except JobCancelled:
        return _cancel(context, runtime), None
    except LeaseLost:
        log.warning("job %s: attempt %s lost its lease; stopping quietly", job_id, attempt)
        return "lost", None
    except JobEnded:
        log.warning("job %s: ended while running (cancel or time limit); stopping", job_id)
        return "ended", None
    except TimeLimitExceeded as exc:
        return _fail(context, runtime, "TimeLimitExceeded", str(exc)), None
    except TrainingFailed as exc:
        return _fail(context, runtime, exc.error_type, exc.message, exc.details), None
    except (InvalidInput, NotFound) as exc:
        return _fail(context, runtime, type(exc).__name__, exc.message, exc.details), None
    except (ServiceUnavailable, ConnectionError, TimeoutError) as exc:
        return _retry_later(context, runtime, exc), None
    except Exception as exc:
        log.exception("job %s: unexpected error", job_id)
        return _fail(context, runtime, type(exc).__name__, str(exc)[:500]), None
    result = _succeed(context, runtime, outcome)
    return result, outcome.then if result == "succeeded" else None


def _follow_up(job_id: str, then: FollowUp) -> None:
    """The work after a success; the job is final, so a failure here is only logged."""
    if then is None:
        return
    try:
        then()
    except Exception:
        log.exception("job %s: the work after its success failed", job_id)


class _Abort(Exception):
    """Rolls back a transaction whose fenced status change did not apply."""


def _succeed(context: Context, runtime: Runtime, outcome: Outcome) -> str:
    progress = _final_progress(runtime).as_json()

    def commit() -> bool:
        try:
            with context.db.session() as session:
                # Status first: if this attempt no longer owns the job, nothing else is written.
                if not repository.transition(
                    session,
                    runtime.job_id,
                    JobStatus.SUCCEEDED,
                    event="succeeded",
                    message="finished",
                    attempt=runtime.attempt,
                    unless_cancel_requested=True,
                    result=outcome.result,
                    model_id=outcome.model_id,
                    progress=progress,
                ):
                    raise _Abort
                rounds.write(session, runtime.job_id, runtime.unstored_rounds())
                if outcome.commit is not None:
                    outcome.commit(session)
                session.add_all(
                    JobArtifact(
                        job_id=runtime.job_id,
                        name=a.name,
                        content_type=a.content_type,
                        storage_key=a.key,
                        size_bytes=a.size,
                    )
                    for a in outcome.artifacts
                )
        except _Abort:
            return False
        return True

    if _patiently(commit):
        runtime.rounds_stored()
        runtime.drop_checkpoint()
        return "succeeded"
    # The fenced update matched nothing. Read the row before deleting anything.
    job = _patiently(lambda: _load(context, runtime.job_id))
    if _is_this_success(job, runtime, outcome):
        runtime.drop_checkpoint()
        return "succeeded"
    # Cancelled, or taken over by another attempt, while we were finishing: keep nothing.
    for key in outcome.written_keys():
        context.store.delete(key)
    if job.status is JobStatus.RUNNING and job.attempts == runtime.attempt:
        return _cancel(context, runtime)  # the success was refused for a cancel request
    return "discarded"


def _is_this_success(job: Job, runtime: Runtime, outcome: Outcome) -> bool:
    """Whether this attempt's success is already in the database: a COMMIT that landed but
    whose answer was lost (the connection dropped) is retried, and the retry's fenced
    update then matches nothing. Without this check, a success lost its model."""
    return (
        job.status is JobStatus.SUCCEEDED
        and job.attempts == runtime.attempt
        and job.model_id == outcome.model_id
    )


def _cancel(context: Context, runtime: Runtime) -> str:
    """End as cancelled (fenced); the checkpoint goes only if this attempt still owned it."""
    if not _finish(
        context, runtime, JobStatus.CANCELLED, event="cancelled", message="cancelled while running"
    ):
        return "lost"
    runtime.drop_checkpoint()
    return "cancelled"


def _pruned(context: Context, runtime: Runtime, exc: TrialPruned) -> str:
    """A search's pruner stopped the trial: `cancelled`, with a `pruned` event and result."""
    if not _finish(
        context,
        runtime,
        JobStatus.CANCELLED,
        event="pruned",
        message=exc.reason,
        result={"pruned": True, "round": exc.round, "reason": exc.reason},
    ):
        return "lost"
    runtime.drop_checkpoint()
    return "pruned"


def _final_progress(runtime: Runtime) -> state.Progress:
    """100 %, at the last round recorded (with its metrics), if the job had rounds."""
    if not runtime.history:
        return state.progress(percent=100.0, message="done")
    last = runtime.history[-1]
    metrics = {k: v for k, v in last.items() if k != "round"}
    return state.progress(
        percent=100.0,
        message="done",
        round=last["round"],
        total_rounds=last["round"],
        metrics=metrics,
    )


def _finish(
    context: Context,
    runtime: Runtime,
    status: JobStatus,
    *,
    event: str,
    message: str,
    **fields: Any,
) -> bool:
    def write() -> bool:
        with context.db.session() as session:
            changed = repository.transition(
                session,
                runtime.job_id,
                status,
                event=event,
                message=message,
                attempt=runtime.attempt,
                **fields,
            )
            if changed:  # the rounds since the last progress write are kept, whatever the end
                rounds.write(session, runtime.job_id, runtime.unstored_rounds())
            return changed

    if not _patiently(write):
        return False
    runtime.rounds_stored()
    return True


def _fail(
    context: Context,
    runtime: Runtime,
    error_type: str,
    message: str,
    details: dict[str, Any] | None = None,
) -> str:
    error = state.job_error(error_type, message, details).as_json()
    if not _finish(
        context,
        runtime,
        JobStatus.FAILED,
        event="failed",
        message=f"{error_type}: {message}",
        error=error,
    ):
        return "lost"  # another attempt owns the job: its checkpoint is not ours to delete
    runtime.drop_checkpoint()
    return "failed"


def _retry_later(context: Context, runtime: Runtime, exc: Exception) -> str:
    """A transient error (database or storage away): re-queue with exponential backoff,
    keeping the checkpoint, until the attempts run out."""
    settings = context.settings
    if runtime.attempt >= settings.max_attempts:
        return _fail(context, runtime, "TransientErrorsExhausted", str(exc)[:500])
    delay = min(2.0**runtime.attempt, 60.0)
    requeued = _finish(
        context,
        runtime,
        JobStatus.QUEUED,
        event="retry_scheduled",
        message=f"transient error, retrying in {delay:g}s: {exc}"[:500],
        worker_id=None,
        lease_expires_at=None,
    )
    if requeued:
        # Through `publish`, so the recorded task id is the retry's (if this send fails,
        # the reconciler sends the queued job later).
        job = _patiently(lambda: _load(context, runtime.job_id))
        publish.send(context, job, countdown=delay)
    return "retrying"


def _load(context: Context, job_id: str) -> Job:
    with context.db.session() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise NotFound("job", job_id)
        return job


def _patiently(write: Callable[[], T]) -> T:
    """Retry a write while the database is unavailable, with capped exponential backoff."""
    deadline = time.monotonic() + FINISH_PATIENCE_S
    delay = 0.2
    while True:
        try:
            return write()
        except ServiceUnavailable:
            if time.monotonic() > deadline:
                raise
            log.warning("database unavailable; retrying in %.1fs", delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
