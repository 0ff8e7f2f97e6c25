"""The Python client against a live embedded server (`xgenerator serve` in a subprocess)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from tests.live import FAST, csv_file, long_job, running_with_rounds, single_class_frame
from tests.support import classification_frame, wait_for
from xgenerator.cli.demo import LocalServer
from xgenerator.client import (
    AuthenticationError,
    Client,
    ConflictError,
    Job,
    JobCancelled,
    JobFailed,
    NotFoundError,
    ValidationError,
    WaitTimeout,
)


@pytest.fixture(scope="module")
def client(server: LocalServer) -> Iterator[Client]:
    user = Client.create_user(server.url, "clara", "clara@example.com")
    with Client(server.url, user.api_key) as logged_in:
        yield logged_in


def test_users_and_authentication(server: LocalServer, client: Client) -> None:
    me = client.me()
    assert me.username == "clara"
    with Client(server.url, "xg_wrong_key") as stranger, pytest.raises(AuthenticationError) as err:
        stranger.me()
    assert err.value.status == 401 and err.value.code == "unauthorized"


def test_datasets_upload_list_get_delete(client: Client, tmp_path: Path) -> None:
    frame = classification_frame(120)
    from_frame = client.datasets.upload(frame, "from-frame")
    assert from_frame.row_count == 120
    assert [c.name for c in from_frame.columns] == ["x1", "x2", "color", "label"]
    # progress=True forces the bar that large files get: the upload must still be whole
    from_file = client.datasets.upload(csv_file(tmp_path, frame), progress=True)
    assert from_file.dataset_name == "data" and from_file.row_count == 120
    listed = {d.dataset_id for d in client.datasets.list()}
    assert {from_frame.dataset_id, from_file.dataset_id} <= listed
    assert client.datasets.get(from_file.dataset_id).columns[2].kind == "categorical"
    client.datasets.delete(from_file.dataset_id)
    with pytest.raises(NotFoundError) as err:
        client.datasets.get(from_file.dataset_id)
    assert err.value.status == 404
    assert err.value.code == "dataset_not_found"
    assert err.value.details == {"id": from_file.dataset_id}


def test_train_wait_predict_download(client: Client, tmp_path: Path) -> None:
    frame = classification_frame(300)
    dataset = client.datasets.upload(frame, "churn")
    job = client.train(dataset, "label", model_name="churn", num_boost_round=30, xgb_params=FAST)
    info = job.wait(timeout=120, progress=True)
    assert info.status == "succeeded" and info.model_id
    assert info.progress.percent == 100.0
    points = job.history(max_points=5)
    assert [p["round"] for p in points][0] == 1 and points[-1]["round"] == 30
    assert len(points) == 5
    assert [e.event for e in job.events()] == ["submitted", "started", "succeeded"]

    model = job.model()
    assert model.name == "churn" and model.labels == ["no", "yes"]
    assert model.model_id in {m.model_id for m in client.models.list(name="churn")}
    rows = frame.drop(columns="label").head(8)
    by_frame = client.models.predict(info.model_id, rows)
    records = cast(list[dict[str, Any]], rows.replace({np.nan: None}).to_dict("records"))
    by_rows = client.predict(info.model_id, records)
    assert by_frame.predictions == by_rows.predictions
    assert len(by_frame.predictions) == 8 and by_frame.probabilities is not None

    path = client.models.download(info.model_id, tmp_path / "model.ubj")
    assert xgb.Booster(model_file=str(path)).num_boosted_rounds() == 30


def test_wait_raises_job_failed_with_the_error(client: Client) -> None:
    dataset = client.datasets.upload(single_class_frame(), "one-class")
    job = client.train(dataset, "label", model_name="doomed", num_boost_round=5)
    with pytest.raises(JobFailed) as err:
        job.wait(timeout=120, progress=False)
    assert err.value.error_type == "SingleClass"
    assert err.value.job.status == "failed"
    assert "SingleClass" in str(err.value)


def wait_ends_in_time(job: Job, timeout: float) -> BaseException | None:
    """How `job.wait(timeout)` ended, if it ended within 30 s (run in a thread, so that a
    wait that ignores its deadline fails the test instead of hanging it)."""
    ended: list[BaseException] = []

    def wait() -> None:
        try:
            job.wait(timeout=timeout, progress=False)
        except BaseException as exc:
            ended.append(exc)

    waiting = threading.Thread(target=wait, daemon=True)
    waiting.start()
    waiting.join(timeout=30)
    return ended[0] if ended else None


def test_wait_times_out_then_cancel_raises_job_cancelled(client: Client) -> None:
    dataset = client.datasets.upload(classification_frame(200), "long")
    job = long_job(client, dataset.dataset_id)
    assert isinstance(wait_ends_in_time(job, 0.5), WaitTimeout)
    wait_for(lambda: running_with_rounds(job), 120, 0.2, "the job to run")
    # A running job's stream never goes quiet, so no read timeout ends the wait: the deadline
    # itself must (before, the wait lasted until the server closed the stream, minutes later).
    assert isinstance(wait_ends_in_time(job, 0.5), WaitTimeout)
    job.cancel()
    with pytest.raises(JobCancelled) as err:
        job.wait(timeout=120, progress=True)
    assert err.value.job.status == "cancelled"
    assert [e.event for e in job.events()][-2:] == ["cancel_requested", "cancelled"]
    with pytest.raises(ConflictError) as conflict:
        job.cancel()
    assert conflict.value.status == 409


def test_stream_ends_with_the_final_status(client: Client) -> None:
    dataset = client.datasets.upload(classification_frame(150), "streamed")
    job = client.train(dataset, "label", model_name="s", num_boost_round=12, xgb_params=FAST)
    messages = list(job.stream(timeout=120))
    rounds = [m.data["round"] for m in messages if m.event == "progress" and m.data["round"]]
    assert rounds == list(range(1, 13))
    assert messages[-1].is_final_status and job.status == "succeeded"
    # every message of the log has its own id (a round-less progress snapshot reuses one)
    ids = [m.id for m in messages if m.event != "progress" or m.data["round"]]
    assert len(set(ids)) == len(ids)


def test_api_errors_become_typed_exceptions(client: Client) -> None:
    dataset = client.datasets.upload(classification_frame(50), "bad-target")
    with pytest.raises(ValidationError) as err:
        client.train(dataset, "no_such_column", model_name="m")
    assert err.value.status == 422 and "no_such_column" in err.value.message
    assert err.value.details is not None and "available" in err.value.details
    with pytest.raises(NotFoundError):
        client.jobs.get("0" * 32)


def test_batch_prediction_results_and_report(client: Client, tmp_path: Path) -> None:
    dataset = client.datasets.upload(classification_frame(120), "batch-in")
    model_id = (
        client.train(dataset, "label", model_name="batch", num_boost_round=10, xgb_params=FAST)
        .wait(timeout=120, progress=False)
        .model_id
    )
    assert model_id is not None
    batch = client.models.predict_batch(model_id, dataset, output_name="scored")
    batch.wait(timeout=120, progress=False)
    result = batch.result()
    assert result.status == "succeeded"
    assert [a.name for a in result.artifacts] == ["predictions.parquet"]
    saved = batch.download("predictions.parquet", tmp_path / "p.parquet")
    assert len(pd.read_parquet(saved)) == 120
    assert result.result is not None
    assert client.datasets.get(result.result["dataset_id"]).dataset_name == "scored"

    client.models.report(model_id).wait(timeout=120, progress=False)
    page = client.models.download_report(model_id, tmp_path / "report.html").read_text()
    assert "<html" in page.lower() and "batch" in page


def test_cv_explain_and_importance(client: Client) -> None:
    frame = classification_frame(200)
    dataset = client.datasets.upload(frame, "cv-data")
    job = client.cv(
        dataset, "label", model_name="cv", folds=3, refit=True, num_boost_round=6, xgb_params=FAST
    )
    info = job.wait(timeout=120, progress=False)
    assert info.job_type == "cv" and info.result is not None
    result = info.result
    assert result["folds"] == 3 and len(result["history"]) == 6
    assert result["model_id"] == info.model_id
    model = client.models.get(result["model_id"])
    assert model.num_boost_round == result["best_round"]

    rows = frame.drop(columns="label").head(4)
    explained = client.predict(result["model_id"], rows, explain=True)
    assert explained.contributions is not None and len(explained.contributions) == 4
    assert set(explained.contributions[0]) == {"x1", "x2", "color", "bias"}
    assert client.predict(result["model_id"], rows).contributions is None
    gain = client.models.importance(result["model_id"])
    assert set(gain) == {"x1", "x2", "color"}
    assert list(gain.values()) == sorted(gain.values(), reverse=True)
    shap = client.models.importance(result["model_id"], "shap")
    assert set(shap) == set(gain) and all(v >= 0 for v in shap.values())


def test_tune_and_its_leaderboard(client: Client) -> None:
    dataset = client.datasets.upload(classification_frame(200), "tune-data")
    job = client.tune(
        dataset,
        "label",
        model_name="tuned",
        search_space={"max_depth": {"type": "int", "low": 1, "high": 3}},
        max_trials=3,
        strategy="grid",
        num_boost_round=4,
        xgb_params=FAST,
    )
    info = job.wait(timeout=120, progress=False)
    assert info.job_type == "tune" and info.status == "succeeded"
    board = client.trials(info.job_id)
    assert sorted(t["params"]["max_depth"] for t in board["trials"]) == [1, 2, 3]
    assert board["best"]["model_id"] == info.model_id == board["trials"][0]["model_id"]
