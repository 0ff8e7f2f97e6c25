"""2. Queue overhead: a no-op job through the service vs. a bare Celery no-op task.

Service: `POST /jobs/noop`, then the job's commit as `succeeded` (learned through PostgreSQL
LISTEN/NOTIFY, as `.get()` learns of a Celery result through Redis pub/sub). Bare:
`noop.apply_async().get()` on the same Redis, a Redis result backend, Celery's defaults. One
worker process with two pool processes on each side; the two kinds of jobs alternate.
"""

from __future__ import annotations

import json
import time

from bench.common import Bench, Stack, headers, log
from bench.loadgen import Request, load
from bench.report import Row, Sample, Target, describe_rate, describe_time, seconds

NAME = "queue"
WARMUP = 10  # the first jobs of each pool process pay for connections and lazy imports


def expected(quick: bool) -> list[str]:
    return ["no-op submit → succeeded, sequential", "throughput of no-op jobs, 2 processes"]


def _service_noop(stack: Stack, auth: dict[str, str]) -> tuple[float, str]:
    final = stack.final_jobs  # listening before the job exists: its note cannot be missed
    started = time.perf_counter()
    response = stack.http.post("/jobs/noop", headers=auth)
    if response.status_code != 202:
        raise RuntimeError(f"POST /jobs/noop answered {response.status_code}: {response.text}")
    job_id: str = response.json()["job_id"]
    final.wait({job_id}, timeout=60)
    return time.perf_counter() - started, job_id


def _phases(stack: Stack, job_ids: list[str]) -> tuple[Sample, Sample]:
    """Submit→claim and claim→succeeded of the service's jobs, from their own timestamps."""
    from xgenerator.db.tables import Job

    with stack.context.db.session() as session:
        rows = (
            session.query(Job.created_at, Job.started_at, Job.completed_at)
            .filter(Job.id.in_(job_ids))
            .all()
        )
    waits = [(s - c).total_seconds() for c, s, _ in rows if s]
    runs = [(d - s).total_seconds() for _, s, d in rows if s and d]
    return Sample.of(waits), Sample.of(runs)


def run(bench: Bench) -> list[Row]:
    cfg = bench.config
    stack = bench.stack("postgresql", workers=1)
    auth = headers(stack.create_user())
    bare_worker = bench.bare_celery()
    from bench.bare_celery import noop

    log("queue: warming up")
    for _ in range(WARMUP):
        _service_noop(stack, auth)
        noop.apply_async().get(timeout=30)

    service: list[float] = []
    bare: list[float] = []
    ids: list[str] = []
    for _ in range(cfg.queue_latency_jobs):
        took, job_id = _service_noop(stack, auth)
        service.append(took)
        ids.append(job_id)
        started = time.perf_counter()
        noop.apply_async().get(timeout=30)
        bare.append(time.perf_counter() - started)
    wait, work = _phases(stack, ids)
    log(
        f"queue: latency service {seconds(Sample.of(service).p50)}, "
        f"bare {seconds(Sample.of(bare).p50)}"
    )

    n = cfg.queue_throughput_jobs
    service_rate, bare_rate, submit_rate = [], [], []
    for _ in range(1 if cfg.quick else 2):
        rate, submitted = _service_throughput(stack, auth, n, cfg.submit_clients)
        service_rate.append(rate)
        submit_rate.append(submitted)
        started = time.perf_counter()
        results = [noop.apply_async() for _ in range(n)]
        for result in results:
            result.get(timeout=300)
        bare_rate.append(n / (time.perf_counter() - started))
        log(f"queue: throughput service {rate:,.0f}/s, bare {bare_rate[-1]:,.0f}/s")
    bare_worker.stop()

    s_service, s_bare = Sample.of(service), Sample.of(bare)
    t_service, t_bare = Sample.of(service_rate), Sample.of(bare_rate)
    return [
        Row(
            NAME,
            "no-op submit → succeeded, sequential",
            describe_time(s_service),
            describe_time(s_bare),
            s_service.p50 / s_bare.p50,
            Target("<=", 1.5),
            f"submit→claim p50 {seconds(wait.p50)}, claim→succeeded p50 {seconds(work.p50)}",
        ),
        Row(
            NAME,
            "throughput of no-op jobs, 2 processes",
            describe_rate(t_service, "jobs/s"),
            describe_rate(t_bare, "tasks/s"),
            t_service.p50 / t_bare.p50,
            None,
            f"{n:,} jobs; HTTP submission alone ran at "
            f"{Sample.of(submit_rate).p50:,.0f}/s ({cfg.submit_clients} clients)",
        ),
    ]


def _service_throughput(
    stack: Stack, auth: dict[str, str], n: int, clients: int
) -> tuple[float, float]:
    """(jobs/s from the first submission to the last success, submissions/s)."""

    request = Request("POST", "/jobs/noop", auth)
    started = time.perf_counter()
    result = load(stack.api.url, lambda _: request, clients, total=n, keep=True)
    if result.statuses != {202: n}:
        raise RuntimeError(f"submissions answered {dict(result.statuses)}")
    ids = {json.loads(body)["job_id"] for body in result.bodies}
    statuses = stack.final_jobs.wait(ids, timeout=600)
    elapsed = time.perf_counter() - started
    if set(statuses.values()) != {"succeeded"}:
        raise RuntimeError(f"no-op jobs ended {set(statuses.values())}")
    return n / elapsed, result.rate
