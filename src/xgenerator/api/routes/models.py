from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from starlette.concurrency import run_in_threadpool

from xgenerator.api.deps import ContextDep, CurrentUser, PageLimit, PageOffset, SessionDep
from xgenerator.api.routes.jobs import REPLAY, IdempotencyKey, accept
from xgenerator.api.schemas.jobs import JobAccepted, RetrainRequest
from xgenerator.api.schemas.models import (
    ModelDetail,
    ModelList,
    ModelSummary,
    PredictRequest,
    PredictResponse,
)
from xgenerator.errors import PayloadTooLarge
from xgenerator.jobs.kinds import train as training
from xgenerator.ml.predict import predict, rows_to_frame
from xgenerator.models import feedback
from xgenerator.models import repository as registry

router = APIRouter(tags=["models"])


@router.get("/models", response_model=ModelList)
def list_models(
    user: CurrentUser,
    session: SessionDep,
    name: Annotated[str | None, Query(max_length=200)] = None,
    limit: PageLimit = 50,
    offset: PageOffset = 0,
) -> ModelList:
    rows, total = registry.list_owned(session, user.id, limit, offset, name)
    return ModelList(
        models=[ModelSummary.of(r) for r in rows], total=total, limit=limit, offset=offset
    )


@router.get("/models/{model_id}", response_model=ModelDetail)
def get_model(model_id: str, user: CurrentUser, session: SessionDep) -> ModelDetail:
    return ModelDetail.of(registry.get_owned(session, user.id, model_id))


@router.get(
    "/models/{model_id}/download",
    response_class=Response,
    responses={200: {"content": {"application/ubjson": {}}}},
)
def download_model(model_id: str, user: CurrentUser, context: ContextDep) -> Response:
    """The booster in XGBoost's UBJSON format: `xgboost.Booster(model_file=...)` loads it."""
    with context.db.session() as session:
        row = registry.get_owned(session, user.id, model_id)
    data = context.store.get_bytes(row.storage_key)
    filename = f"{row.id}.ubj"
    return Response(
        data,
        media_type="application/ubjson",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.delete("/models/{model_id}", status_code=204)
def delete_model(model_id: str, user: CurrentUser, context: ContextDep) -> None:
    registry.delete(context, user.id, model_id)


@router.post("/models/{model_id}/predict", response_model=PredictResponse)
async def predict_rows(
    model_id: str, body: PredictRequest, user: CurrentUser, context: ContextDep
) -> PredictResponse:
    records = body.records
    limit = context.settings.max_predict_rows
    if len(records) > limit:
        raise PayloadTooLarge(
            f"at most {limit} rows per request; use a batch prediction job",
            {"limit": limit, "rows": len(records)},
        )
    with context.db.session() as session:
        row = registry.get_owned(session, user.id, model_id)
    loaded = await run_in_threadpool(registry.CACHE.load, context.store, row)
    result = await run_in_threadpool(predict, loaded, rows_to_frame(records))
    ids = None
    if body.log:
        ids = await run_in_threadpool(
            feedback.log_predictions, context, user.id, row.id, records, result
        )
    return PredictResponse(
        model_id=row.id,
        predictions=result.predictions,
        probabilities=result.probabilities,
        prediction_ids=ids,
    )


@router.post(
    "/models/{model_id}/retrain", status_code=202, response_model=JobAccepted, responses=REPLAY
)
def retrain(
    model_id: str,
    body: RetrainRequest,
    user: CurrentUser,
    context: ContextDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> JobAccepted:
    config = body.model_dump()
    with context.db.session() as session:
        job = training.prepare_retrain(session, context.settings, user.id, model_id, config)
    return accept(context, response, job, idempotency_key, {"model_id": model_id, **config})
