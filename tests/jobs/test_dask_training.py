"""One model across many workers: `xgboost.dask` on a real `dask.distributed` LocalCluster of
two worker processes (one per module), below the service (`ml.distributed`) and through it
(a /train job on a real Celery worker, owned by its job: progress, cancel, the registry).
"""

from __future__ import annotations

import gc
import subprocess
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from fastapi.testclient import TestClient
from sklearn.metrics import roc_auc_score

from distributed import Client, LocalCluster
from tests.support import WorkerProcess, auth, create_user, upload, wait_for
from tests.support.jobs import wait_final
from xgenerator.api.app import create_app
from xgenerator.context import build_context
from xgenerator.datasets.pieces import RowGroup, read_piece
from xgenerator.ml.distributed import Piece, train_dask
from xgenerator.ml.external import train_external
from xgenerator.ml.features import to_model_frame
from xgenerator.ml.train import TrainSpec, train
from xgenerator.settings import Settings

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
FEATURES = ["a", "b", "c", "color", "when", "id"]


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as running:
        yield running


@pytest.fixture(scope="module")
def dask_client(cluster: LocalCluster) -> Iterator[Client]:
    with Client(cluster, set_as_default=False) as client:
        yield client


def frame(rows: int, seed: int) -> pd.DataFrame:
    """Numbers, a text category, a date-time with hours and an identifier to screen out."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    color = rng.choice(["red", "green", "blue"], size=rows)
    hours = pd.to_timedelta(rng.integers(0, 365 * 24, rows), unit="h")
    score = x[:, 0] + 0.5 * x[:, 1] + (color == "red") + np.sin(x[:, 2])
    score += rng.normal(scale=0.5, size=rows)
    return pd.DataFrame(
        {
            "a": x[:, 0],
            "b": x[:, 1],
            "c": x[:, 2],
            "color": color,
            "when": pd.Timestamp("2024-01-01") + hours,
            "id": np.arange(rows) + seed * rows,
            "label": np.where(score > 0.5, "yes", "no"),
        }
    )


def pieces_of(path: Path) -> list[Piece]:
    import pyarrow.parquet as pq

    metadata = pq.ParquetFile(path).metadata
    columns = [*FEATURES, "label"]
    return [
        Piece(RowGroup("file", str(path), i, columns), metadata.row_group(i).num_rows)
        for i in range(metadata.num_row_groups)
    ]


def training_threads(client: Client) -> int:
    """The Dask workers' threads inside XGBoost's training loop. The scheduler cannot show
    them (`processing`): a task it released goes on running in its thread until it ends."""

    def count() -> int:
        stacks = [traceback.extract_stack(frame) for frame in sys._current_frames().values()]
        return sum(
            any(f.name == "train" and "xgboost" in f.filename for f in stack) for stack in stacks
        )

    return sum(client.run(count).values())


def data_of_others(dask_scheduler: Any, own: str) -> list[str]:
    """The keys the workers hold that this test's own client does not want (earlier tests'
    leftovers of it do not count): the job's data, while it is there."""
    return [
        str(key)
        for key, task in dask_scheduler.tasks.items()
        if task.state == "memory" and own not in {c.client_key for c in task.who_wants or ()}
    ]


def held_locks(dask_scheduler: Any) -> dict[str, list[Any]]:
    """The scheduler's `MultiLock`s (xgboost.dask's, one per worker it trains on) held now."""
    locks = dask_scheduler.extensions["multi_locks"].locks
    return {name: list(users) for name, users in locks.items() if users}


class Hooks:
    """Records what the caller sees; raises from `on_round` at `cancel_at` (a cancel)."""

    checkpoint_every = 0  # the cadence is the distributed training's own argument

    def __init__(self, cancel_at: int | None = None) -> None:
        self.rounds: list[int] = []
        self.checkpoints: list[tuple[int, int]] = []
        self.checkpoints_bytes: dict[int, bytearray] = {}
        self.cancel_at = cancel_at

    def on_round(self, round: int, total: int, metrics: dict[str, float]) -> None:
        assert set(metrics) == {"validation-logloss"}
        self.rounds.append(round)
        if round == self.cancel_at:
            raise KeyboardInterrupt("cancelled")

    def checkpoint(self, booster: xgb.Booster, round: int) -> None:
        self.checkpoints.append((round, booster.num_boosted_rounds()))
        self.checkpoints_bytes[round] = booster.save_raw("ubj")

    def threads(self) -> int | None:
        return None


def test_the_dask_model_equals_single_process_training(dask_client: Client, tmp_path: Path) -> None:
    data = frame(6_000, 0)
    path = tmp_path / "train.parquet"
    data.to_parquet(path, row_group_size=1_000, index=False)
    pieces = pieces_of(path)
    spec = TrainSpec(
        task_type="classification",
        target="label",
        features=FEATURES,
        params={"max_depth": 4},
        num_boost_round=20,
    )
    hooks = Hooks()
    dask = train_dask(dask_client, read_piece, pieces, spec, hooks, checkpoint_every=5).result

    def batches() -> Iterator[pd.DataFrame]:
        for piece in pieces:
            yield read_piece(piece.source)

    # the same rows on one machine: external memory shares the split; in memory its own
    same_rows = train_external(batches, spec, cache_prefix=str(tmp_path / "pages")).result
    in_memory = train(data, spec)

    # the same bundle: coding, categories, date-time parts, exclusions, labels
    assert dask.features == in_memory.features == same_rows.features
    assert {f.name: f.kind for f in dask.features}["when"] == "datetime"
    assert [e.name for e in dask.excluded] == ["id"] == [e.name for e in in_memory.excluded]
    assert dask.labels is not None and dask.labels.classes == ["no", "yes"]
    assert (dask.train_rows, dask.validation_rows) == (
        same_rows.train_rows,
        same_rows.validation_rows,
    )
    # progress came round by round while it trained, and checkpoints at their cadence
    assert hooks.rounds == list(range(1, 21))
    assert [r["round"] for r in dask.history] == hooks.rounds
    assert hooks.checkpoints == [(5, 5), (10, 10), (15, 15), (20, 20)]
    assert dask.num_boost_round == 20

    test = frame(3_000, 1)
    truth = test["label"] == "yes"
    predicted = {
        name: result.booster.inplace_predict(to_model_frame(test, result.features))
        for name, result in (("dask", dask), ("same_rows", same_rows), ("memory", in_memory))
    }
    auc = {name: roc_auc_score(truth, p) for name, p in predicted.items()}
    assert abs(auc["dask"] - auc["same_rows"]) < 0.01, auc
    assert abs(auc["dask"] - auc["memory"]) < 0.01, auc
    assert np.corrcoef(predicted["dask"], predicted["same_rows"])[0, 1] > 0.99
    dask_auc, same_auc = dask.metrics["roc_auc"], same_rows.metrics["roc_auc"]
    assert dask_auc is not None and same_auc is not None
    assert abs(dask_auc - same_auc) < 0.01


def test_a_cancel_stops_every_worker_and_releases_the_data(
    dask_client: Client, tmp_path: Path
) -> None:
    path = tmp_path / "train.parquet"
    frame(4_000, 2).to_parquet(path, row_group_size=1_000, index=False)
    spec = TrainSpec(
        task_type="classification",
        target="label",
        features=FEATURES,
        params={"max_depth": 8, "eta": 0.01},
        num_boost_round=5_000,
    )
    hooks = Hooks(cancel_at=3)
    with pytest.raises(KeyboardInterrupt):
        train_dask(dask_client, read_piece, pieces_of(path), spec, hooks)
    assert hooks.rounds == [1, 2, 3]

    def idle() -> bool:
        # what keeps a released future here is this process's garbage (xgboost.dask's
        # matrices hold their futures in reference cycles), not the cluster
        gc.collect()
        processing = dask_client.processing()
        held = dask_client.has_what()
        return not any(processing.values()) and not any(held.values())

    # train_dask returned once the workers stopped (else it waits up to a minute for them):
    # nothing runs, and no partition of the data is kept
    wait_for(idle, 5.0, 0.05, "the Dask workers to be idle and empty")


# A caller of train_dask that trains for many minutes; the test kills it.
CALLER = """
import sys
import pyarrow.parquet as pq
from distributed import Client
from xgenerator.datasets.pieces import RowGroup, read_piece
from xgenerator.ml.distributed import Piece, train_dask
from xgenerator.ml.train import TrainSpec

address, path, features = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
groups = pq.ParquetFile(path).metadata
pieces = [
    Piece(RowGroup("file", path, i, [*features, "label"]), groups.row_group(i).num_rows)
    for i in range(groups.num_row_groups)
]
spec = TrainSpec(
    task_type="classification",
    target="label",
    features=features,
    params={"max_depth": 8},
    num_boost_round=100_000,
)
with Client(address, set_as_default=False) as client:
    train_dask(client, read_piece, pieces, spec)
"""


def test_the_workers_stop_when_their_caller_is_killed(tmp_path: Path) -> None:
    """A caller killed before it could set the stop event (SIGKILL past its grace, killed
    for memory): the scheduler releases its tasks, and the workers stop at their next round
    instead of training to the last one. xgboost.dask's locks stay held on the scheduler
    (the caller never released them), so this test has a cluster of its own."""
    path = tmp_path / "train.parquet"
    frame(2_000, 7).to_parquet(path, row_group_size=500, index=False)
    with (
        LocalCluster(  # the module's cluster has the dashboard's default port
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        argv = [cluster.scheduler_address, str(path), ",".join(FEATURES)]
        caller = subprocess.Popen([sys.executable, "-c", CALLER, *argv])
        try:
            wait_for(lambda: training_threads(client) == 2, 120, 0.1, "both workers training")
        finally:
            caller.kill()
            caller.wait()
        wait_for(lambda: training_threads(client) == 0, 60, 0.1, "the workers to stop training")
        assert client.run_on_scheduler(held_locks) != {}  # why this cluster is the test's own


def test_a_retried_attempt_resumes_from_its_checkpoint(dask_client: Client, tmp_path: Path) -> None:
    path = tmp_path / "train.parquet"
    frame(2_000, 6).to_parquet(path, row_group_size=500, index=False)
    spec = TrainSpec(
        task_type="classification", target="label", features=FEATURES, num_boost_round=8
    )
    first = Hooks()
    train_dask(dask_client, read_piece, pieces_of(path), spec, first, checkpoint_every=3)
    assert [r for r, _ in first.checkpoints] == [3, 6]
    saved = first.checkpoints_bytes[3]
    again = Hooks()
    resumed = train_dask(
        dask_client,
        read_piece,
        pieces_of(path),
        spec,
        again,
        resume=(xgb.Booster(model_file=saved), 3),
    ).result
    assert again.rounds == [4, 5, 6, 7, 8]  # only the rounds left, numbered as the job's
    assert resumed.num_boost_round == 8


# --- through the service -------------------------------------------------------------------


def request(dataset_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "model_name": "m",
        "dataset_id": dataset_id,
        "task_type": "classification",
        "target": "label",
        "num_boost_round": 10,
        **extra,
    }


@pytest.fixture
def dask_settings(settings: Settings, cluster: LocalCluster) -> Settings:
    # no grace for a process that must stop: only a Dask job's own wait keeps it alive
    return settings.model_copy(
        update={
            "dask_scheduler": cluster.scheduler_address,
            "lease_s": 3,
            "job_stop_grace_s": 0,
            "max_num_boost_round": 100_000,
        }
    )


@pytest.fixture
def dask_api(dask_settings: Settings) -> Iterator[TestClient]:
    context = build_context(dask_settings)
    try:
        with TestClient(create_app(dask_settings, context)) as client:
            yield client
    finally:
        context.close()


@pytest.fixture
def dask_worker(dask_settings: Settings) -> Iterator[WorkerProcess]:
    process = WorkerProcess(dask_settings, name="dask", concurrency=1)
    process.start()
    yield process
    process.stop()


@SQLITE
def test_a_distributed_job_trains_on_dask_and_registers_its_model(
    dask_api: TestClient, dask_worker: WorkerProcess
) -> None:
    user = create_user(dask_api)
    data = frame(2_000, 3)
    dataset_id = upload(dask_api, user, data).json()["dataset_id"]
    accepted = dask_api.post(
        "/train", headers=auth(user), json=request(dataset_id, distributed=True)
    )
    assert accepted.status_code == 202, accepted.text
    job = wait_final(dask_api, user, accepted.json()["job_id"], timeout=120)
    assert job["status"] == "succeeded", job
    assert job["config"]["distributed"] is True and job["config"]["distributed_by"] == "request"
    events = dask_api.get(f"/jobs/{job['job_id']}/events", headers=auth(user)).json()["events"]
    told = [e["message"] for e in events if e["event"] == "distributed"]
    assert len(told) == 1 and "on 2 Dask workers" in told[0], events
    assert any(e["event"] == "features_excluded" and "id" in e["message"] for e in events)
    model = dask_api.get(f"/models/{job['model_id']}", headers=auth(user)).json()
    assert [h["round"] for h in model["history"]] == list(range(1, 11))
    assert [f["name"] for f in model["features"]] == ["a", "b", "c", "color", "when"]
    assert model["features"][3]["categories"] == ["blue", "green", "red"]
    rows = data.head(50).drop(columns=["label"]).assign(when=lambda f: f["when"].astype(str))
    predicted = dask_api.post(
        f"/models/{job['model_id']}/predict",
        headers=auth(user),
        json={"rows": rows.to_dict(orient="records")},
    )
    assert predicted.status_code == 200, predicted.text
    agree = np.mean(np.array(predicted.json()["predictions"]) == data.head(50)["label"])
    assert agree > 0.7


@SQLITE
def test_cancelling_a_distributed_job_cancels_the_dask_work(
    dask_api: TestClient, dask_settings: Settings, dask_client: Client
) -> None:
    """The stop comes from the lease thread, which ends the job and stops its process (the
    job's own progress writes, which would notice the cancel first, never come): its
    process must stop the cluster's work before it goes, with no grace but its own wait."""
    quiet = {"progress_interval_s": 3_600, "checkpoint_every": 0}
    worker = WorkerProcess(dask_settings.model_copy(update=quiet), name="dask-stop", concurrency=1)
    worker.start()
    try:
        cancel_while_training(dask_api, dask_client)
    finally:
        worker.stop()
    # its process ended by itself once the workers stopped, not killed: xgboost.dask let go
    # of its locks on the workers (held forever by a client killed while training)
    assert "SIGKILL" not in worker.output()
    assert dask_client.run_on_scheduler(held_locks) == {}


def cancel_while_training(dask_api: TestClient, dask_client: Client) -> None:
    user = create_user(dask_api)
    dataset_id = upload(dask_api, user, frame(2_000, 4)).json()["dataset_id"]
    # rounds enough for many minutes: only a stop ends this training within the test
    slow = request(
        dataset_id, distributed=True, num_boost_round=100_000, xgb_params={"max_depth": 8}
    )
    accepted = dask_api.post("/train", headers=auth(user), json=slow)
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["job_id"]

    wait_for(lambda: training_threads(dask_client) == 2, 120, 0.1, "both Dask workers training")
    cancel = dask_api.post(f"/jobs/{job_id}/cancel", headers=auth(user))
    assert cancel.status_code == 200, cancel.text
    job = wait_final(dask_api, user, job_id, timeout=120)
    assert job["status"] == "cancelled", job
    assert job["model_id"] is None

    def idle() -> bool:
        return (
            not any(dask_client.processing().values())
            and dask_client.run_on_scheduler(data_of_others, own=dask_client.id) == []
            and training_threads(dask_client) == 0
        )

    wait_for(idle, 90, 0.1, "the Dask workers to stop training and drop the data")


@SQLITE
def test_submission_checks_where_a_job_trains(settings: Settings) -> None:
    """A 422 for what cannot train on Dask; the size setting sends a job there by itself,
    and the job's config says so and why."""
    users = iter(range(100))

    def submit(settings: Settings, body: dict[str, Any], path: str = "/train") -> Any:
        context = build_context(settings)
        try:
            with TestClient(create_app(settings, context)) as client:
                user = create_user(client, f"user{next(users)}")
                dataset_id = upload(client, user, frame(300, 5)).json()["dataset_id"]
                response = client.post(path, headers=auth(user), json=request(dataset_id, **body))
                if response.status_code != 202:
                    return response.status_code, response.json()
                job = client.get(f"/jobs/{response.json()['job_id']}", headers=auth(user))
                return 202, job.json()["config"]
        finally:
            context.close()

    status, body = submit(settings, {"distributed": True})
    assert status == 422, body
    assert body["error"] == "invalid_input"
    assert "XGEN_DASK_SCHEDULER" in body["message"]
    assert body["details"]["option"] == "distributed"

    with_dask = settings.model_copy(update={"dask_scheduler": "tcp://127.0.0.1:1"})
    status, body = submit(with_dask, {"distributed": True, "external_memory": True})
    assert status == 422 and "choose one" in body["message"], body
    status, body = submit(
        with_dask, {"distributed": True, "task_type": "regression", "target": "a"}
    )
    assert status == 202 and body["distributed"] is True, body
    status, body = submit(with_dask, {"distributed": True}, "/cv")
    assert status == 422 and "distributed" in body["message"], body
    space = {"search_space": {"eta": {"type": "float", "low": 0.1, "high": 1}}}
    status, body = submit(with_dask, {"distributed": True, **space}, "/tune")
    assert status == 422 and "distributed" in body["message"], body
    # a search's trials stay home even at the size setting
    status, body = submit(with_dask.model_copy(update={"dask_min_rows": 1}), space, "/tune")
    assert status == 202 and body["train"]["distributed"] is False, body

    # at the size setting a job goes to Dask by itself; "distributed": false keeps it home
    status, body = submit(with_dask.model_copy(update={"dask_min_rows": 300}), {})
    assert (status, body["distributed"], body["distributed_by"]) == (202, True, "size")
    status, body = submit(
        with_dask.model_copy(update={"dask_min_rows": 300}), {"distributed": False}
    )
    assert (status, body["distributed"], "distributed_by" in body) == (202, False, False)
    status, body = submit(with_dask.model_copy(update={"dask_min_rows": 301}), {})
    assert (status, body["distributed"]) == (202, False)
