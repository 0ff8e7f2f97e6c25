"""The predict routes' per-request shortcuts keep what they answer: orjson-encoded answers in
the response model's shape with the rate-limit headers, the hand check of JSON rows reading
and refusing what pydantic reads and refuses, and XGBoost's single thread confined to the
thread that predicts. (The key and model lookup: tests/models/test_serving.py.)"""

from __future__ import annotations

import json
import threading
from typing import Any

import numpy as np
import pytest
import xgboost as xgb
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from tests.support import auth, classification_frame, create_user
from tests.support.services import ServiceFactory
from xgenerator.api.routes.predict import _parse_json, _plain_records, _validation_error
from xgenerator.api.schemas.models import MAX_ROW_KEYS, PredictRequest, PredictResponse
from xgenerator.context import Context
from xgenerator.db.tables import Model, new_id
from xgenerator.ml import bundle as bundles
from xgenerator.ml.bundle import ModelBundle
from xgenerator.ml.features import to_model_frame
from xgenerator.ml.predict import use_threads
from xgenerator.ml.train import TrainSpec, train
from xgenerator.models import versions

FEATURES = ["x1", "x2", "color"]


def registered(context: Context, user_id: str) -> tuple[str, ModelBundle]:
    """A small classifier written as a finished training writes it (no job, no worker)."""
    frame = classification_frame(150)
    result = train(frame, TrainSpec("classification", "label", FEATURES, {"nthread": 1}, 5))
    packed = ModelBundle(result.booster, "classification", "label", result.features, result.labels)
    key = context.store.new_key("models", ".ubj")
    context.store.put_bytes(key, bundles.dumps(packed))
    model = Model(
        id=new_id(),
        user_id=user_id,
        job_id=new_id(),
        name="fast",
        task_type="classification",
        target="label",
        features=[f.to_dict() for f in result.features],
        params=result.params,
        metrics=result.metrics,
        history=result.history,
        labels=result.labels.classes if result.labels else None,
        dataset_id=None,
        row_count=len(frame),
        num_boost_round=5,
        storage_key=key,
        xgboost_version=xgb.__version__,
    )
    with context.db.session() as session:
        versions.assign_version(session, model)
        session.add(model)
    return model.id, packed


def test_answers_keep_the_response_model_and_the_rate_limit_headers(
    service: ServiceFactory,
) -> None:
    svc = service(rate_limit_enabled=True, rate_limit_predict=10)
    user = create_user(svc.client)
    model_id, packed = registered(svc.context, user["user_id"])
    frame = classification_frame(5, seed=4)[FEATURES]
    rows = [{**r, "extra": 1} for r in json.loads(frame.to_json(orient="records"))]

    answer = svc.client.post(f"/models/{model_id}/predict", headers=auth(user), json={"rows": rows})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["X-RateLimit-Remaining"] == "9"
    body = answer.json()
    assert list(body) == list(PredictResponse.model_fields)  # every field, nulls included
    assert PredictResponse.model_validate(body).model_dump(mode="json") == body
    assert body["ignored_columns"] == ["extra"] and body["prediction_ids"] is None
    assert packed.labels is not None
    expected = packed.booster.inplace_predict(to_model_frame(frame, packed.features))
    second = str(packed.labels.classes[1])
    np.testing.assert_allclose([p[second] for p in body["probabilities"]], expected, rtol=1e-6)

    # MLflow's route answers the same labels, spends the same budget, says so in its headers
    mlflow = svc.client.post(
        f"/models/{model_id}/invocations", headers=auth(user), json={"dataframe_records": rows}
    )
    assert mlflow.status_code == 200, mlflow.text
    assert mlflow.json() == {"predictions": body["predictions"]}
    assert mlflow.headers["X-RateLimit-Remaining"] == "8"


ACCEPTED: list[dict[str, Any]] = [
    {"rows": [{"x1": 1.5, "x2": None, "color": "red", "flag": True, "n": 3}]},
    {"dataframe_records": [{"x1": 1}, {"x1": -2.5e300}], "output": "probability"},
    {"rows": [{}], "extra_columns": "error", "log": True},
    {"rows": [{"x1": 1}], "params": {"anything": [1, {"a": 2}]}},
    {"rows": [{f"c{i}": i for i in range(MAX_ROW_KEYS)}]},
]
REFUSED: list[Any] = [
    {"rows": [{"x1": {"a": 1}}]},  # an object where a scalar belongs
    {"rows": [{"x1": [1, 2]}]},
    {"rows": [{f"c{i}": i for i in range(MAX_ROW_KEYS + 1)}]},  # too wide
    {"rows": []},
    {"rows": [1]},
    {"rows": [{"x1": 1}], "dataframe_records": [{"x1": 1}]},  # two formats
    {"rows": [{"x1": 1}], "unknown": 1},
    {"rows": [{"x1": 1}], "output": "everything"},
    [{"x1": 1}],
]


@pytest.mark.parametrize("body", ACCEPTED)
def test_the_hand_check_reads_what_pydantic_reads(body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    assert _plain_records(data) is not None  # the shortcut took it
    assert _parse_json(data) == PredictRequest.model_validate_json(data)


@pytest.mark.parametrize("body", REFUSED)
def test_what_pydantic_refuses_is_refused_with_its_errors(body: Any) -> None:
    data = json.dumps(body).encode()
    assert _plain_records(data) is None
    with pytest.raises(ValidationError) as pydantic_error:
        PredictRequest.model_validate_json(data)
    with pytest.raises(RequestValidationError) as ours:
        _parse_json(data)
    expected = _validation_error(pydantic_error.value).errors()
    assert [_plain(e) for e in ours.value.errors()] == [_plain(e) for e in expected]


def _plain(error: dict[str, Any]) -> dict[str, Any]:
    return {**error, "ctx": str(error.get("ctx"))}  # an exception compares by identity


def test_xgboost_threads_are_set_for_the_calling_thread_only() -> None:
    before = xgb.get_config()["nthread"]
    seen: dict[str, int] = {}

    def serve() -> None:
        use_threads(1)
        seen["one"] = xgb.get_config()["nthread"]
        use_threads(None)
        seen["all"] = xgb.get_config()["nthread"]

    thread = threading.Thread(target=serve)
    thread.start()
    thread.join()
    assert seen["one"] == 1 and seen["all"] >= 1
    assert xgb.get_config()["nthread"] == before  # this thread's XGBoost is untouched
