"""The Python client against a live embedded server (`xgenerator serve` in a subprocess)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from tests.live import FAST, csv_file, long_job, running_with_rounds, single_class_frame
from tests.support import AFTER_SUCCESS, classification_frame, shap_summary, wait_for
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
    events = [e.event for e in job.events()]
    assert events[:3] == ["submitted", "started", "succeeded"]
    assert set(events[3:]) <= AFTER_SUCCESS

    model = job.model()
    assert model.name == "churn" and model.labels == ["no", "yes"]
    assert model.model_id in {m.model_id for m in client.models.list(name="churn")}
    rows = frame.drop(columns="label").head(8)
    by_frame = client.models.predict(info.model_id, rows)
    records = cast(list[dict[str, Any]], rows.replace({np.nan: None}).to_dict("records"))
    by_rows = client.predict(info.model_id, records)
    assert by_frame.predictions == by_rows.predictions
    assert len(by_frame.predictions) == 8 and by_frame.probabilities is not None
    assert by_frame.ignored_columns == []
    wide = [{**r, "note": "x"} for r in records]
    labels = client.predict(info.model_id, wide, output="label")
    assert labels.predictions == by_rows.predictions and labels.ignored_columns == ["note"]
    margins = client.predict(info.model_id, records, output="margin").predictions
    assert all(isinstance(m, float) for m in margins)
    with pytest.raises(ValidationError) as refused:
        client.predict(info.model_id, wide, extra_columns="error")
    assert refused.value.details == {"columns": ["note"]}

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
    shap = shap_summary(client, result["model_id"])
    assert set(shap) == set(gain) and all(v >= 0 for v in shap.values())


class BrokenStream(httpx.BaseTransport):
    """The real server, except that its job streams fail the way `mode` says: refused
    connections, or a proxy answering an HTML error page, or plain text with a 200."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.inner = httpx.HTTPTransport()
        self.stream_requests = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not request.url.path.endswith("/stream"):
            return self.inner.handle_request(request)
        self.stream_requests += 1
        if self.mode == "refused":
            raise httpx.ConnectError("connection refused", request=request)
        if self.mode == "proxy":
            page = b"<html><body>502 Bad Gateway</body></html>"
            return httpx.Response(502, headers={"content-type": "text/html"}, content=page)
        return httpx.Response(200, headers={"content-type": "text/plain"}, content=b"buffered")

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize("mode", ["refused", "proxy", "not-sse"])
def test_wait_polls_the_job_when_its_stream_cannot_be_followed(
    server: LocalServer, client: Client, mode: str
) -> None:
    dataset = client.datasets.upload(classification_frame(80), "polled")
    failing = client.datasets.upload(single_class_frame(), "polled-fails")
    key = client.http.headers["X-API-Key"]
    transport = BrokenStream(mode)
    with Client(server.url, key, transport=transport) as behind_proxy:
        job = behind_proxy.train(
            dataset.dataset_id, "label", model_name="polled", num_boost_round=5, xgb_params=FAST
        )
        info = job.wait(timeout=120, progress=False, poll_interval=0.1)
        assert info.status == "succeeded" and info.model_id
        assert job.polled and transport.stream_requests >= 1
        # at most one retry when the stream was never reached
        assert transport.stream_requests <= 2
        bad = behind_proxy.train(failing.dataset_id, "label", model_name="polled-bad")
        with pytest.raises(JobFailed) as err:
            bad.wait(timeout=120, progress=False, poll_interval=0.1)
        assert err.value.job.status == "failed" and bad.polled


def test_registered_models_aliases_move_and_roll_back(client: Client) -> None:
    dataset = client.datasets.upload(classification_frame(80), "aliased")
    first, second = (
        client.train(
            dataset, "label", model_name="aliased", num_boost_round=3, xgb_params=FAST
        ).wait(timeout=120, progress=False)
        for _ in range(2)
    )
    moved = client.registered_models.move_alias("aliased", "prod", 1)
    assert (moved.from_version, moved.to_version, moved.actor) == (None, 1, "clara")
    assert client.registered_models.move_alias("aliased", "prod", 2).from_version == 1
    assert client.models.get("aliased@prod").model_id == second.model_id
    back = client.registered_models.rollback("aliased", "prod")
    assert (back.from_version, back.to_version) == (2, 1)
    assert client.models.get("aliased@prod").model_id == first.model_id
    described = client.registered_models.get("aliased")
    assert described.aliases == {"prod": 1}
    assert [v.model_id for v in described.versions] == [second.model_id, first.model_id]
    assert [(m.from_version, m.to_version) for m in described.history] == [
        (2, 1),
        (1, 2),
        (None, 1),
    ]
    assert "aliased" in [m.name for m in client.registered_models.list()]
    removed = client.registered_models.delete_alias("aliased", "prod")
    assert removed.to_version is None
    assert client.registered_models.get("aliased").aliases == {}
    with pytest.raises(NotFoundError):
        client.models.get("aliased@prod")


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
