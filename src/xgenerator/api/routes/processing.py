from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Response

from xgenerator.api.deps import ContextDep, CurrentUser
from xgenerator.api.routes.jobs import REPLAY, IdempotencyKey, accept
from xgenerator.api.schemas.jobs import JobAccepted
from xgenerator.api.schemas.processing import ProcessRequest
from xgenerator.jobs.kinds import process as processing

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
    request = body.model_dump()
    with context.db.session() as session:
        job = processing.prepare_process(
            session, user.id, dataset_id, request["operation"], request["options"]
        )
    return accept(context, response, job, idempotency_key, {"dataset_id": dataset_id, **request})
