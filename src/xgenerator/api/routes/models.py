from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from starlette.concurrency import run_in_threadpool

from xgenerator.api.deps import (
    ContextDep,
    CurrentUser,
    OwnedModel,
    PageLimit,
    PageOffset,
    SessionDep,
)
from xgenerator.api.schemas.jobs import JobAccepted, RetrainRequest
from xgenerator.api.schemas.models import (
    FeatureImportance,
    ImportanceResponse,
    ModelDetail,
    ModelList,
    ModelSignature,
    ModelSummary,
)
from xgenerator.api.submission import REPLAY, IdempotencyKey, accepted
from xgenerator.errors import NotFound
from xgenerator.jobs import service
from xgenerator.ml import explain
from xgenerator.ml.explain import ImportanceType
from xgenerator.ml.signature import signature
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
        models=[ModelSummary.model_validate(r) for r in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/models/{model_id}", response_model=ModelDetail)
def get_model(model: OwnedModel) -> ModelDetail:
    return ModelDetail.model_validate(model)


@router.get(
    "/models/{model_id}/download",
    response_class=Response,
    responses={200: {"content": {"application/ubjson": {}}}},
)
def download_model(model: OwnedModel, context: ContextDep) -> Response:
    """The booster in XGBoost's UBJSON format: `xgboost.Booster(model_file=...)` loads it."""
    data = context.store.get_bytes(model.storage_key)
    return Response(
        data,
        media_type="application/ubjson",
        headers={
            "Content-Disposition": f'attachment; filename="{model.id}.ubj"',
            "Cache-Control": "private",
        },
    )


@router.delete("/models/{model_id}", status_code=204)
def delete_model(model: OwnedModel, context: ContextDep) -> None:
    registry.delete(context, model)


NO_SHAP_SUMMARY = (
    "the summary is computed just after the training job succeeds (its `shap_summary` event "
    "says when); none is kept if that failed (a `shap_summary_failed` event), for a search's "
    "trial that did not lead the search when it ended (`shap_summary_skipped`) or for models "
    "trained before summaries were kept. `type=gain` needs none"
)


@router.get("/models/{model_id}/importance", response_model=ImportanceResponse)
async def feature_importance(
    model: OwnedModel,
    context: ContextDep,
    type: Annotated[
        ImportanceType, Query(description="XGBoost's split importance, or `shap`")
    ] = "gain",
) -> ImportanceResponse:
    """Per dataset column (date-time parts folded in). `shap` is the mean |contribution|
    over a sample of the training rows, computed just after the model was trained."""
    rows = None
    if type == "shap":
        summary = (model.importance or {}).get("shap")
        if summary is None:
            raise NotFound("shap_importance", model.id, NO_SHAP_SUMMARY)
        values, rows = summary["values"], summary["rows"]
    else:
        loaded = await run_in_threadpool(registry.load_bundle, context, model)
        values = explain.importance(loaded.booster, loaded.features, type)
    ranked = sorted(values.items(), key=lambda item: (-item[1], item[0]))
    return ImportanceResponse(
        model_id=model.id,
        type=type,
        importance=[FeatureImportance(feature=k, value=v) for k, v in ranked],
        rows=rows,
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
    request = {"model_id": model_id, **body.model_dump()}
    submission = service.submit(
        context, user.id, "retrain", request, idempotency_key=idempotency_key
    )
    return accepted(response, submission)


@router.get("/models/{model_id}/signature", response_model=ModelSignature)
async def model_signature(
    model: OwnedModel,
    context: ContextDep,
    max_categories: Annotated[int, Query(ge=0, le=10_000)] = 50,
) -> ModelSignature:
    """The columns `predict` requires, how it reads them, and what it answers."""
    loaded = await run_in_threadpool(registry.load_bundle, context, model)
    return ModelSignature(model_id=model.id, **signature(loaded, max_categories))
