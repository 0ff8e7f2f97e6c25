from __future__ import annotations

from typing import Annotated, Any

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
    ModelSummary,
    PredictRequest,
    PredictResponse,
    Row,
)
from xgenerator.api.submission import REPLAY, IdempotencyKey, accepted
from xgenerator.errors import NotFound, PayloadTooLarge
from xgenerator.jobs import service
from xgenerator.ml import explain
from xgenerator.ml.bundle import ModelBundle
from xgenerator.ml.explain import ImportanceType
from xgenerator.ml.predict import Prediction, predict, rows_to_frame
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


@router.post("/models/{model_id}/predict", response_model=PredictResponse)
async def predict_rows(
    model: OwnedModel, body: PredictRequest, user: CurrentUser, context: ContextDep
) -> PredictResponse:
    records = body.records
    limit = context.settings.max_predict_rows
    if len(records) > limit:
        raise PayloadTooLarge(
            f"at most {limit} rows per request; use a batch prediction job",
            {"limit": limit, "rows": len(records)},
        )
    if body.explain and len(records) > context.settings.max_explain_rows:
        raise PayloadTooLarge(
            f"at most {context.settings.max_explain_rows} rows per request with explain; "
            "use a batch prediction job with explain",
            {"limit": context.settings.max_explain_rows, "rows": len(records)},
        )
    loaded = await run_in_threadpool(registry.load_bundle, context, model)
    width = len(loaded.labels.classes) if loaded.labels else len(loaded.quantiles or [1])
    values = len(records) * max(1, width)
    if body.explain:  # a contribution per feature (and the bias) per row, per class
        values *= len(loaded.features) + 2
    if values > context.settings.max_predict_values:
        raise PayloadTooLarge(
            "the answer would be too large (rows x classes or quantiles); use a batch "
            "prediction job",
            {"limit": context.settings.max_predict_values, "values": values},
        )
    result = await run_in_threadpool(_predict_rows, loaded, records)
    contributions = None
    if body.explain:
        contributions = await run_in_threadpool(_explain_rows, loaded, records)
    ids = None
    if body.log:
        ids = await run_in_threadpool(
            feedback.log_predictions, context, user.id, model.id, records, result
        )
    return PredictResponse(
        model_id=model.id,
        predictions=result.predictions,
        probabilities=result.probabilities,
        prediction_ids=ids,
        contributions=contributions,
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
    over a sample of the training rows, computed when the model was trained."""
    rows = None
    if type == "shap":
        summary = (model.importance or {}).get("shap")
        if summary is None:  # a model trained before SHAP summaries were kept
            raise NotFound("shap_importance", model.id)
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


def _explain_rows(loaded: ModelBundle, records: list[Row]) -> list[dict[str, Any]]:
    return explain.explain(loaded, rows_to_frame(records, [f.name for f in loaded.features]))


def _predict_rows(loaded: ModelBundle, records: list[Row]) -> Prediction:
    """Off the event loop: only the model's feature columns are built from the rows."""
    return predict(loaded, rows_to_frame(records, [f.name for f in loaded.features]))
