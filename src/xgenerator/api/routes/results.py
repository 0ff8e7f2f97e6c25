"""A finished job's result and its files (reports, predictions, profiles): owner only."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from xgenerator.api.deps import ContextDep, OwnedJob, SessionDep
from xgenerator.api.files import stored_file
from xgenerator.api.schemas.results import JobResult
from xgenerator.errors import Conflict
from xgenerator.jobs import repository
from xgenerator.jobs.status import JobStatus

router = APIRouter(tags=["jobs"])


@router.get("/jobs/{job_id}/result", response_model=JobResult)
def job_result(job: OwnedJob, session: SessionDep) -> JobResult:
    """409 while the job is queued or running; a failed or cancelled job has no result."""
    if not JobStatus(job.status).is_final:
        raise Conflict(f"job is {job.status}, not finished", {"status": job.status})
    return JobResult.of(job, repository.artifacts(session, job.id))


# What job kinds store (jobs/kinds/derived.py, process.py, report.py), as the spec declares it.
ARTIFACT_TYPES = ("application/vnd.apache.parquet", "application/json", "text/html")


@router.get(
    "/jobs/{job_id}/artifacts/{name}",
    response_class=Response,
    responses={200: {"content": {t: {} for t in ARTIFACT_TYPES}}},
)
def download_artifact(
    job: OwnedJob, name: str, session: SessionDep, context: ContextDep
) -> Response:
    artifact = repository.artifact(session, job.id, name)
    return stored_file(context.store, artifact.storage_key, artifact.content_type, name)
