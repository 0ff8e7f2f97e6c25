from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from xgenerator.api.deps import (
    ContextDep,
    CurrentUser,
    OwnedJob,
    PageLimit,
    PageOffset,
    SessionDep,
)
from xgenerator.api.schemas.jobs import (
    CancelResponse,
    CVRequest,
    JobAccepted,
    JobDetail,
    JobEventPublic,
    JobEvents,
    JobList,
    JobSummary,
    TrainRequest,
)
from xgenerator.api.schemas.tune import Leaderboard, TuneRequest
from xgenerator.api.submission import REPLAY, IdempotencyKey, accepted
from xgenerator.errors import InvalidInput
from xgenerator.jobs import repository, search, service
from xgenerator.jobs.status import JobStatus

router = APIRouter(tags=["jobs"])

JobType = Literal[
    "train", "retrain", "cv", "tune", "process", "predict", "report", "cleanup", "noop"
]


@router.post("/train", status_code=202, response_model=JobAccepted, responses=REPLAY)
def train(
    body: TrainRequest,
    user: CurrentUser,
    context: ContextDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> JobAccepted:
    submission = service.submit(
        context, user.id, "train", body.model_dump(), idempotency_key=idempotency_key
    )
    return accepted(response, submission)


@router.post("/cv", status_code=202, response_model=JobAccepted, responses=REPLAY)
def cross_validate(
    body: CVRequest,
    user: CurrentUser,
    context: ContextDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> JobAccepted:
    """K-fold cross-validation of a /train request; the job's result has the per-round fold
    means and standard deviations, the best round and, with `refit`, the refit model's id."""
    submission = service.submit(
        context, user.id, "cv", body.model_dump(), idempotency_key=idempotency_key
    )
    return accepted(response, submission)


@router.post("/tune", status_code=202, response_model=JobAccepted, responses=REPLAY)
def tune(
    body: TuneRequest,
    user: CurrentUser,
    context: ContextDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> JobAccepted:
    """A hyper-parameter search: a `tune` job, running at once, whose trials are `train` jobs
    (`cv` with `cv_folds`; listed in /jobs with `parent_job_id`); its result is the best
    trial's model. See `GET /jobs/{id}/trials`."""
    submission = search.submit(context, user.id, body.model_dump(), idempotency_key)
    return accepted(response, submission)


@router.get("/jobs/{job_id}/trials", response_model=Leaderboard)
def trials(job: OwnedJob, session: SessionDep) -> Leaderboard:
    """A search's trials, best first by its metric, with their params and status."""
    if job.job_type != "tune":
        raise InvalidInput("only a search (a tune job) has trials", {"job_type": job.job_type})
    board = search.leaderboard(session, job, search.trials(session, job.id))
    return Leaderboard.model_validate({"job_id": job.id, "status": job.status, **board})


@router.post("/jobs/noop", status_code=202, response_model=JobAccepted, responses=REPLAY)
def submit_noop(
    user: CurrentUser,
    context: ContextDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> JobAccepted:
    """A job that does nothing: measures the machinery (submit, queue, claim, finish)."""
    submission = service.submit(context, user.id, "noop", {}, idempotency_key=idempotency_key)
    return accepted(response, submission)


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
        jobs=[JobSummary.model_validate(j) for j in jobs],
        total=total,
        total_exact=exact,
        limit=limit,
        offset=offset,
    )


@router.get("/jobs/{job_id}", response_model=JobDetail)
def get_job(job: OwnedJob) -> JobDetail:
    return JobDetail.model_validate(job)


@router.get("/jobs/{job_id}/events", response_model=JobEvents)
def job_events(job: OwnedJob, session: SessionDep) -> JobEvents:
    rows = repository.events(session, job.id)
    return JobEvents(job_id=job.id, events=[JobEventPublic.model_validate(r) for r in rows])


@router.post("/jobs/{job_id}/cancel", response_model=CancelResponse)
def cancel_job(job: OwnedJob, context: ContextDep) -> CancelResponse:
    return CancelResponse.of(service.cancel(context, job))


@router.delete("/jobs/{job_id}", response_model=CancelResponse)
def delete_job(job: OwnedJob, context: ContextDep) -> CancelResponse:
    """Active job: cancel it. Finished job: delete its record, events and result files
    (a model or dataset it made stays)."""
    previous = job.status
    cancellation = service.delete(context, job)
    if cancellation is not None:
        return CancelResponse.of(cancellation)
    return CancelResponse(
        message="job record deleted", job_id=job.id, previous_status=previous, status="deleted"
    )
