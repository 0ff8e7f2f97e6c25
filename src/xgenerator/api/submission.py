"""How every route that submits a job answers: 202 with the job, or 200 for a replay."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Response

from xgenerator.api.schemas.jobs import JobAccepted
from xgenerator.jobs.service import Submission

IdempotencyKey = Annotated[
    str | None,
    Header(max_length=200, description="Same key + same body → the same job, not a new one"),
]
# Routes that submit a job answer 202, or 200 when an Idempotency-Key replays a submission.
REPLAY: dict[int | str, dict[str, object]] = {
    200: {"model": JobAccepted, "description": "Replay: the job this Idempotency-Key created"}
}


def accepted(response: Response, submission: Submission) -> JobAccepted:
    job = submission.job
    response.status_code = 202 if submission.created else 200
    response.headers["Location"] = f"/jobs/{job.id}"
    message = (
        submission.message
        if submission.created
        else "job already submitted with this Idempotency-Key"
    )
    return JobAccepted(
        job_id=job.id,
        job_type=job.job_type,
        status=job.status,
        created_at=job.created_at,
        message=message,
    )
