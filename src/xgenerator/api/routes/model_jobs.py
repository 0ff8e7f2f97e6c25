"""Jobs that run on a model: batch prediction over a dataset, and the model's report."""

from __future__ import annotations

from fastapi import APIRouter, Response

from xgenerator.api.deps import ContextDep, CurrentUser
from xgenerator.api.files import stored_file
from xgenerator.api.schemas.jobs import JobAccepted
from xgenerator.api.schemas.model_jobs import PredictBatchRequest
from xgenerator.api.submission import REPLAY, IdempotencyKey, accepted
from xgenerator.jobs import service
from xgenerator.jobs.kinds import report
from xgenerator.jobs.kinds.report import REPORT_NAME

router = APIRouter(tags=["models"])

# A report is our own HTML, but model and column names in it come from users: even if
# escaping failed somewhere, a browser must not run a script from it or fetch anything.
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


@router.post(
    "/models/{model_id}/predict-batch",
    status_code=202,
    response_model=JobAccepted,
    responses=REPLAY,
)
def predict_batch(
    model_id: str,
    body: PredictBatchRequest,
    user: CurrentUser,
    context: ContextDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> JobAccepted:
    request = {"model_id": model_id, **body.model_dump()}
    submission = service.submit(
        context, user.id, "predict", request, idempotency_key=idempotency_key
    )
    return accepted(response, submission)


@router.post(
    "/models/{model_id}/report", status_code=202, response_model=JobAccepted, responses=REPLAY
)
def create_report(
    model_id: str,
    user: CurrentUser,
    context: ContextDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> JobAccepted:
    submission = service.submit(
        context, user.id, "report", {"model_id": model_id}, idempotency_key=idempotency_key
    )
    return accepted(response, submission)


@router.get(
    "/models/{model_id}/report",
    response_class=Response,
    responses={200: {"content": {"text/html": {}}}},
)
def get_report(model_id: str, user: CurrentUser, context: ContextDep) -> Response:
    """The latest succeeded report of the model, as HTML (404 `report_not_found` if none)."""
    with context.db.session() as session:
        artifact = report.latest_report(session, user.id, model_id)
    # Streamed: a 1,000-class report is about 100 MB of HTML.
    return stored_file(
        context.store,
        artifact.storage_key,
        "text/html; charset=utf-8",
        REPORT_NAME,
        csp=REPORT_CSP,
        disposition="inline",
    )
