"""Workers killed, crashing or stopped mid-job: no job lost, none finished twice."""

from __future__ import annotations

import os
import signal
import time

import pytest
from fastapi.testclient import TestClient

from tests.reliability.conftest import (
    LONG,
    LONG_CHECKPOINTS,
    WorkerFactory,
    all_final,
    check_invariants,
    dataset,
    events,
    jobs,
)
from tests.support import auth, wait_for
from tests.support.jobs import SLOW, submit
from xgenerator.context import Context
from xgenerator.settings import Settings


def test_sigkill_workers_ten_times_every_job_succeeds_once_from_checkpoints(
    rclient: TestClient, rcontext: Context, rsettings: Settings, start_worker: WorkerFactory
) -> None:
    settings = rsettings.model_copy(update={"max_attempts": 5})
    workers = {name: start_worker(name, settings) for name in ("k1", "k2")}
    user, dataset_id = dataset(rclient)
    for _ in range(4):
        submit(rclient, user, dataset_id, 150, **SLOW)
    kills = 0
    deadline = time.monotonic() + 240
    while kills < 10:
        assert time.monotonic() < deadline, f"only {kills} kills before the deadline"
        state = jobs(rcontext)
        if all(j.status in ("succeeded", "failed", "cancelled") for j in state.values()):
            submit(rclient, user, dataset_id, 150, **SLOW)
            continue
        # a running job past its first checkpoint, killed as few times as possible so far
        victims = sorted(
            (
                j
                for j in state.values()
                if j.status == "running"
                and j.worker_id
                and (j.progress or {}).get("checkpoint_round")
                and j.attempts < settings.max_attempts - 1
            ),
            key=lambda j: j.attempts,
        )
        if not victims:
            time.sleep(0.05)
            continue
        name = (victims[0].worker_id or "").split("@", 1)[0]  # "k1@host:pid"
        workers[name].kill()
        kills += 1
        workers[name] = start_worker(name, settings)

    wait_for(lambda: all_final(rcontext), 240, 0.2, "every job to finish")
    finished = check_invariants(rcontext)
    assert all(j.status == "succeeded" for j in finished), [(j.id, j.error) for j in finished]
    retried = [j for j in finished if j.attempts > 1]
    assert retried, "no job was retried"
    for job in retried:
        names = events(rclient, user, job.id)
        assert "requeued" in names and "resumed" in names, names
        assert names.count("succeeded") == 1


def test_a_job_that_always_crashes_its_process_fails_after_max_attempts(
    rclient: TestClient, rcontext: Context, rsettings: Settings, start_worker: WorkerFactory
) -> None:
    start_worker("c1")
    user, dataset_id = dataset(rclient)
    job_id = submit(rclient, user, dataset_id, 5000, **SLOW)
    seen: set[int] = set()
    deadline = time.monotonic() + 120
    while not all_final(rcontext):
        assert time.monotonic() < deadline, "the crashing job never gave up"
        job = jobs(rcontext)[job_id]
        if job.status == "running" and job.worker_id and job.attempts not in seen:
            seen.add(job.attempts)
            os.kill(int(job.worker_id.rsplit(":", 1)[1]), signal.SIGKILL)  # the pool process
        time.sleep(0.05)
    [job] = check_invariants(rcontext)
    assert job.status == "failed"
    assert job.error is not None and job.error["error_type"] == "WorkerLost"
    assert job.attempts == rsettings.max_attempts == len(seen)


def test_a_cancelled_queued_job_never_runs_across_worker_restarts(
    rclient: TestClient, rcontext: Context, start_worker: WorkerFactory
) -> None:
    worker = start_worker("r1")
    user, dataset_id = dataset(rclient)
    busy = submit(rclient, user, dataset_id, 5000, **SLOW)
    waiting = submit(rclient, user, dataset_id, 3)
    wait_for(lambda: jobs(rcontext)[busy].status == "running", 30, what="the slot to fill")
    assert rclient.post(f"/jobs/{waiting}/cancel", headers=auth(user)).status_code == 200
    worker.kill()  # its message for `waiting` is still in Redis
    rclient.post(f"/jobs/{busy}/cancel", headers=auth(user))
    restarted = start_worker("r1")
    wait_for(lambda: all_final(rcontext), 60, 0.2, "both jobs to be final")
    wait_for(
        lambda: "not claimable" in restarted.output(),
        30,
        what="the cancelled job's message to be refused",
    )
    state = jobs(rcontext)
    assert state[waiting].status == "cancelled" and state[waiting].attempts == 0
    assert state[busy].status == "cancelled"
    check_invariants(rcontext)


@pytest.mark.parametrize("grace", [0.5])
def test_sigterm_requeues_jobs_that_outlast_the_grace_period(
    rclient: TestClient,
    rcontext: Context,
    rsettings: Settings,
    start_worker: WorkerFactory,
    grace: float,
) -> None:
    impatient = rsettings.model_copy(update={"shutdown_grace_s": grace, **LONG_CHECKPOINTS})
    leaving = start_worker("g1", impatient)
    user, dataset_id = dataset(rclient, rows=LONG["rows"])
    job_id = submit(rclient, user, dataset_id, LONG["rounds"], **SLOW)
    wait_for(lambda: jobs(rcontext)[job_id].status == "running", 30, what="the job to start")
    leaving.terminate()  # warm shutdown; past the grace period the job is handed back
    assert leaving.process is not None and leaving.process.returncode is not None
    assert jobs(rcontext)[job_id].status == "queued"
    start_worker("g2", impatient)
    wait_for(lambda: all_final(rcontext), 120, 0.2, "the job to finish elsewhere")
    [job] = check_invariants(rcontext)
    assert job.status == "succeeded" and job.attempts == 2
    assert "requeued" in events(rclient, user, job_id)


def test_sigterm_releases_only_the_jobs_of_the_worker_that_stops(
    rclient: TestClient, rcontext: Context, rsettings: Settings, start_worker: WorkerFactory
) -> None:
    # Two workers on one host under one node name (as two with the default name would be).
    impatient = rsettings.model_copy(update={"shutdown_grace_s": 0.5, **LONG_CHECKPOINTS})
    same_name = ["--hostname", "twin@%h"]
    leaving = start_worker("t1", impatient, extra_args=same_name)
    user, dataset_id = dataset(rclient, rows=LONG["rows"])
    first = submit(rclient, user, dataset_id, LONG["rounds"], **SLOW)
    wait_for(lambda: jobs(rcontext)[first].status == "running", 30, what="the first job")
    start_worker("t2", impatient, extra_args=same_name)
    second = submit(rclient, user, dataset_id, LONG["rounds"], **SLOW)
    wait_for(lambda: jobs(rcontext)[second].status == "running", 30, what="the second job")
    staying = jobs(rcontext)[second]
    nodes = {(jobs(rcontext)[j].worker_id or "").split(":")[0] for j in (first, second)}
    assert len(nodes) == 1 and nodes.pop().startswith("twin@")  # one node name for both

    leaving.terminate()

    assert jobs(rcontext)[first].status in ("queued", "running")  # handed back (maybe taken)
    after = jobs(rcontext)[second]
    assert (after.status, after.attempts, after.worker_id) == ("running", 1, staying.worker_id)
    assert "requeued" not in events(rclient, user, second)
    assert "requeued" in events(rclient, user, first)
    for job_id in (first, second):
        rclient.post(f"/jobs/{job_id}/cancel", headers=auth(user))
    wait_for(lambda: all_final(rcontext), 60, 0.2, "both jobs to stop")
    check_invariants(rcontext)
