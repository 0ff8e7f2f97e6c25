"""1. Training overhead: `POST /train` → `succeeded` through the service vs. a bare script.

Baselines, each in its own process on the same stored data: `bench.bare_train` (Parquet,
`xgboost.train`, nothing else) and `bench.naive_train` (CSV, scikit-learn one-hot pipeline,
`XGBClassifier`). Service and bare runs alternate, so a burst of load from elsewhere on the
machine hits both. Service time runs from the client sending `POST /train` to the job's
`completed_at` (the same clock), so the client's polling interval does not count.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pyarrow.csv as pv
import pyarrow.parquet as pq

from bench.common import Bench, Stack, headers, log, run_json_script
from bench.data import TARGET, classification_frame
from bench.procfs import child_pids, cpu_seconds
from bench.report import Row, Sample, Target, describe_time, seconds
from xgenerator.datasets import repository as datasets

NAME = "training"
FINAL = ("succeeded", "failed", "cancelled")


def expected(quick: bool) -> list[str]:
    return [
        "service vs bare xgboost.train",
        "CPU time: worker vs bare script",
        "service vs naive CSV + one-hot pipeline",
    ]


def seed_dataset(
    stack: Stack, user: dict[str, str], frame: pd.DataFrame, name: str
) -> tuple[str, Path]:
    """Store `frame` as the user's dataset through the upload path (ingest included), without
    sending it over HTTP: the API's memory figure must be the training's, not the upload's.
    Returns the dataset id and the stored Parquet file."""
    scratch = stack.dir / "seed"
    scratch.mkdir(exist_ok=True)
    upload = scratch / f"{name}.parquet"
    frame.to_parquet(upload, index=False)
    row = datasets.create_from_upload(stack.context, user["user_id"], name, upload)
    upload.unlink()
    path = stack.context.store.local_path(row.storage_key)
    if path is None:
        raise RuntimeError("the benchmarks need a local artifact store")
    return row.id, path


def train_body(dataset_id: str, rounds: int) -> dict[str, Any]:
    return {
        "model_name": "bench",
        "dataset_id": dataset_id,
        "task_type": "classification",
        "target": TARGET,
        "num_boost_round": rounds,
        "test_size": 0.2,
        "xgb_params": {"tree_method": "hist", "max_depth": 6, "nthread": 2},
    }


def wait_job(
    stack: Stack, user: dict[str, str], job_id: str, timeout: float, interval: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = stack.http.get(f"/jobs/{job_id}", headers=headers(user)).json()
        if job["status"] in FINAL:
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {job['status']} after {timeout:g}s")
        for worker in stack.workers:
            worker.check_alive()
        time.sleep(interval)


# A job's events after its success: the work that follows it (the SHAP summary) is done.
FOLLOWED_UP = frozenset({"shap_summary", "shap_summary_failed", "shap_summary_skipped"})


def wait_followed_up(stack: Stack, user: dict[str, str], job_id: str, timeout: float) -> None:
    """Wait until the work after a job's success (its SHAP summary, in the job's process) is
    done, so that a baseline run next does not share the cores with it."""
    deadline = time.monotonic() + timeout
    while True:
        answer = stack.http.get(f"/jobs/{job_id}/events", headers=headers(user)).json()
        if FOLLOWED_UP & {event["event"] for event in answer["events"]}:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id}: no SHAP summary event after {timeout:g}s")
        time.sleep(0.05)


def pool_cpu_seconds(stack: Stack) -> float:
    """CPU time used so far by the stack's worker pool processes (where jobs run)."""
    return sum(cpu_seconds(pid) for worker in stack.workers for pid in child_pids(worker.pid))


def around_cpu_seconds(stack: Stack) -> float:
    """CPU time used so far by the rest of the service: the API, the worker's main process
    and this database's PostgreSQL backends (they share the machine with the training)."""
    pids = [stack.api.pid, *(worker.pid for worker in stack.workers)]
    if stack.db.kind == "postgresql":
        with psycopg.connect(stack.db.connect_dsn(), autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
        pids += [pid for (pid,) in rows]
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except FileNotFoundError:  # a backend that just exited
            pass
    return total


def epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def train_through_service(
    stack: Stack, user: dict[str, str], body: dict[str, Any], interval: float
) -> tuple[float, dict[str, Any]]:
    """Seconds from sending `POST /train` to the job's commit as succeeded, and the job."""
    sent = time.time()
    response = stack.http.post("/train", headers=headers(user), json=body)
    if response.status_code != 202:
        raise RuntimeError(f"POST /train answered {response.status_code}: {response.text}")
    job = wait_job(stack, user, response.json()["job_id"], timeout=1800, interval=interval)
    if job["status"] != "succeeded":
        raise RuntimeError(f"training job ended {job['status']}: {job.get('error')}")
    wait_followed_up(stack, user, job["job_id"], timeout=600)
    return epoch(job["completed_at"]) - sent, job


@dataclass
class Measured:
    """What the training runs left behind, for this table and for `bench.memory`."""

    stack: Stack
    service: list[float] = field(default_factory=list)
    bare: list[float] = field(default_factory=list)
    naive: list[float] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)
    service_cpu: list[float] = field(default_factory=list)
    around_cpu: list[float] = field(default_factory=list)
    bare_cpu: list[float] = field(default_factory=list)
    bare_rss_kib: list[int] = field(default_factory=list)


def measure(bench: Bench, repeats: int, naive_repeats: int) -> Measured:
    """Service and bare runs alternate; the naive runs come last (they read a CSV copy)."""
    cfg = bench.config
    stack = bench.stack("postgresql", workers=1)
    user = stack.create_user()
    log(f"training: seeding {cfg.train_rows:,} rows")
    frame = classification_frame(cfg.train_rows)
    dataset_id, parquet = seed_dataset(stack, user, frame, "train")
    del frame
    body = train_body(dataset_id, cfg.train_rounds)
    # Polls cost the API CPU that the training on the same two cores then lacks; the figure
    # itself comes from the job's completed_at, so polling once a second loses nothing.
    interval = 0.05 if cfg.quick else 1.0
    out = Measured(stack)
    for i in range(repeats):
        cpu_before, around_before = pool_cpu_seconds(stack), around_cpu_seconds(stack)
        took, job = train_through_service(stack, user, body, interval)
        out.service_cpu.append(pool_cpu_seconds(stack) - cpu_before)
        out.around_cpu.append(around_cpu_seconds(stack) - around_before)
        out.service.append(took)
        out.waits.append(epoch(job["started_at"]) - epoch(job["created_at"]))
        log(f"training {i + 1}/{repeats}: service {seconds(took)}")
        result = run_json_script("bench.bare_train", str(parquet), str(cfg.train_rounds))
        out.bare.append(result["seconds"])
        out.bare_cpu.append(result["cpu_seconds"])
        out.bare_rss_kib.append(result["peak_rss_kib"])
        log(f"training {i + 1}/{repeats}: bare {seconds(result['seconds'])}")
    if naive_repeats:
        csv = stack.dir / "train.csv"
        pv.write_csv(pq.read_table(parquet), csv)
        for _ in range(naive_repeats):
            result = run_json_script("bench.naive_train", str(csv), str(cfg.train_rounds))
            out.naive.append(result["seconds"])
            log(f"training: naive {seconds(result['seconds'])}")
        csv.unlink()
    bench.shared[NAME] = out
    return out


def run(bench: Bench) -> list[Row]:
    cfg = bench.config
    out = measure(bench, cfg.train_repeats, cfg.naive_repeats)
    service, bare = Sample.of(out.service), Sample.of(out.bare)
    service_cpu, bare_cpu = Sample.of(out.service_cpu), Sample.of(out.bare_cpu)
    size = f"{cfg.train_rows:,} rows × 30 features, {cfg.train_rounds} rounds"
    rows = [
        Row(
            NAME,
            "service vs bare xgboost.train",
            describe_time(service),
            describe_time(bare),
            service.p50 / bare.p50,
            Target("<=", 1.05),
            f"{size}; submit→claim p50 {seconds(Sample.of(out.waits).p50)}",
        ),
        Row(
            NAME,
            "CPU time: worker vs bare script",
            describe_time(service_cpu),
            describe_time(bare_cpu),
            service_cpu.p50 / bare_cpu.p50,
            None,
            "CPU seconds of the pool process that trained; the API, the worker's main process "
            f"and PostgreSQL used {Sample.of(out.around_cpu).p50:.1f} s more meanwhile",
        ),
    ]
    naive_measure = "service vs naive CSV + one-hot pipeline"
    if not out.naive:
        return [*rows, Row(NAME, naive_measure, note="skipped: naive_repeats=0")]
    naive = Sample.of(out.naive)
    return [
        *rows,
        Row(
            NAME,
            naive_measure,
            describe_time(service),
            describe_time(naive),
            service.p50 / naive.p50,
            None,
            "below 1: the service beats the naive design",
        ),
    ]
