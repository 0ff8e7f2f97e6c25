from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Response

from xgenerator.api.deps import ContextDep, CurrentUser, PageLimit, PageOffset, SessionDep
from xgenerator.api.schemas.jobs import (
    CancelResponse,
    JobAccepted,
    JobDetail,
    JobEventPublic,
    JobEvents,
    JobList,
    JobSummary,
    TrainRequest,
)
from xgenerator.context import Context
from xgenerator.db.tables import Job
from xgenerator.errors import Forbidden
from xgenerator.jobs import cancel, repository, submit
from xgenerator.jobs.kinds import cleanup
from xgenerator.jobs.kinds import train as training
from xgenerator.jobs.status import JobStatus

router = APIRouter(tags=["jobs"])

IdempotencyKey = Annotated[
    str | None,
    Header(max_length=200, description="Same key + same body → the same job, not a new one"),
]
JobType = Literal["train", "retrain", "process", "predict", "report", "cleanup", "noop"]
# Routes that submit a job answer 202, or 200 when an Idempotency-Key replays a submission.
REPLAY: dict[int | str, dict[str, object]] = {
    200: {"model": JobAccepted, "description": "Replay: the job this Idempotency-Key created"}
}


def accept(
    context: Context,
    response: Response,
    job: Job,
    idempotency_key: str | None,
    body: dict[str, object],
) -> JobAccepted:
    """Submit a prepared job and answer 202 (or 200 for an idempotent replay)."""
    job, created = submit.submit(context, job, idempotency_key=idempotency_key, request_body=body)
    response.status_code = 202 if created else 200
    response.headers["Location"] = f"/jobs/{job.id}"
    message = "job queued" if created else "job already submitted with this Idempotency-Key"
    return JobAccepted(
        job_id=job.id,
        job_type=job.job_type,
        status=job.status,
        created_at=job.created_at,
        message=message,
    )


@router.post("/train", status_code=202, response_model=JobAccepted, responses=REPLAY)
def train(
    body: TrainRequest,
    user: CurrentUser,
    context: ContextDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> JobAccepted:
    if body.user_id is not None and body.user_id != user.id:
        raise Forbidden("user_id does not match the API key's user")
    config = body.model_dump(exclude={"user_id"})
    with context.db.session() as session:
        job = training.prepare_train(session, context.settings, user.id, config)
    return accept(context, response, job, idempotency_key, config)


@router.post("/jobs/noop", status_code=202, response_model=JobAccepted, responses=REPLAY)
def submit_noop(
    user: CurrentUser,
    context: ContextDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> JobAccepted:
    """A job that does nothing: measures the machinery (submit, queue, claim, finish)."""
    job = Job(user_id=user.id, job_type="noop", queue="maintenance", config={})
    return accept(context, response, job, idempotency_key, {})


@router.get("/jobs", response_model=JobList)
def list_jobs(
    user: CurrentUser,
    session: SessionDep,
    status: JobStatus | None = None,
    job_type: JobType | None = None,
    model_name: Annotated[str | None, Query(max_length=200)] = None,
    limit: PageLimit = 50,
    offset: PageOffset = 0,
) -> JobList:
    jobs, total, exact = repository.list_owned(
        session,
        user.id,
        status=status,
        job_type=job_type,
        model_name=model_name,
        limit=limit,
        offset=offset,
    )
    return JobList(
        jobs=[JobSummary.of(j) for j in jobs],
        total=total,
        total_exact=exact,
        limit=limit,
        offset=offset,
    )


@router.get("/jobs/{job_id}", response_model=JobDetail)
def get_job(job_id: str, user: CurrentUser, session: SessionDep) -> JobDetail:
    return JobDetail.of(repository.get_owned(session, user.id, job_id))


@router.get("/jobs/{job_id}/events", response_model=JobEvents)
def job_events(job_id: str, user: CurrentUser, session: SessionDep) -> JobEvents:
    job = repository.get_owned(session, user.id, job_id)
    rows = repository.events(session, job.id)
    return JobEvents(job_id=job.id, events=[JobEventPublic.of(r) for r in rows])


@router.post("/jobs/{job_id}/cancel", response_model=CancelResponse)
def cancel_job(
    job_id: str, user: CurrentUser, session: SessionDep, context: ContextDep
) -> CancelResponse:
    job = repository.get_owned(session, user.id, job_id)
    previous = cancel.cancel(session, job)
    return _cancelled(context, job, previous)


def _cancelled(context: Context, job: Job, previous: str) -> CancelResponse:
    job_id = job.id
    if previous == JobStatus.QUEUED:
        context.metrics.finished(job.job_type, JobStatus.CANCELLED)
        return CancelResponse(
            message="job cancelled",
            job_id=job_id,
            previous_status=previous,
            status=JobStatus.CANCELLED,
        )
    return CancelResponse(
        message="cancellation requested; the job stops within a round",
        job_id=job_id,
        previous_status=previous,
        status=JobStatus.RUNNING,
    )


@router.delete("/jobs/{job_id}", response_model=CancelResponse)
def delete_job(job_id: str, user: CurrentUser, context: ContextDep) -> CancelResponse:
    """Active job: cancel it. Finished job: delete its record, events and result files
    (a model or dataset it made stays)."""
    with context.db.session() as session:
        job = repository.get_owned(session, user.id, job_id)
        if not JobStatus(job.status).is_final:
            return _cancelled(context, job, cancel.cancel(session, job))
        previous = job.status
        delete_files = cleanup.purge_jobs(context, session, [job.id])
    delete_files()
    return CancelResponse(
        message="job record deleted", job_id=job_id, previous_status=previous, status="deleted"
    )
