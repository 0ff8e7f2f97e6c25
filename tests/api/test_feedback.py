"""Prediction feedback through the API: logged predictions, outcomes, performance windows.

The models are trained in-process and registered directly (a factory, not a job): what is
tested here is the feedback, not the training queue.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest
import xgboost as xgb
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from tests.support import auth, classification_frame, create_user, regression_frame
from xgenerator.context import Context
from xgenerator.db.tables import Model, PredictionLog, new_id
from xgenerator.ml import bundle
from xgenerator.ml.bundle import ModelBundle
from xgenerator.ml.train import TrainSpec, train


def stored_model(
    context: Context, user_id: str, task: Any, target: str, features: list[str]
) -> str:
    frame = classification_frame(120) if task == "classification" else regression_frame(120)
    result = train(frame, TrainSpec(task, target, features, {"nthread": 1}, 5))
    packed = ModelBundle(result.booster, task, target, result.features, result.labels)
    key = context.store.new_key("models", ".ubj")
    context.store.put_bytes(key, bundle.dumps(packed))
    model = Model(
        id=new_id(),
        user_id=user_id,
        job_id=new_id(),
        name=f"{task}-model",
        task_type=task,
        target=target,
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
        session.add(model)
    return model.id


def logged(
    client: TestClient, user: dict[str, str], model_id: str, rows: list[dict[str, Any]]
) -> dict[str, Any]:
    response = client.post(
        f"/models/{model_id}/predict", headers=auth(user), json={"rows": rows, "log": True}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def set_times(context: Context, times: dict[str, datetime]) -> None:
    with context.db.session() as session:
        for pid, at in times.items():
            session.execute(
                update(PredictionLog).where(PredictionLog.id == pid).values(created_at=at)
            )


def feedback(
    client: TestClient, user: dict[str, str], model_id: str, items: list[tuple[str, Any]]
) -> Any:
    return client.post(
        f"/models/{model_id}/feedback",
        headers=auth(user),
        json={"items": [{"prediction_id": p, "actual": a} for p, a in items]},
    )


def log_count(context: Context, with_feedback: bool = False) -> int:
    query = select(func.count()).select_from(PredictionLog)
    if with_feedback:
        query = query.where(PredictionLog.feedback_at.is_not(None))
    with context.db.session() as session:
        return session.scalar(query) or 0


CLS_ROWS = [
    {"x1": 2.0, "x2": 8.0, "color": "red"},
    {"x1": -2.0, "x2": 1.0, "color": "blue"},
    {"x1": 0.1, "x2": 6.0, "color": "red"},
    {"x1": -1.5, "x2": 2.0, "color": "green"},
]


def test_accuracy_per_day_from_logged_predictions(client: TestClient, context: Context) -> None:
    user = create_user(client)
    model_id = stored_model(
        context, user["user_id"], "classification", "label", ["x1", "x2", "color"]
    )
    plain = client.post(
        f"/models/{model_id}/predict", headers=auth(user), json={"rows": CLS_ROWS}
    ).json()
    assert plain["prediction_ids"] is None and log_count(context) == 0
    body = logged(client, user, model_id, CLS_ROWS)
    ids, predicted = body["prediction_ids"], body["predictions"]
    assert len(set(ids)) == 4 and predicted == plain["predictions"]
    with context.db.session() as session:
        row = session.get(PredictionLog, ids[0])
        assert row is not None and row.features == CLS_ROWS[0]
        assert row.prediction["value"] == predicted[0] and row.actual is None
    other = {"yes": "no", "no": "yes"}
    day1, day2 = datetime(2024, 3, 1, 10, 30, tzinfo=UTC), datetime(2024, 3, 2, 23, 59, tzinfo=UTC)
    set_times(context, {ids[0]: day1, ids[1]: day1, ids[2]: day2, ids[3]: day2})
    # day 1: one right, one wrong -> 0.5; day 2: one right, one without feedback -> 1.0
    answer = feedback(
        client,
        user,
        model_id,
        [(ids[0], predicted[0]), (ids[1], other[predicted[1]]), (ids[2], predicted[2])],
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"model_id": model_id, "recorded": 3}
    perf = client.get(f"/models/{model_id}/performance", headers=auth(user)).json()
    assert (perf["predictions"], perf["with_feedback"], perf["without_feedback"]) == (4, 3, 1)
    assert perf["accuracy"] == pytest.approx(2 / 3)
    assert [
        (w["start"][:10], w["predictions"], w["with_feedback"], w["accuracy"])
        for w in perf["windows"]
    ] == [("2024-03-01", 2, 2, 0.5), ("2024-03-02", 2, 1, 1.0)]
    assert perf["windows"][0]["end"].startswith("2024-03-02T00:00:00")
    # a second answer replaces the first
    feedback(client, user, model_id, [(ids[1], predicted[1])])
    perf = client.get(f"/models/{model_id}/performance", headers=auth(user)).json()
    assert perf["windows"][0]["accuracy"] == 1.0
    hourly = client.get(
        f"/models/{model_id}/performance", headers=auth(user), params={"window": "hour"}
    ).json()
    assert [w["start"][:13] for w in hourly["windows"]] == ["2024-03-01T10", "2024-03-02T23"]


def test_rmse_and_mae_per_hour_for_a_regressor(client: TestClient, context: Context) -> None:
    user = create_user(client)
    model_id = stored_model(context, user["user_id"], "regression", "y", ["x1", "city"])
    rows = [{"x1": 0.5, "city": "oslo"}, {"x1": -1.0, "city": "rome"}, {"x1": 1.0, "city": "paris"}]
    body = logged(client, user, model_id, rows)
    ids, pred = body["prediction_ids"], body["predictions"]
    at = datetime(2024, 5, 5, 8, 10, tzinfo=UTC)
    set_times(context, dict.fromkeys(ids, at))
    assert (
        feedback(
            client, user, model_id, [(ids[0], pred[0] + 1.0), (ids[1], pred[1] - 3.0)]
        ).status_code
        == 200
    )
    perf = client.get(
        f"/models/{model_id}/performance", headers=auth(user), params={"window": "hour"}
    ).json()
    (window,) = perf["windows"]
    assert window["rmse"] == pytest.approx(math.sqrt((1 + 9) / 2))
    assert window["mae"] == pytest.approx(2.0)
    assert (window["predictions"], window["with_feedback"], window["without_feedback"]) == (3, 2, 1)
    assert window["accuracy"] is None and perf["rmse"] == pytest.approx(math.sqrt(5))
    bad = feedback(client, user, model_id, [(ids[2], "tall")])
    assert bad.status_code == 422


def test_unknown_ids_and_other_users_are_refused(client: TestClient, context: Context) -> None:
    user = create_user(client)
    model_id = stored_model(
        context, user["user_id"], "classification", "label", ["x1", "x2", "color"]
    )
    second = stored_model(
        context, user["user_id"], "classification", "label", ["x1", "x2", "color"]
    )
    ids = logged(client, user, model_id, CLS_ROWS[:2])["prediction_ids"]
    elsewhere = logged(client, user, second, CLS_ROWS[:1])["prediction_ids"]
    response = feedback(
        client, user, model_id, [(ids[0], "yes"), ("nope", "no"), (elsewhere[0], "yes")]
    )
    assert response.status_code == 422
    assert response.json()["details"]["unknown"] == ["nope", elsewhere[0]]
    assert log_count(context, with_feedback=True) == 0  # all or nothing
    wrong_label = feedback(client, user, model_id, [(ids[0], "maybe")])
    assert wrong_label.status_code == 422 and "classes" in wrong_label.text
    assert feedback(client, user, model_id, []).status_code == 422
    assert (
        client.get(
            f"/models/{model_id}/performance", headers=auth(user), params={"window": "week"}
        ).status_code
        == 422
    )

    bob = create_user(client, "bob")
    bob_model = stored_model(
        context, bob["user_id"], "classification", "label", ["x1", "x2", "color"]
    )
    assert feedback(client, bob, model_id, [(ids[0], "yes")]).status_code == 404
    assert client.get(f"/models/{model_id}/performance", headers=auth(bob)).status_code == 404
    assert (
        client.post(
            f"/models/{model_id}/predict", headers=auth(bob), json={"rows": CLS_ROWS, "log": True}
        ).status_code
        == 404
    )
    stolen = feedback(client, bob, bob_model, [(ids[0], "yes")])  # alice's id on bob's model
    assert stolen.status_code == 422 and stolen.json()["details"]["unknown"] == [ids[0]]
    assert log_count(context, with_feedback=True) == 0
