"""The SHAP summary a training job keeps: just after the job's success, in the job's process,
never killed by the lease thread that finds the job final; its failure costs the summary,
never the model."""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient

from tests.ml.conftest import FAST, FEATURES, make_frame
from tests.support import WorkerProcess, auth, classification_frame, create_user, upload, wait_for
from tests.support.jobs import FAST_LEASE, train_model
from xgenerator.context import Context
from xgenerator.jobs import isolation
from xgenerator.jobs.isolation import Child
from xgenerator.jobs.kinds.train import _shap_summary
from xgenerator.jobs.runtime import Runtime
from xgenerator.ml import bundle as model_file
from xgenerator.ml.explain import shap_importance
from xgenerator.ml.train import TrainSpec, train
from xgenerator.settings import Settings


class Events:
    """Stands in for the job runtime's event log (the only part the summary touches)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def event(self, event: str, message: str, status: Any = None) -> None:
        self.events.append((event, message))


def test_the_summary_skips_rows_without_a_target_and_a_failure_is_an_event() -> None:
    frame = make_frame(200)
    spec = TrainSpec("classification", "yes_no", FEATURES, dict(FAST), 5)
    result = train(frame, spec)
    events = Events()
    runtime = cast(Runtime, events)
    with_missing = frame.assign(yes_no=frame["yes_no"].where(frame.index >= 50, None))
    summary = _shap_summary(runtime, with_missing, spec, result)
    assert summary is not None and summary["rows"] == 150
    assert set(summary["values"]) == set(FEATURES) and events.events == []

    broken = frame.drop(columns=["cat"])  # the data no longer fits the model
    assert _shap_summary(runtime, broken, spec, result) is None
    assert [e for e, _ in events.events] == ["shap_summary_failed"]
    assert "cat" in events.events[0][1]


def test_a_child_that_has_answered_is_left_to_finish() -> None:
    """The lease thread stops a job's process that must end; once the process has answered,
    its job is final and what it still does (the SHAP summary) is not to be cut short."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the job's process: answers, then works on for a while
        os.write(write_end, b"succeeded")
        time.sleep(0.5)
        os._exit(0)
    os.close(write_end)
    try:
        child = Child(pid, grace_s=0.1, answers=read_end)
        readable, _, _ = select.select([read_end], [], [], 30)
        assert readable and child.answered()
        child.stop()  # what the lease thread does when it finds the job no longer running
        assert os.waitstatus_to_exitcode(child.wait()) == 0  # not SIGTERM's -15
    finally:
        os.close(read_end)


def test_the_outcome_is_acted_on_before_the_work_that_follows_it(
    context: Context, tmp_path: Path
) -> None:
    """`isolation.run` hands the answer to `on_end` (which schedules a search's next trials)
    while the child still works: here the child cannot even finish before `on_end` ran."""
    pid_file, go = tmp_path / "pid", tmp_path / "go"

    def work() -> tuple[str, Callable[[], None]]:
        pid_file.write_text(str(os.getpid()))

        def then() -> None:
            wait_for(go.exists, 30, 0.01, "on_end")

        return "succeeded", then

    seen: list[tuple[str, bool]] = []

    def on_end(result: str) -> None:
        pid = int(pid_file.read_text())
        running = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
        seen.append((result, running and not go.exists()))  # still in `then`
        go.touch()

    def begin(ctx: Context, call: isolation.Call) -> tuple[Runtime, isolation.Work]:
        return Runtime(ctx, call.job_id, call.attempt, "train"), work

    runtime = Runtime(context, "no-such-job", 1, "train")
    call = isolation.Call("no-such-job", 1)
    try:
        assert isolation.run(context, runtime, call, begin, on_end) == "succeeded"
    finally:
        isolation.retire_spare()
    assert seen == [("succeeded", True)]


@pytest.fixture
def summary_worker(settings: Settings) -> Iterator[WorkerProcess]:
    """The default: summaries after the success; a lease thread that looks every 0.5 s."""
    env = FAST_LEASE | {"XGEN_SHAP_SUMMARY_AFTER_SUCCESS": "true"}
    process = WorkerProcess(settings, "summary", concurrency=1, extra_env=env)
    process.start()
    yield process
    process.stop()


def test_the_summary_follows_the_success_and_equals_a_direct_computation(
    client: TestClient, summary_worker: WorkerProcess
) -> None:
    user = create_user(client)
    frame = classification_frame(3000)
    dataset_id = upload(client, user, frame).json()["dataset_id"]
    # 300 trees: the summary (333 rows) takes seconds, several ticks of the lease thread
    params = {"max_depth": 6, "nthread": 1}
    model_id = train_model(
        client, user, dataset_id, "classification", "label", 300, xgb_params=params
    )
    url = f"/models/{model_id}/importance?type=shap"

    def kept() -> dict[str, Any] | None:
        response = client.get(url, headers=auth(user))
        if response.status_code == 404:
            assert "just after the training job succeeds" in response.json()["message"]
            return None
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    shap = wait_for(kept, 60, 0.2, "the SHAP summary")
    job_id = client.get(f"/models/{model_id}", headers=auth(user)).json()["job_id"]
    events = client.get(f"/jobs/{job_id}/events", headers=auth(user)).json()["events"]
    names = [e["event"] for e in events]
    assert names.index("shap_summary") > names.index("succeeded")
    assert events[names.index("shap_summary")]["status"] == "succeeded"

    raw = client.get(f"/models/{model_id}/download", headers=auth(user)).content
    loaded = model_file.loads(raw)
    direct = shap_importance(loaded.booster, loaded.features, frame, seed=42)
    assert shap["rows"] == direct["rows"] == 100_000 // 300
    got = {i["feature"]: i["value"] for i in shap["importance"]}
    assert got == pytest.approx(direct["values"], rel=1e-5)
