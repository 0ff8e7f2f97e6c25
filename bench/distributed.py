"""`python -m bench.distributed`: jobs per second with 1, 2 and 3 workers, distributed mode.

The deployment is real: `xgenerator api` and `xgenerator worker` subprocesses, a throw-away
PostgreSQL database, the machine's Redis (a database number of its own) and moto's S3 server
on loopback for the artifacts. For each worker count it submits a burst of small training
jobs (one thread each), then a burst of no-op jobs (the machinery alone), and times each
burst from the first submission to the last job recorded final. The table goes to stdout.

On a 2-core machine the third worker has no core of its own: expect 1→2 to scale, 2→3 not.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import redis

from bench.common import HttpServer, ThrowawayDatabase, free_port, log
from tests.distributed.fleet import (
    start_workers,
    stop_workers,
    submit_trainings,
    tally,
    wait_all_final,
)
from tests.support import S3Server, auth, classification_frame, settings_env
from xgenerator.context import Context, build_context
from xgenerator.settings import Settings

REDIS_URL = "redis://127.0.0.1:6379/10"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.distributed", description=__doc__)
    parser.add_argument("--jobs", type=int, default=30, help="jobs per burst")
    parser.add_argument("--rows", type=int, default=2_000, help="rows of the training data")
    parser.add_argument("--rounds", type=int, default=20, help="boosting rounds per job")
    parser.add_argument("--max-workers", type=int, default=3)
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="xgen-bench-distributed-"))
    (workdir / "data").mkdir()
    broker = redis.Redis.from_url(REDIS_URL)
    broker.flushdb()
    broker.close()
    s3 = S3Server(workdir / "moto.log")
    s3.start()
    database = ThrowawayDatabase("postgresql", workdir)
    settings = Settings(
        data_dir=workdir / "data",
        database_url=database.url,
        broker_url=REDIS_URL,
        rate_limit_enabled=False,
        max_active_jobs_per_user=0,
        **s3.new_bucket(),  # type: ignore[arg-type]
    )
    api_port = free_port()
    api = HttpServer(
        "api",
        [sys.executable, "-m", "xgenerator", "api", "--port", str(api_port)],
        settings_env(settings),
        workdir,
        api_port,
        "/health",
    )
    context = build_context(settings)
    http = httpx.Client(base_url=api.url, timeout=120)
    rows: list[tuple[int, float, float, Counter[str]]] = []
    try:
        user = _user(http)
        dataset_id = _dataset(http, user, args.rows)
        for count in range(1, args.max_workers + 1):
            log(f"{count} worker(s): starting")
            workers = start_workers(settings, count, concurrency=1)
            try:
                # each worker's first job pays its lazy imports: not part of the figure
                wait_all_final(
                    context, submit_trainings(http, user, dataset_id, 2 * count, args.rounds), 120
                )
                start = time.monotonic()
                ids = submit_trainings(http, user, dataset_id, args.jobs, args.rounds)
                wait_all_final(context, ids, 600)
                train_rate = args.jobs / (time.monotonic() - start)
                spread = _check(context, ids)
                start = time.monotonic()
                noops = [_noop(http, user) for _ in range(args.jobs)]
                wait_all_final(context, noops, 600)
                noop_rate = args.jobs / (time.monotonic() - start)
                _check(context, noops)
            finally:
                stop_workers(workers)
            log(f"{count} worker(s): {train_rate:.2f} training jobs/s, {noop_rate:.1f} no-op/s")
            rows.append((count, train_rate, noop_rate, spread))
    finally:
        http.close()
        api.stop()
        context.close()
        database.drop()
        s3.stop()
    print(_table(rows, args))
    return 0


def _user(http: httpx.Client) -> dict[str, str]:
    response = http.post("/users", json={"username": "bench", "email": "bench@example.com"})
    response.raise_for_status()
    body = response.json()
    return {"X-API-Key": body["api_key"], "user_id": body["user_id"]}


def _dataset(http: httpx.Client, user: dict[str, str], rows: int) -> str:
    buffer = io.BytesIO()
    classification_frame(rows).to_csv(buffer, index=False)
    response = http.post(
        "/datasets",
        headers=auth(user),
        data={"dataset_name": "bench"},
        files={"file": ("bench.csv", buffer.getvalue(), "text/csv")},
    )
    response.raise_for_status()
    dataset_id: str = response.json()["dataset_id"]
    return dataset_id


def _noop(http: httpx.Client, user: dict[str, str]) -> str:
    response = http.post("/jobs/noop", headers=auth(user))
    response.raise_for_status()
    job_id: str = response.json()["job_id"]
    return job_id


def _check(context: Context, ids: list[str]) -> Counter[str]:
    """A figure counts only if every job succeeded, once; returns the jobs per worker."""
    result = tally(context, ids)
    if result.statuses != {"succeeded": len(ids)} or set(result.started_events.values()) != {1}:
        raise RuntimeError(f"jobs did not all succeed exactly once: {result}")
    return Counter({host.split("@", 1)[0]: n for host, n in result.hosts.items()})


def _table(rows: list[tuple[int, float, float, Counter[str]]], args: argparse.Namespace) -> str:
    base_train, base_noop = rows[0][1], rows[0][2]
    cores = len(os.sched_getaffinity(0))
    lines = [
        f"Distributed throughput on {platform.node()} ({cores} cores): bursts of "
        f"{args.jobs} jobs; training = {args.rows} rows, {args.rounds} rounds, 1 thread; "
        "PostgreSQL + Redis + S3 (moto), 1 process per worker.",
        "",
        "| workers | training jobs/s | vs 1 worker | no-op jobs/s | vs 1 worker "
        "| training jobs per worker |",
        "|---|---|---|---|---|---|",
    ]
    for count, train, noop, spread in rows:
        per_worker = ", ".join(f"{name} {n}" for name, n in sorted(spread.items()))
        lines.append(
            f"| {count} | {train:.2f} | {train / base_train:.2f}× | {noop:.1f} | "
            f"{noop / base_noop:.2f}× | {per_worker} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
