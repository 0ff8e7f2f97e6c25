"""A finished job's result and the files it produced."""

from __future__ import annotations

from typing import Any

from xgenerator.api.schemas import Response
from xgenerator.api.schemas.jobs import JobError
from xgenerator.db.tables import Job, JobArtifact


class ArtifactPublic(Response):
    name: str
    content_type: str
    size: int
    download_url: str

    @classmethod
    def of(cls, row: JobArtifact) -> ArtifactPublic:
        return cls(
            name=row.name,
            content_type=row.content_type,
            size=row.size_bytes,
            download_url=f"/jobs/{row.job_id}/artifacts/{row.name}",
        )


class JobResult(Response):
    job_id: str
    job_type: str
    status: str
    result: dict[str, Any] | None
    error: JobError | None
    artifacts: list[ArtifactPublic]

    @classmethod
    def of(cls, job: Job, artifacts: list[JobArtifact]) -> JobResult:
        return cls(
            job_id=job.id,
            job_type=job.job_type,
            status=job.status,
            result=job.result,
            error=JobError(**job.error) if job.error else None,
            artifacts=[ArtifactPublic.of(a) for a in artifacts],
        )
