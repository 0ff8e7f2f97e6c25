"""What a prediction request may carry: scalars only, the model's columns only, and answers
no shared cache keeps (issue: one user cannot exhaust the service)."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from tests.support import WorkerProcess, auth, classification_frame, create_user, upload
from tests.support.jobs import train_model
from xgenerator.api.schemas.models import MAX_ROW_KEYS
from xgenerator.context import Context
from xgenerator.ml.predict import rows_to_frame


def test_rows_build_only_the_columns_asked_for() -> None:
    rows: list[dict[str, object]] = [{"x1": 1.0, f"junk{i}": i} for i in range(10_000)]
    frame = rows_to_frame([*rows, {"x2": 2.0}], ["x1", "x2", "x3"])
    assert list(frame.columns) == ["x1", "x2"]  # x3 in no row: left for the missing-column 422
    assert frame["x2"].isna().sum() == len(rows) and frame["x1"].notna().sum() == len(rows)


def test_prediction_rows_are_checked_and_bounded(
    client: TestClient, context: Context, worker: WorkerProcess
) -> None:
    user = create_user(client)
    frame = classification_frame(200)
    dataset_id = upload(client, user, frame).json()["dataset_id"]
    model_id = train_model(client, user, dataset_id, "classification", "label", rounds=5)
    url = f"/models/{model_id}/predict"
    good = {"x1": 0.5, "x2": 1.0, "color": "red"}

    # A nested object or a list where a scalar belongs: a 422 in the one error shape.
    for bad in ({"color": {"a": 1}}, {"x1": [1, 2]}):
        response = client.post(url, headers=auth(user), json={"rows": [{**good, **bad}]})
        assert response.status_code == 422, response.text
        assert set(response.json()) == {"error", "message", "details"}

    too_wide = {f"c{i}": 0 for i in range(MAX_ROW_KEYS + 1)}
    assert client.post(url, headers=auth(user), json={"rows": [too_wide]}).status_code == 422

    # 10,000 rows with a key of their own each: only the model's columns are built, so this
    # is an ordinary request (it built 10,000 columns, for seconds and gigabytes, before).
    rows = [{**good, f"extra{i}": i} for i in range(10_000)]
    started = time.perf_counter()
    response = client.post(url, headers=auth(user), json={"rows": rows})
    assert response.status_code == 200, response.text
    assert len(response.json()["predictions"]) == len(rows)
    assert response.headers["cache-control"] == "private, no-store"
    print(f"10,000 rows with distinct extra keys: {time.perf_counter() - started:.2f}s")

    # Rows x classes past the bound: 413 before any prediction is made.
    context.settings = context.settings.model_copy(update={"max_predict_values": 10})
    response = client.post(url, headers=auth(user), json={"rows": [good] * 6})  # 6 x 2 > 10
    assert response.status_code == 413, response.text
    assert response.json()["details"] == {"limit": 10, "values": 12}

    download = client.get(f"/models/{model_id}/download", headers=auth(user))
    assert download.status_code == 200 and download.headers["cache-control"] == "private"
