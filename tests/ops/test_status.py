"""`/status` and `/metrics`: who may read them, and what they say with real workers, real
queues and real jobs (a worker subprocess started, stopped and killed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import redis
import xgboost
from sqlalchemy import func, select

from tests.support import WorkerProcess, auth, classification_frame, create_user, upload, wait_for
from tests.support.services import ADMIN, ADMIN_KEY, Service, ServiceFactory, sample, scrape
from xgenerator.db.tables import Job, WorkerHeartbeat
from xgenerator.jobs import service
from xgenerator.jobs.queues import CPU_QUEUES
from xgenerator.ops import broker, heartbeats


def status(svc: Service) -> dict[str, Any]:
    response = svc.client.get("/status", headers=ADMIN)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def queues(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {q["name"]: q for q in body["queues"]}


def submit_noop(svc: Service, user_id: str) -> str:
    job = Job(user_id=user_id, job_type="noop", queue="train", config={})
    return service.enqueue(svc.context, job).job.id


def job_status(svc: Service, job_id: str) -> str:
    with svc.context.db.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job.status


def test_operator_endpoints_need_an_admin_key(service: ServiceFactory) -> None:
    svc = service()
    user = create_user(svc.client)
    for path in ("/status", "/metrics"):
        assert svc.client.get(path).status_code == 401
        assert svc.client.get(path, headers={"X-Admin-Key": "wrong"}).status_code == 401
        # a user's API key is not an admin key
        assert svc.client.get(path, headers=auth(user)).status_code == 401
        assert svc.client.get(path, headers=ADMIN).status_code == 200
        bearer = {"Authorization": f"Bearer {ADMIN_KEY}"}
        assert svc.client.get(path, headers=bearer).status_code == 200
    body = svc.client.get("/status").json()
    assert body["error"] == "unauthorized"
    assert svc.client.get("/health").status_code == 200  # liveness stays open

    closed = service(admin_keys="")
    response = closed.client.get("/status", headers=ADMIN)
    assert response.status_code == 403 and "XGEN_ADMIN_KEYS" in response.json()["message"]
    opened = service(admin_keys="", status_open=True)
    assert opened.client.get("/status").status_code == 200
    assert opened.client.get("/metrics").status_code == 200


def test_status_without_workers(service: ServiceFactory) -> None:
    svc = service()
    body = status(svc)
    assert body["status"] == "ok"
    assert body["database"]["ok"] and body["broker"]["ok"]
    assert body["xgboost_version"] == xgboost.__version__
    assert body["version"]
    assert body["workers_alive"] == 0
    assert set(queues(body)) == {"train", "predict", "process", "maintenance", "gpu"}
    assert body["jobs_by_status"] == {
        "queued": 0,
        "running": 0,
        "succeeded": 0,
        "failed": 0,
        "cancelled": 0,
    }
    assert body["oldest_queued_age_s"] is None
    assert body["gpu_queue_without_worker"] is False
    assert body["warnings"] == []


def test_status_reports_a_broker_it_cannot_reach(service: ServiceFactory) -> None:
    svc = service(broker="redis+socket:///nonexistent/redis.sock")
    response = svc.client.get("/status", headers=ADMIN)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["database"]["ok"] is True
    assert body["broker"]["ok"] is False and body["broker"]["error"]
    assert all(q["depth"] is None for q in body["queues"])
    # /metrics still answers, saying the broker is down
    assert sample(scrape(svc.client), "xgen_broker_up") == 0.0


def test_heartbeat_rows(service: ServiceFactory) -> None:
    svc = service()
    info = heartbeats.WorkerInfo("w@host", ["train", "gpu"], 4, pid=123)
    now = datetime(2027, 1, 1, tzinfo=UTC)
    with svc.context.db.session() as session:
        heartbeats.beat(session, info, now)
        heartbeats.beat(session, info, now + timedelta(seconds=5))  # an update, not a new row
    with svc.context.db.session() as session:
        alive = heartbeats.alive(session, now + timedelta(seconds=20), timeout_s=30)
        assert [(w.worker_id, w.queues, w.concurrency, w.last_seen_at) for w in alive] == [
            ("w@host:123", ["train", "gpu"], 4, now + timedelta(seconds=5))
        ]
        assert heartbeats.alive(session, now + timedelta(seconds=40), timeout_s=30) == []
        assert heartbeats.prune(session, now) == 0
        assert heartbeats.prune(session, now + timedelta(days=1)) == 1


def test_status_and_metrics_follow_workers_queues_and_jobs(service: ServiceFactory) -> None:
    svc = service(worker_heartbeat_interval_s=0.2, worker_heartbeat_timeout_s=2.0)
    client = svc.client
    user = create_user(client)
    dataset_id = upload(client, user, classification_frame(60)).json()["dataset_id"]

    # Before any worker: a GPU training job and two CPU jobs wait in their queues.
    accepted = client.post(
        "/train",
        headers=auth(user),
        json={
            "model_name": "on-gpu",
            "dataset_id": dataset_id,
            "task_type": "classification",
            "target": "label",
            "num_boost_round": 5,
            "xgb_params": {"device": "cuda"},
        },
    )
    assert accepted.status_code == 202, accepted.text
    gpu_job = accepted.json()["job_id"]
    assert client.get(f"/jobs/{gpu_job}", headers=auth(user)).json()["queue"] == "gpu"
    noops = [submit_noop(svc, user["user_id"]) for _ in range(2)]

    body = status(svc)
    by_queue = queues(body)
    assert (by_queue["train"]["depth"], by_queue["train"]["queued_jobs"]) == (2, 2)
    assert (by_queue["gpu"]["depth"], by_queue["gpu"]["queued_jobs"]) == (1, 1)
    assert by_queue["predict"]["depth"] == 0
    assert body["jobs_by_status"]["queued"] == 3
    assert body["oldest_queued_age_s"] >= 0
    assert body["workers_alive"] == 0
    assert body["gpu_queue_without_worker"] is True
    assert any("'train'" in w for w in body["warnings"])

    # Two CPU workers (every queue but gpu), booted side by side: they run the CPU jobs and
    # never take the GPU job. One is later stopped cleanly, the other killed.
    cpu = WorkerProcess(svc.settings, "cpu", concurrency=1)
    doomed = WorkerProcess(svc.settings, "doomed", concurrency=1)
    try:
        cpu.launch()
        doomed.launch()
        cpu.wait_ready()
        doomed.wait_ready()
        wait_for(
            lambda: all(job_status(svc, j) == "succeeded" for j in noops),
            30,
            0.1,
            "the CPU jobs to run",
        )
        body = wait_for(
            lambda: (b := status(svc))["workers_alive"] == 2 and b,
            10,
            0.1,
            "both workers' heartbeats",
        )
        for seen in body["workers"]:
            assert seen["queues"] == sorted(CPU_QUEUES)
            assert seen["concurrency"] == 1
        assert {w["hostname"].split("@")[0] for w in body["workers"]} == {"cpu", "doomed"}
        by_queue = queues(body)
        assert by_queue["train"]["depth"] == 0 and by_queue["train"]["workers_alive"] == 2
        assert by_queue["gpu"]["depth"] == 1 and by_queue["gpu"]["workers_alive"] == 0
        assert body["gpu_queue_without_worker"] is True
        assert job_status(svc, gpu_job) == "queued"
        gpu_detail = client.get(f"/jobs/{gpu_job}", headers=auth(user)).json()
        assert gpu_detail["attempts"] == 0

        def both_counted() -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
            """A job's finish is counted just after its success is committed."""
            scraped = scrape(client)
            done = sample(scraped, "xgen_jobs_finished_total", job_type="noop", status="succeeded")
            return scraped if done == 2 else None

        metrics = wait_for(both_counted, 10, 0.1, "both noop jobs' finish in the metrics")
        assert sample(metrics, "xgen_jobs_submitted_total", job_type="noop") == 2
        assert sample(metrics, "xgen_jobs_submitted_total", job_type="train") == 1
        assert sample(metrics, "xgen_jobs_finished_total", job_type="noop", status="succeeded") == 2
        assert sample(metrics, "xgen_job_duration_seconds_count", job_type="noop") == 2
        assert sample(metrics, "xgen_job_queue_wait_seconds_count", job_type="noop") == 2
        assert (
            sample(metrics, "xgen_job_queue_wait_seconds_bucket", job_type="noop", le="+Inf") == 2
        )
        assert sample(metrics, "xgen_queue_depth", queue="gpu") == 1
        assert sample(metrics, "xgen_queue_depth", queue="train") == 0
        assert sample(metrics, "xgen_jobs_active", job_type="train", status="queued") == 1
        assert sample(metrics, "xgen_jobs_running") == 0
        assert sample(metrics, "xgen_oldest_queued_job_age_seconds", queue="gpu") > 0
        assert sample(metrics, "xgen_workers_alive", queue="train") == 2
        assert sample(metrics, "xgen_workers_alive", queue="gpu") == 0
        assert sample(metrics, "xgen_database_up") == 1
        assert sample(metrics, "xgen_broker_up") == 1
        assert (
            sample(metrics, "xgen_http_requests_total", method="POST", route="/train", status="202")
            == 1
        )
        assert (
            sample(
                metrics,
                "xgen_http_requests_total",
                method="GET",
                route="/jobs/{job_id}",
                status="200",
            )
            == 2
        )

        # A clean shutdown removes the worker's row at once.
        cpu.stop()
        assert heartbeat_rows(svc) == 1
        assert status(svc)["workers_alive"] == 1
        # A killed worker leaves its row; it stops counting once the heartbeat timeout passes.
        doomed.kill()
        wait_for(
            lambda: status(svc)["workers_alive"] == 0, 10, 0.2, "the killed worker to be noticed"
        )
        assert heartbeat_rows(svc) == 1
    finally:
        cpu.stop()
        doomed.stop()
    assert job_status(svc, gpu_job) == "queued"
    assert svc.context.redis is not None
    assert broker.queue_depths(svc.context.redis, ["gpu"]) == {"gpu": 1}


def heartbeat_rows(svc: Service) -> int:
    with svc.context.db.session() as session:
        return session.scalar(select(func.count()).select_from(WorkerHeartbeat)) or 0


def test_queue_depth_counts_every_priority_list(service: ServiceFactory) -> None:
    svc = service()
    client = svc.context.redis
    assert client is not None
    keys = broker.queue_keys("train")
    assert keys[0] == "train" and len(keys) == 4
    for key in keys:
        client.lpush(key, b"m")
    client.lpush("predict", b"m", b"m")
    assert broker.queue_depths(client, ["train", "predict", "gpu"]) == {
        "train": 4,
        "predict": 2,
        "gpu": 0,
    }


def test_request_metrics_use_route_templates(service: ServiceFactory) -> None:
    svc = service()
    user = create_user(svc.client)
    for job_id in ("a", "b", "c"):
        assert svc.client.get(f"/jobs/{job_id}", headers=auth(user)).status_code == 404
    svc.client.get("/no/such/path")
    metrics = scrape(svc.client)
    assert (
        sample(
            metrics, "xgen_http_requests_total", method="GET", route="/jobs/{job_id}", status="404"
        )
        == 3
    )
    assert (
        sample(metrics, "xgen_http_requests_total", method="GET", route="unmatched", status="404")
        == 1
    )
    assert (
        sample(
            metrics,
            "xgen_http_request_duration_seconds_count",
            method="GET",
            route="/jobs/{job_id}",
        )
        == 3
    )
    assert not any(labels and ("route", "/jobs/a") in labels for _, labels in metrics)


def test_job_counters_are_shared_by_api_processes(service: ServiceFactory) -> None:
    """Two API processes on one broker: each reports what the other counted."""
    first, second = service(), service()
    user = create_user(first.client)
    submit_noop(first, user["user_id"])
    submit_noop(second, user["user_id"])
    for svc in (first, second):
        assert sample(scrape(svc.client), "xgen_jobs_submitted_total", job_type="noop") == 2


def test_metric_writes_survive_a_dead_broker(service: ServiceFactory) -> None:
    svc = service(broker="redis+socket:///nonexistent/redis.sock")
    svc.context.metrics.submitted("noop")  # logged, not raised
    svc.context.metrics.finished("noop", "succeeded", 1.0)
    assert isinstance(svc.context.redis, redis.Redis)
