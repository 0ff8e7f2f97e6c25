"""3. Submission: `POST /train` requests per second with concurrent clients, vs. a bare FastAPI
route that pushes the same JSON body onto a Redis list, served by uvicorn the same way.

No worker runs meanwhile, so the machine serves requests only; the queued jobs are
cancelled and their tasks dropped afterwards. Service and bare blocks alternate.
"""

from __future__ import annotations

import io

import redis

from bench import REDIS_URL
from bench.common import Bench, Stack, headers, log
from bench.data import TARGET, classification_frame
from bench.loadgen import Request, load
from bench.report import Row, Sample, Target, seconds
from bench.training import train_body
from xgenerator.jobs.queues import QUEUES
from xgenerator.ops.broker import queue_keys

NAME = "submission"
WARMUP = 30


def expected(quick: bool) -> list[str]:
    return ["POST /train req/s vs bare FastAPI + LPUSH"]


def run(bench: Bench) -> list[Row]:
    cfg = bench.config
    stack = bench.stack("postgresql")
    stack.stop_workers()  # the jobs must stay queued: training them would take the CPU
    user = stack.create_user()
    auth = headers(user)
    csv = io.BytesIO()
    classification_frame(200).to_csv(csv, index=False)
    uploaded = stack.http.post(
        "/datasets",
        headers=auth,
        data={"dataset_name": "tiny"},
        files={"file": ("tiny.csv", csv.getvalue(), "text/csv")},
    )
    uploaded.raise_for_status()
    body = train_body(uploaded.json()["dataset_id"], 10)
    assert body["target"] == TARGET
    bare = bench.bare_api()

    train = Request.json("POST", "/train", body, auth)
    push = Request.json("POST", "/push", body)

    def service_request(_: int) -> Request:
        return train

    def bare_request(_: int) -> Request:
        return push

    load(stack.api.url, service_request, 4, total=WARMUP)
    load(bare.url, bare_request, 4, total=WARMUP)
    service_rates, bare_rates = [], []
    service_latency: list[float] = []
    bare_latency: list[float] = []
    for _ in range(1 if cfg.quick else 3):
        result = load(
            stack.api.url, service_request, cfg.submit_clients, seconds=cfg.submit_seconds
        )
        if set(result.statuses) != {202}:
            raise RuntimeError(f"POST /train answered {dict(result.statuses)}")
        service_rates.append(result.rate)
        service_latency += result.latencies
        result = load(bare.url, bare_request, cfg.submit_clients, seconds=cfg.submit_seconds)
        bare_rates.append(result.rate)
        bare_latency += result.latencies
        log(f"submission: service {service_rates[-1]:,.0f}/s, bare {bare_rates[-1]:,.0f}/s")
    _drop_queued(stack)

    service, base = Sample.of(service_rates), Sample.of(bare_rates)
    s_lat, b_lat = Sample.of(service_latency), Sample.of(bare_latency)
    return [
        Row(
            NAME,
            "POST /train req/s vs bare FastAPI + LPUSH",
            f"{service.p50:,.0f} req/s (p50 {seconds(s_lat.p50)}, p95 {seconds(s_lat.p95)}) "
            f"· n={len(service_rates)}",
            f"{base.p50:,.0f} req/s (p50 {seconds(b_lat.p50)}, p95 {seconds(b_lat.p95)}) "
            f"· n={len(bare_rates)}",
            service.p50 / base.p50,
            Target(">=", 0.5),
            f"{cfg.submit_clients} concurrent clients, {cfg.submit_seconds:g} s blocks",
        ),
    ]


def _drop_queued(stack: Stack) -> None:
    """Cancel the jobs left queued and drop their tasks, so no later worker trains them."""
    from xgenerator.db.tables import Job

    with stack.context.db.session() as session:
        session.query(Job).filter(Job.status == "queued").update(
            {"status": "cancelled", "cancel_requested": True}
        )
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.delete(*(key for queue in QUEUES for key in queue_keys(queue)), "bare-submissions")
    finally:
        client.close()
