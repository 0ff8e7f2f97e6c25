"""The broker and the database failing or losing messages, and duplicate requests: no job
lost, none finished twice."""

from __future__ import annotations

import threading
import time
from typing import Any

import redis
from fastapi.testclient import TestClient
from kombu import Connection

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
from tests.reliability.proxy import TcpProxy
from tests.support import auth, wait_for
from tests.support.jobs import SLOW, submit, train_body
from xgenerator.api.app import create_app
from xgenerator.context import Context, build_context
from xgenerator.db.tables import Job
from xgenerator.settings import Settings
from xgenerator.tasks.dispatch import CeleryDispatcher


def test_redis_flushed_with_20_jobs_queued_all_succeed_once(
    rclient: TestClient, rcontext: Context, rsettings: Settings, start_worker: WorkerFactory
) -> None:
    user, dataset_id = dataset(rclient, rows=200)
    ids = [submit(rclient, user, dataset_id, 3) for _ in range(20)]
    client = redis.Redis.from_url(rsettings.broker_url or "")
    assert client.llen("train") == 20
    client.flushdb()  # every message is gone; the database still has 20 queued jobs
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
    body = train_body(dataset_id, 3)
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
