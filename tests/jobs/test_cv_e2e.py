"""Cross-validation jobs end to end with a real worker (both databases)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.support import WorkerProcess, auth, classification_frame, create_user, upload, wait_for
from tests.support.jobs import SLOW, job, models_of, submit_job, wait_final
from xgenerator.context import Context
from xgenerator.errors import InvalidInput
from xgenerator.jobs import service


def submit_cv(
    client: TestClient, user: dict[str, str], dataset_id: str, rounds: int, **extra: Any
) -> str:
    return submit_job(client, user, "cv", dataset_id, rounds, "cv-model", **extra)


def test_cv_with_refit(client: TestClient, context: Context, worker: WorkerProcess) -> None:
    user = create_user(client)
    frame = classification_frame(300)
    dataset_id = upload(client, user, frame).json()["dataset_id"]
    # a learning rate of 1 overfits within a few rounds: early stopping ends well before 40
    job_id = submit_cv(
        client,
        user,
        dataset_id,
        40,
        folds=3,
        refit=True,
        early_stopping_rounds=2,
        xgb_params={"max_depth": 6, "eta": 1.0},
    )
    final = wait_final(client, user, job_id)
    assert final["status"] == "succeeded", final
    assert final["job_type"] == "cv" and final["config"]["folds"] == 3
    result = final["result"]
    assert result["folds"] == 3 and result["rows"] == 300
    history = result["history"]
    assert [h["round"] for h in history] == list(range(1, len(history) + 1))
    assert len(history) < 40
    keys = {"validation-logloss-mean", "validation-logloss-std", "train-logloss-mean"}
    assert keys <= set(history[0])
    losses = [h["validation-logloss-mean"] for h in history]
    assert result["best_metric"] == "validation-logloss-mean" and result["maximize"] is False
    assert result["best_round"] == int(np.argmin(losses)) + 1 == len(history)
    assert result["best"] == history[result["best_round"] - 1]
    assert all(h["validation-logloss-std"] >= 0 for h in history)
    # the rounds streamed into the job's progress as they came
    assert final["progress"]["percent"] == 100.0
    # the refit model: registered, trained for the best round's count, predicts
    model_id = result["model_id"]
    assert model_id == final["model_id"] and models_of(context, job_id) == 1
    model = client.get(f"/models/{model_id}", headers=auth(user)).json()
    assert model["num_boost_round"] == result["best_round"]
    assert model["history"] == history  # not the rounds early stopping ran past the best
    assert (
        model["metrics"]["validation-logloss-mean"]
        == history[result["best_round"] - 1]["validation-logloss-mean"]
    )
    rows = [{"x1": 0.5, "x2": 1.0, "color": "red"}, {"x1": -2.0, "x2": 0.0, "color": "blue"}]
    predicted = client.post(f"/models/{model_id}/predict", headers=auth(user), json={"rows": rows})
    assert predicted.status_code == 200, predicted.text
    assert set(predicted.json()["predictions"]) <= {"yes", "no"}
    listed = client.get("/jobs?job_type=cv", headers=auth(user)).json()
    assert [j["job_id"] for j in listed["jobs"]] == [job_id]


def test_cv_without_refit_and_bad_requests(client: TestClient, worker: WorkerProcess) -> None:
    user = create_user(client)
    dataset_id = upload(client, user, classification_frame(120)).json()["dataset_id"]
    final = wait_final(client, user, submit_cv(client, user, dataset_id, 4))
    assert final["status"] == "succeeded", final
    assert final["result"]["folds"] == 5 and final["result"]["model_id"] is None
    assert final["model_id"] is None
    cases: list[tuple[dict[str, Any], str]] = [
        ({"folds": 1}, "folds"),
        ({"folds": 21}, "folds"),
        ({"target": "nope"}, ""),
    ]
    for body, field in cases:
        response = client.post(
            "/cv",
            headers=auth(user),
            json={
                "model_name": "m",
                "dataset_id": dataset_id,
                "task_type": "classification",
                "target": "label",
                **body,
            },
        )
        assert response.status_code == 422, response.text
        assert field in response.text


def test_cancel_a_running_cv(client: TestClient, context: Context, worker: WorkerProcess) -> None:
    user = create_user(client)
    dataset_id = upload(client, user, classification_frame(2000)).json()["dataset_id"]
    job_id = submit_cv(client, user, dataset_id, 3000, folds=3, refit=True, xgb_params=SLOW)
    wait_for(
        lambda: (job(client, user, job_id)["progress"].get("round") or 0) >= 2,
        60,
        what="the cross-validation to be a few rounds in",
    )
    running = job(client, user, job_id)
    assert running["progress"]["total_rounds"] == 3000
    assert "validation-logloss-mean" in running["progress"]["metrics"]
    assert client.post(f"/jobs/{job_id}/cancel", headers=auth(user)).status_code == 200
    final = wait_final(client, user, job_id, timeout=30)
    assert final["status"] == "cancelled"
    assert final["progress"]["round"] < 3000
    assert final["model_id"] is None and models_of(context, job_id) == 0


def test_folds_are_checked_at_submission_whatever_the_caller(
    client: TestClient, context: Context
) -> None:
    user = create_user(client)
    dataset_id = upload(client, user, classification_frame(60)).json()["dataset_id"]
    body = {
        "model_name": "m",
        "dataset_id": dataset_id,
        "task_type": "classification",
        "target": "label",
        "num_boost_round": 3,
    }
    for folds in (1, 21):
        with pytest.raises(InvalidInput, match="folds"):
            service.submit(context, user["user_id"], "cv", {**body, "folds": folds})
    job = service.submit(context, user["user_id"], "cv", {**body, "folds": 20}).job
    assert (job.job_type, job.config["folds"], job.config["refit"]) == ("cv", 20, False)
