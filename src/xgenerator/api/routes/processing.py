from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Response

from xgenerator.api.deps import ContextDep, CurrentUser
from xgenerator.api.schemas.jobs import JobAccepted
from xgenerator.api.schemas.processing import ProcessRequest
from xgenerator.api.submission import REPLAY, IdempotencyKey, accepted
from xgenerator.jobs import service

router = APIRouter(tags=["datasets"])


@router.post(
    "/datasets/{dataset_id}/process", status_code=202, response_model=JobAccepted, responses=REPLAY
)
def process_dataset(
    dataset_id: str,
    body: Annotated[ProcessRequest, Body()],
    user: CurrentUser,
    context: ContextDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> JobAccepted:
    """Profile, normalize or flag anomalies in a dataset, as a job."""
    request = {"dataset_id": dataset_id, **body.model_dump()}
    submission = service.submit(
        context, user.id, "process", request, idempotency_key=idempotency_key
    )
    return accepted(response, submission)
