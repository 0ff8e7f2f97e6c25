"""Online prediction: `POST /models/{ref}/predict`, and MLflow's `POST /models/{ref}/invocations`
so that MLflow clients work unchanged.

A body is JSON (`PredictRequest`: XGenerator's `rows` or any of MLflow's formats), CSV
(`text/csv`) or Parquet (`application/vnd.apache.parquet`, or `application/octet-stream`
starting with PAR1); the body-size middleware bounds all of them before they are read, and
they are parsed off the event loop. With CSV or Parquet, `output` and `extra_columns` are
query parameters.

These two routes are the service's hot path: they take no FastAPI dependency
(`RequestOnlyRoute`), read the key and model in one query (`caller_model`), and answer a few
rows on the event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import orjson
import pandas as pd
from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders

from xgenerator.api.deps import API_KEY_PARAMETER, caller_model, context_of
from xgenerator.api.schemas.models import (
    MAX_ROW_KEYS,
    ExtraColumns,
    Invocations,
    PredictOptions,
    PredictRequest,
    PredictResponse,
)
from xgenerator.context import Context
from xgenerator.db.tables import Model
from xgenerator.errors import InvalidInput, PayloadTooLarge
from xgenerator.ml import explain, inputs
from xgenerator.ml.bundle import ModelBundle
from xgenerator.ml.outputs import check_output, predict_output
from xgenerator.ml.predict import (
    ONLINE_THREADS,
    Prediction,
    predict,
    predict_records,
    rows_to_frame,
    use_threads,
)
from xgenerator.models import feedback
from xgenerator.models import repository as registry


class RequestOnlyRoute(APIRoute):
    """These routes' class: documented like any other (its parameters, body and answers),
    but its endpoint is called with the request and the path's parameters alone.

    FastAPI's handler solves the route's and the app's dependencies, makes a sub-response
    and validates parameters on every request: ~0.15 ms of a one-row prediction's ~0.9 ms
    in-process. The endpoints authenticate and charge the budget themselves
    (`caller_model`); the app-wide limiter dependency, which acts on sign-up only, is not
    run for them."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint

        async def handle(request: Request) -> Response:
            response: Response = await endpoint(request, **request.path_params)
            return response

        return handle


router = APIRouter(tags=["models"], route_class=RequestOnlyRoute)

_BODY_DOC: dict[str, Any] = {
    "parameters": [API_KEY_PARAMETER],
    "requestBody": {
        "required": True,
        "description": "JSON (PredictRequest: `rows`, `dataframe_records`, `dataframe_split`, "
        "`instances` or `inputs`), CSV with a header row, or a Parquet file",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}},
            "text/csv": {"schema": {"type": "string"}},
            "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
        },
    },
}
_PARQUET_TYPES = ("application/vnd.apache.parquet", "application/x-parquet")
_SCALARS = frozenset({str, int, float, bool, type(None)})  # `Scalar`, as orjson reads them
JSON = "application/json"
# A JSON body this small is parsed on the event loop, and a request with this few rows is
# answered there (fast path only): a trip through the thread pool costs more than either.
INLINE_BYTES = 64 * 1024
INLINE_ROWS = 16
_OPTIONS = TypeAdapter(PredictOptions)


def add_schemas(spec: dict[str, Any]) -> None:
    """Put `PredictRequest` (read by hand, not by FastAPI) among the OpenAPI components."""
    schema = PredictRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    components = spec.setdefault("components", {}).setdefault("schemas", {})
    components.update(schema.pop("$defs", {}))
    components["PredictRequest"] = schema


@dataclass
class _Rows:
    """A request's rows, whatever their format: JSON records, or a frame from CSV/Parquet."""

    request: PredictRequest | None
    options: PredictOptions
    records: list[dict[str, Any]] | None = None
    frame: pd.DataFrame | None = None
    columns: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        if self.records is not None:
            return len(self.records)
        return 0 if self.frame is None else len(self.frame)


@router.post("/models/{model_id}/predict", response_model=PredictResponse, openapi_extra=_BODY_DOC)
async def predict_rows(request: Request, model_id: str) -> Response:
    headers = MutableHeaders()
    caller = await caller_model(request, model_id, headers)
    context = context_of(request)
    model = caller.model
    rows = await _read(request)
    loaded = await _load_checked(context, model, rows)
    body = rows.request
    options = rows.options
    ignored = _extra_columns(loaded, rows, options.extra_columns)
    result, predictions, probabilities, contributions = await _answer_off_loop(loaded, rows)
    ids = None
    if body is not None and body.log and result is not None:
        ids = await run_in_threadpool(_log, context, caller.user_id, model.id, rows, result)
    answer = {
        "model_id": model.id,
        "output": options.output,
        "predictions": predictions,
        "probabilities": probabilities,
        "ignored_columns": ignored,
        "prediction_ids": ids,
        "contributions": contributions,
    }
    return _json(answer, headers)


@router.post("/models/{model_id}/invocations", response_model=Invocations, openapi_extra=_BODY_DOC)
async def invocations(request: Request, model_id: str) -> Response:
    """MLflow's scoring protocol (`mlflow models serve`): `{"predictions": [...]}`."""
    headers = MutableHeaders()
    caller = await caller_model(request, model_id, headers)
    context = context_of(request)
    rows = await _read(request)
    if rows.request is not None and (rows.request.log or rows.request.explain):
        raise InvalidInput("invocations answers predictions only: use /predict to log or explain")
    loaded = await _load_checked(context, caller.model, rows)
    _extra_columns(loaded, rows, rows.options.extra_columns)
    _, predictions, _, _ = await _answer_off_loop(loaded, rows)
    return _json({"predictions": predictions}, headers)


def _json(content: dict[str, Any], headers: MutableHeaders) -> Response:
    """The answer encoded by orjson, as the route's response model documents it (tested to
    match), with `headers` (the rate limit's). Building the response model and FastAPI's
    validating and encoding it took 4x as long for 1,000 rows with probabilities
    (bench/serving.py)."""
    out = Response(orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY), media_type=JSON)
    out.headers.raw.extend(headers.raw)
    return out


async def _read(request: Request) -> _Rows:
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    data = await request.body()
    if kind in ("application/json", "") or kind.endswith("+json"):
        if len(data) <= INLINE_BYTES:
            body = _parse_json(data)
        else:
            body = await run_in_threadpool(_parse_json, data)
        return _Rows(body, body, records=_records_of(body))
    options = _query_options(request)
    if kind in ("text/csv", "application/csv"):
        frame = await run_in_threadpool(inputs.from_csv, data)
    elif kind in _PARQUET_TYPES or (
        kind == "application/octet-stream" and data.startswith(inputs.PARQUET_MAGIC)
    ):
        frame = await run_in_threadpool(inputs.from_parquet, data)
    else:
        raise InvalidInput(
            "unsupported content type: send JSON, text/csv or Parquet",
            {"content_type": kind[:100]},
        )
    inputs.check_width(frame, MAX_ROW_KEYS)
    frame.columns = [str(c) for c in frame.columns]
    return _Rows(None, options, frame=frame)


def _parse_json(data: bytes) -> PredictRequest:
    """The body as a `PredictRequest`: the common one (`rows` or `dataframe_records` of JSON
    scalars) by `_plain_records`, anything else, or anything it does not accept, by pydantic,
    whose 422 says where the body is wrong."""
    plain = _plain_records(data)
    if plain is not None:
        return plain
    try:
        return PredictRequest.model_validate_json(data or b"null")
    except ValidationError as exc:
        raise _validation_error(exc) from None


def _plain_records(data: bytes) -> PredictRequest | None:
    """orjson's parse, the rows checked by hand against `Row` (an object of at most
    `MAX_ROW_KEYS` scalars) and the rest of the body validated by the model: the same request
    pydantic would build, for a third of its time on 1,000 rows (it validates every value
    through the scalar union). None: let pydantic read it (and refuse it if it must)."""
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(raw, dict):
        return None
    given = [name for name in ("rows", "dataframe_records") if name in raw]
    if len(given) != 1:
        return None
    records = raw.pop(given[0])
    if not isinstance(records, list) or not records:
        return None
    for row in records:
        if type(row) is not dict or len(row) > MAX_ROW_KEYS:
            return None
        if not _SCALARS.issuperset(map(type, row.values())):
            return None
    try:
        request = PredictRequest.model_validate({**raw, given[0]: [{}]})
    except ValidationError:
        return None
    setattr(request, given[0], records)
    return request


def _query_options(request: Request) -> PredictOptions:
    params = {k: v for k, v in request.query_params.items() if k in ("output", "extra_columns")}
    try:
        return _OPTIONS.validate_python(params)
    except ValidationError as exc:
        raise _validation_error(exc, "query") from None


def _validation_error(exc: ValidationError, where: str = "body") -> RequestValidationError:
    """The app's ordinary 422; `include_input=False` so that no row value is echoed."""
    errors = exc.errors(include_input=False, include_url=False)
    return RequestValidationError([{**e, "loc": (where, *e["loc"])} for e in errors])


def _records_of(body: PredictRequest) -> list[dict[str, Any]] | None:
    """JSON rows as records; `instances` given as lists are placed once the model is known."""
    if body.rows is not None:
        return list(body.rows)
    if body.dataframe_records is not None:
        return list(body.dataframe_records)
    if body.dataframe_split is not None:
        return inputs.from_split(body.dataframe_split.columns, body.dataframe_split.data)
    if isinstance(body.inputs, dict):
        return inputs.from_columns(body.inputs)
    return None


async def _load_checked(context: Context, model: Model, rows: _Rows) -> ModelBundle:
    """The model, and the request's bounds checked before any row is coded."""
    settings = context.settings
    n = _count(rows)
    if n > settings.max_predict_rows:
        raise PayloadTooLarge(
            f"at most {settings.max_predict_rows} rows per request; use a batch prediction job",
            {"limit": settings.max_predict_rows, "rows": n},
        )
    explaining = rows.options.output == "contributions" or (
        rows.request is not None and rows.request.explain
    )
    if explaining and n > settings.max_explain_rows:
        raise PayloadTooLarge(
            f"at most {settings.max_explain_rows} rows per request with explain; "
            "use a batch prediction job with explain",
            {"limit": settings.max_explain_rows, "rows": n},
        )
    loaded = registry.cached_bundle(model)
    if loaded is None:
        loaded = await run_in_threadpool(registry.load_bundle, context, model)
    if rows.options.output is not None:
        check_output(loaded, rows.options.output)
    width = len(loaded.labels.classes) if loaded.labels else len(loaded.quantiles or [1])
    values = n * max(1, width)
    if explaining:  # a contribution per feature (and the bias) per row, per class
        values *= len(loaded.features) + 2
    if values > settings.max_predict_values:
        raise PayloadTooLarge(
            "the answer would be too large (rows x classes or quantiles); use a batch "
            "prediction job",
            {"limit": settings.max_predict_values, "values": values},
        )
    if rows.records is None and rows.request is not None:
        listed = rows.request.instances or rows.request.inputs or []
        assert isinstance(listed, list)  # noqa: S101 - columnar inputs became records already
        rows.records = inputs.from_instances(listed, [f.name for f in loaded.features])
    return loaded


def _count(rows: _Rows) -> int:
    if rows.request is not None and rows.records is None:
        return len(rows.request.instances or rows.request.inputs or [])
    return len(rows)


def _extra_columns(loaded: ModelBundle, rows: _Rows, policy: ExtraColumns) -> list[str]:
    """Columns the model does not use: listed in the answer, or refused with `error`."""
    names = {f.name for f in loaded.features}
    given = inputs.record_columns(rows.records) if rows.records is not None else []
    if rows.frame is not None:
        given = list(rows.frame.columns)
    extra = [c for c in given if c not in names]
    if extra and policy == "error":
        raise InvalidInput(
            "columns the model does not use (extra_columns: error)", {"columns": extra}
        )
    return extra


_Answer = tuple[Prediction | None, list[Any], list[dict[str, float]] | None, list[Any] | None]


async def _answer_off_loop(loaded: ModelBundle, rows: _Rows) -> _Answer:
    """`_answer` in one trip through the thread pool; a few JSON rows for the fast path are
    answered on the event loop, as their model work (~0.1 ms) costs less than the trip."""
    body = rows.request
    if (
        rows.records is not None
        and len(rows.records) <= INLINE_ROWS
        and rows.options.output is None
        and not (body and body.explain)
        and not any(f.kind == "datetime" for f in loaded.features)  # the frame path
    ):
        return _answer(loaded, rows)
    return await run_in_threadpool(_answer, loaded, rows)


def _answer(loaded: ModelBundle, rows: _Rows) -> _Answer:
    """All the model work of a request: the plain answer to JSON rows takes the
    DataFrame-free `predict_records`, on this thread alone (`use_threads`)."""
    body, output = rows.request, rows.options.output
    explaining = output == "contributions" or bool(body and body.explain)
    use_threads(None if explaining else ONLINE_THREADS)
    if output is None and rows.records is not None and not (body and body.explain):
        plain = predict_records(loaded, rows.records)
        return plain, list(plain.predictions), plain.probabilities, None
    frame = _frame(loaded, rows)
    result: Prediction | None = None
    if output is None or (body is not None and body.log):
        result = predict(loaded, frame)
    if output is not None:
        predictions = predict_output(loaded, frame, output)
        probabilities = None
    else:
        assert result is not None  # noqa: S101 - computed just above
        predictions, probabilities = list(result.predictions), result.probabilities
    contributions = explain.explain(loaded, frame) if body is not None and body.explain else None
    return result, predictions, probabilities, contributions


def _frame(loaded: ModelBundle, rows: _Rows) -> pd.DataFrame:
    names = [f.name for f in loaded.features]
    if rows.frame is not None:
        return rows.frame[[c for c in rows.frame.columns if c in set(names)]]
    return rows_to_frame(rows.records or [], names)


def _log(
    context: Context, user_id: str, model_id: str, rows: _Rows, result: Prediction
) -> list[str]:
    return feedback.log_predictions(context, user_id, model_id, rows.records or [], result)
