"""No job lost, none finished twice: each failure below ends well."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from kombu import Connection
from sqlalchemy import select

from tests.reliability.conftest import WorkerFactory, check_invariants
from tests.reliability.proxy import TcpProxy
from tests.support import auth, classification_frame, create_user, upload, wait_for
from tests.support.jobs import SLOW, submit
from xgenerator.api.app import create_app
from xgenerator.context import Context, build_context
from xgenerator.db.tables import Job
from xgenerator.settings import Settings
from xgenerator.tasks.dispatch import CeleryDispatcher

# A job that is still training when a test acts on it, on a fast machine too: ~6 s on an idle
# 2-core machine here (a test acting within a second of its start), while the deadlines of
# 120 s leave room for one twenty times slower. Checkpoints every 100 rounds, not every 5:
# each saves the whole, growing model.
LONG = {"rows": 10_000, "rounds": 4_000}
LONG_CHECKPOINTS = {"checkpoint_every": 100}


def jobs(context: Context) -> dict[str, Job]:
    with context.db.session() as session:
        return {j.id: j for j in session.scalars(select(Job))}


def events(client: TestClient, user: dict[str, str], job_id: str) -> list[str]:
    body = client.get(f"/jobs/{job_id}/events", headers=auth(user)).json()
    return [e["event"] for e in body["events"]]


def all_final(context: Context) -> bool:
    return all(j.status in ("succeeded", "failed", "cancelled") for j in jobs(context).values())


def dataset(client: TestClient, rows: int = 3000) -> tuple[dict[str, str], str]:
    user = create_user(client)
    return user, upload(client, user, classification_frame(rows)).json()["dataset_id"]


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


def test_redis_flushed_with_20_jobs_queued_all_succeed_once(
    rclient: TestClient, rcontext: Context, rsettings: Settings, start_worker: WorkerFactory
) -> None:
    user, dataset_id = dataset(rclient, rows=200)
    ids = [submit(rclient, user, dataset_id, 3) for _ in range(20)]
    client = redis.Redis.from_url(rsettings.broker_url or "")
    assert client.llen("train") == 20
    client.flushall()  # every message is gone; the database still has 20 queued jobs
    client.close()
    start_worker("f1", concurrency=2)
    wait_for(lambda: all_final(rcontext), 120, 0.2, "all 20 jobs to finish")
    finished = check_invariants(rcontext)
    assert sorted(j.id for j in finished) == sorted(ids)
    assert all(j.status == "succeeded" and j.attempts == 1 for j in finished)
    assert all(events(rclient, user, i).count("started") == 1 for i in ids)


def test_a_job_whose_task_was_never_sent_still_runs(
    rsettings: Settings, rcontext: Context, start_worker: WorkerFactory
) -> None:
    # The API commits the job, then its broker is unreachable (connection refused): the
    # same as an API process dying between the commit and the send.
    broken = rsettings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})
    api_context = build_context(broken, CeleryDispatcher.from_settings(broken))
    with TestClient(create_app(broken, api_context)) as client:
        user, dataset_id = dataset(client, rows=200)
        job_id = submit(client, user, dataset_id, 3)
        with rcontext.db.session() as session:
            unsent = session.get(Job, job_id)
            assert unsent is not None and unsent.celery_task_id is None
        start_worker("s1")
        wait_for(lambda: all_final(rcontext), 60, 0.2, "the unsent job to finish")
        assert events(client, user, job_id) == ["submitted", "resent", "started", "succeeded"]
    api_context.close()
    check_invariants(rcontext)


def test_redelivery_after_a_short_visibility_timeout_does_not_train_twice(
    rclient: TestClient, rcontext: Context, rsettings: Settings, start_worker: WorkerFactory
) -> None:
    short = rsettings.model_copy(update={"visibility_timeout_s": 1.0, **LONG_CHECKPOINTS})
    first = start_worker("v1", short)
    second = start_worker("v2", short)
    user, dataset_id = dataset(rclient, rows=LONG["rows"])
    job_id = submit(rclient, user, dataset_id, LONG["rounds"], **SLOW)
    wait_for(lambda: jobs(rcontext)[job_id].status == "running", 30, what="the job to start")
    # What any consumer of this Redis does periodically: put messages unacked for longer
    # than the visibility timeout back in their queue (kombu's sweep, run here on demand).
    with Connection(rsettings.broker_url, transport_options={"visibility_timeout": 1}) as conn:

        def redelivered() -> bool:
            conn.default_channel.qos.restore_visible(num=100)
            return "not claimable" in first.output() + second.output()

        wait_for(redelivered, 30, 0.2, "the message to be redelivered and refused")
    wait_for(lambda: all_final(rcontext), 120, 0.2, "the job to finish")
    [job] = check_invariants(rcontext)
    assert job.status == "succeeded" and job.attempts == 1
    assert events(rclient, user, job_id).count("started") == 1


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


def test_postgresql_refusing_connections_during_training(
    rclient: TestClient, rcontext: Context, rsettings: Settings, start_worker: WorkerFactory
) -> None:
    url = rsettings.resolved_database_url
    proxy = TcpProxy("127.0.0.1", 5432)
    proxy.start()
    proxied = rsettings.model_copy(
        update={
            "database_url": url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}"),
            "lease_s": 15.0,
            **LONG_CHECKPOINTS,
        }
    )
    worker = start_worker("p1", proxied)
    user, dataset_id = dataset(rclient, rows=LONG["rows"])
    job_id = submit(rclient, user, dataset_id, LONG["rounds"], **SLOW)
    wait_for(
        lambda: ((jobs(rcontext)[job_id].progress or {}).get("round") or 0) >= 20,
        60,
        what="training to be under way",
    )
    proxy.stop()  # PostgreSQL is gone for the worker: connection refused
    wait_for(
        lambda: worker.output().count("database unavailable") >= 3,
        30,
        0.1,
        "the worker to run into the outage",
    )
    assert jobs(rcontext)[job_id].status == "running"
    proxy.start()
    wait_for(lambda: all_final(rcontext), 120, 0.2, "the job to finish")
    [job] = check_invariants(rcontext)
    assert job.status == "succeeded", job.error
    proxy.stop()


def test_idempotency_key_replays_concurrently_make_one_job(
    rsettings: Settings, rcontext: Context, rclient: TestClient
) -> None:
    user, dataset_id = dataset(rclient, rows=100)
    body = {
        "model_name": "m",
        "dataset_id": dataset_id,
        "task_type": "classification",
        "target": "label",
        "num_boost_round": 3,
    }
    app = create_app(rsettings, rcontext)
    answers: list[Any] = []

    def post() -> None:
        with TestClient(app) as client:
            answers.append(
                client.post("/train", json=body, headers={**auth(user), "Idempotency-Key": "k-1"})
            )

    threads = [threading.Thread(target=post) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a.status_code for a in answers) == [200] * 5 + [202]
    assert len({a.json()["job_id"] for a in answers}) == 1
    assert len(jobs(rcontext)) == 1


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


def test_a_broker_outage_mid_training_costs_no_attempt(
    rclient: TestClient, rcontext: Context, rsettings: Settings, start_worker: WorkerFactory
) -> None:
    # The worker reaches Redis through a proxy that cuts every connection and refuses new
    # ones for 5 s while the job trains; the database stays reachable.
    url = rsettings.broker_url or ""
    proxy = TcpProxy("127.0.0.1", 6379)
    proxy.start()
    proxied = rsettings.model_copy(
        update={"broker_url": url.replace("127.0.0.1:6379", f"127.0.0.1:{proxy.port}")}
    )
    worker = start_worker("b1", proxied.model_copy(update=LONG_CHECKPOINTS))
    user, dataset_id = dataset(rclient, rows=LONG["rows"])
    job_id = submit(rclient, user, dataset_id, 5000, **SLOW)
    wait_for(
        lambda: ((jobs(rcontext)[job_id].progress or {}).get("round") or 0) >= 20,
        60,
        what="training to be under way",
    )
    proxy.stop()
    wait_for(
        lambda: "Connection to broker lost" in worker.output(),
        30,
        0.1,
        "the worker to notice the broker is gone",
    )
    time.sleep(5)  # the outage itself, not a wait for a condition
    assert jobs(rcontext)[job_id].status == "running"
    proxy.start()
    wait_for(lambda: all_final(rcontext), 180, 0.2, "the job to finish")
    [job] = check_invariants(rcontext)
    assert (job.status, job.attempts) == ("succeeded", 1), job.error
    assert events(rclient, user, job_id).count("started") == 1
    proxy.stop()
