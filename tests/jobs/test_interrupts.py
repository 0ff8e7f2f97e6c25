"""Cancel and time limit reach a job stuck inside one long boosting round: the lease thread
ends it and stops the job's process at once (jobs/isolation.py), so the worker's CPU is free
and its next job starts; nothing is retried. Real worker processes, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support import WorkerProcess, auth, classification_frame, create_user, upload, wait_for
from tests.support.jobs import FAST_LEASE, SLOW, job, models_of, submit, wait_final
from xgenerator.context import Context
from xgenerator.settings import Settings

# One round of a 100-tree forest per class, 16 deep, on 25 classes: tens of seconds inside
# XGBoost's C code however idle the machine (minutes under load), where no callback runs;
# one round keeps it within the cost budget (1 x 25 x 100 x 40,000 leaves, ml/cost.py).
HUGE_ROUND = {"max_depth": 16, "num_parallel_tree": 100, "max_bin": 256, "nthread": 1}
TICK = os.sysconf("SC_CLK_TCK")


def long_round_job(client: TestClient) -> tuple[dict[str, str], str]:
    user = create_user(client)
    frame = classification_frame(40_000)
    frame["label"] = [f"c{i % 25}" for i in range(len(frame))]  # 25 classes of noise
    uploaded = upload(client, user, frame)
    dataset_id = uploaded.json()["dataset_id"]
    return user, submit(client, user, dataset_id, 1, **HUGE_ROUND)


def events(client: TestClient, user: dict[str, str], job_id: str) -> list[str]:
    return [e["event"] for e in event_rows(client, user, job_id)]


def event_rows(client: TestClient, user: dict[str, str], job_id: str) -> list[dict[str, Any]]:
    body: dict[str, Any] = client.get(f"/jobs/{job_id}/events", headers=auth(user)).json()
    rows: list[dict[str, Any]] = body["events"]
    return rows


def job_process(worker: WorkerProcess, job_id: str, attempt: int = 1) -> int:
    """The pid of the process the worker forked for the job's attempt (from its log)."""
    pattern = re.compile(rf"job {job_id}: running in process (\d+)")

    def logged() -> int | None:
        found = pattern.findall(worker.output())
        return int(found[attempt - 1]) if len(found) >= attempt else None

    return wait_for(logged, 60, what=f"job {job_id} to get its process")


def cpu_s(pid: int) -> float | None:
    """CPU seconds a process has used itself (user + system), None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def gone(pid: int) -> bool:
    # a zombie still has its /proc entry; reaped, it has none
    return not Path(f"/proc/{pid}").exists()


def assert_idle(pool: int, seconds: float = 1.0) -> None:
    """The pool process, which ran the round before jobs had processes of their own, does
    not burn CPU: a training thread would add about `seconds` of CPU (less under load)."""
    before = cpu_s(pool)
    time.sleep(seconds)  # a measurement window, not a wait for something to happen
    after = cpu_s(pool)
    assert before is not None and after is not None
    assert after - before < 0.25 * seconds, (before, after)


def noop(client: TestClient, user: dict[str, str]) -> str:
    response = client.post("/jobs/noop", headers=auth(user))
    assert response.status_code == 202, response.text
    job_id: str = response.json()["job_id"]
    return job_id


def started(client: TestClient, user: dict[str, str], job_id: str) -> bool:
    return bool(job(client, user, job_id)["status"] != "queued")


@pytest.fixture
def lease_worker(settings: Settings) -> Iterator[WorkerProcess]:
    process = WorkerProcess(settings, "lease", concurrency=1, extra_env=FAST_LEASE)
    process.start()
    yield process
    process.stop()


def test_a_cancel_stops_the_round_in_progress_and_frees_the_worker(
    client: TestClient, context: Context, lease_worker: WorkerProcess
) -> None:
    user, job_id = long_round_job(client)
    child = job_process(lease_worker, job_id)
    pool = parent_of(child)
    # inside the round: the job's process is burning CPU
    wait_for(lambda: (cpu_s(child) or 0) > 2, 120, 0.1, "the job to train")
    waiting = noop(client, user)  # queued behind the huge round (one job at a time)
    assert job(client, user, waiting)["status"] == "queued"

    asked = time.monotonic()
    assert client.post(f"/jobs/{job_id}/cancel", headers=auth(user)).status_code == 200
    wait_for(lambda: gone(child), 5, 0.05, "the job's process to be stopped")
    final = wait_final(client, user, job_id, timeout=5)
    assert final["status"] == "cancelled"
    assert final["progress"]["round"] is None  # the round never ended
    # the worker takes the next job at once, not at the end of the round
    wait_for(lambda: started(client, user, waiting), 10, 0.05, "the next job to start")
    assert time.monotonic() - asked < 10
    assert wait_final(client, user, waiting, timeout=30)["status"] == "succeeded"
    assert_idle(pool)

    again = job(client, user, job_id)
    assert (again["status"], again["attempts"]) == ("cancelled", 1)
    assert events(client, user, job_id) == ["submitted", "started", "cancel_requested", "cancelled"]
    assert models_of(context, job_id) == 0
    assert "ended while running" in lease_worker.output()


@pytest.fixture
def impatient_lease_worker(settings: Settings) -> Iterator[WorkerProcess]:
    env = FAST_LEASE | {"XGEN_SOFT_TIME_LIMIT_S": "3"}
    process = WorkerProcess(settings, "impatient", concurrency=1, extra_env=env)
    process.start()
    yield process
    process.stop()


# The cancel test runs on both databases (the job's process opens its own connections after
# the fork); the two below stop or kill that process the same way, so one database each.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_time_limit_stops_the_round_in_progress_and_is_not_retried(
    client: TestClient, context: Context, impatient_lease_worker: WorkerProcess
) -> None:
    user, job_id = long_round_job(client)
    child = job_process(impatient_lease_worker, job_id)
    pool = parent_of(child)
    waiting = noop(client, user)

    final = wait_final(client, user, job_id, timeout=60)
    ended = time.monotonic()
    assert final["status"] == "failed", final
    assert final["error"]["error_type"] == "TimeLimitExceeded"
    assert final["progress"]["round"] is None  # ended from outside the round
    wait_for(lambda: gone(child), 5, 0.05, "the job's process to be stopped")
    wait_for(lambda: started(client, user, waiting), 10, 0.05, "the next job to start")
    assert time.monotonic() - ended < 10
    assert wait_final(client, user, waiting, timeout=30)["status"] == "succeeded"
    assert_idle(pool)

    again = job(client, user, job_id)
    assert (again["status"], again["attempts"]) == ("failed", 1)
    assert events(client, user, job_id) == ["submitted", "started", "failed"]
    assert models_of(context, job_id) == 0


@pytest.fixture
def plain_worker(settings: Settings) -> Iterator[WorkerProcess]:
    """The default lease (60 s): a job handed back sooner was not waiting for it to expire."""
    process = WorkerProcess(settings, "plain", concurrency=1)
    process.start()
    yield process
    process.stop()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_job_whose_process_dies_is_handed_back_at_once(
    client: TestClient, context: Context, plain_worker: WorkerProcess
) -> None:
    user = create_user(client)
    dataset_id = upload(client, user, classification_frame(2_000)).json()["dataset_id"]
    job_id = submit(client, user, dataset_id, 2_000, **SLOW)
    child = job_process(plain_worker, job_id)
    pool = parent_of(child)
    # past its first checkpoint (every 25 rounds)
    wait_for(
        lambda: (job(client, user, job_id)["progress"]["round"] or 0) > 25, 120, 0.05, "round 26"
    )
    os.kill(child, signal.SIGKILL)  # as the OOM killer would
    killed = time.monotonic()

    wait_for(lambda: "requeued" in events(client, user, job_id), 10, 0.05, "the hand-back")
    assert time.monotonic() - killed < 10 < context.settings.lease_s
    [requeued] = [e for e in event_rows(client, user, job_id) if e["event"] == "requeued"]
    assert "its process was killed by SIGKILL" in requeued["message"]
    # the pool process lived on and runs the next attempt in a new process, from the checkpoint
    again = job_process(plain_worker, job_id, attempt=2)
    assert again != child and parent_of(again) == pool
    wait_for(lambda: "resumed" in events(client, user, job_id), 60, 0.05, "the resumed attempt")
    assert job(client, user, job_id)["attempts"] == 2
    assert client.post(f"/jobs/{job_id}/cancel", headers=auth(user)).status_code == 200
    assert wait_final(client, user, job_id, timeout=30)["status"] == "cancelled"
    wait_for(lambda: gone(again), 5, 0.05, "the second process to be stopped")
    assert models_of(context, job_id) == 0
