"""A finished job's result and its files (reports, predictions, profiles): owner only."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.responses import FileResponse, StreamingResponse
from starlette.responses import Response

from xgenerator.api.deps import ContextDep, OwnedJob, SessionDep
from xgenerator.api.schemas.results import JobResult
from xgenerator.artifacts import ArtifactStore
from xgenerator.errors import Conflict, NotFound
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
# A downloaded file is the user's data, never a page of this origin: no script, no fetch.
DOWNLOAD_CSP = "default-src 'none'; sandbox"


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


def stored_file(store: ArtifactStore, key: str, media_type: str, filename: str) -> Response:
    """Stream a stored file as an attachment. Its file may be gone while its row stays (a
    predictions file is also a dataset, which its owner may delete): then 404."""
    if not store.exists(key):
        raise NotFound("artifact", filename)
    local = store.local_path(key)
    # `private`: the owner's browser may keep its own download; no shared cache may.
    headers = {"Content-Security-Policy": DOWNLOAD_CSP, "Cache-Control": "private"}
    if local is not None:
        return FileResponse(local, media_type=media_type, filename=filename, headers=headers)

    def chunks() -> Iterator[bytes]:
        with store.open(key) as handle:
            while block := handle.read(1 << 20):
                yield block

    return StreamingResponse(
        chunks(),
        media_type=media_type,
        headers={**headers, "Content-Disposition": f'attachment; filename="{filename}"'},
    )
