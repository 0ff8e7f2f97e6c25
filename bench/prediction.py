"""5. Prediction: online `POST /models/{id}/predict` with 1 and 1,000 rows vs. in-process
`Booster.inplace_predict` on the same rows (and vs. a bare FastAPI route around it); batch
prediction (`POST /models/{id}/predict-batch`) rows/s and peak memory vs. a bare script that
predicts the whole frame at once.

The model is trained through the service with the training benchmark's parameters; the
baselines use its downloaded booster, so every side computes the same trees.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import numpy as np
import pandas as pd
import xgboost as xgb

from bench.common import Bench, Stack, headers, log, run_json_script
from bench.data import TARGET, classification_frame
from bench.procfs import child_pids, peak_rss_kib
from bench.report import Row, Sample, Target, describe_time, megabytes, seconds
from bench.training import epoch, seed_dataset, train_body, train_through_service, wait_job

NAME = "prediction"
BATCH_ROUTE = "/models/{model_id}/predict-batch"
SIZES = (1, 1_000)


def expected(quick: bool) -> list[str]:
    rows = []
    for size in SIZES:
        rows += [
            f"predict {size:,} row(s) vs inplace_predict",
            f"predict {size:,} row(s) vs bare FastAPI + inplace_predict",
        ]
    return [
        *rows,
        "batch rows/s vs bare whole-frame script",
        "batch worker peak RSS vs bare whole-frame script",
    ]


def model_frame(frame: pd.DataFrame, categories: dict[str, list[str]]) -> pd.DataFrame:
    """The frame XGBoost sees: float32 numbers, categoricals coded with the model's levels."""
    out = frame.copy()
    for name in out.columns:
        if name in categories:
            out[name] = pd.Categorical(out[name], categories=categories[name])
        else:
            out[name] = out[name].astype(np.float32)
    return out


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    rows = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    return [{str(k): v for k, v in row.items()} for row in rows]


def run(bench: Bench) -> list[Row]:
    cfg = bench.config
    stack = bench.stack("postgresql", workers=1)
    user = stack.create_user()
    auth = headers(user)
    frame = classification_frame(cfg.predict_model_rows, seed=1)
    dataset_id, parquet = seed_dataset(stack, user, frame, "predict")
    log(
        f"prediction: training a {cfg.predict_rounds}-round model on "
        f"{cfg.predict_model_rows:,} rows"
    )
    _, job = train_through_service(stack, user, train_body(dataset_id, cfg.predict_rounds), 0.1)
    model_id = job["model_id"]
    detail = stack.http.get(f"/models/{model_id}", headers=auth).json()
    categories = {
        f["name"]: f["categories"] for f in detail["features"] if f["kind"] == "categorical"
    }
    model_path, categories_path = bench.model_files
    model_path.write_bytes(stack.http.get(f"/models/{model_id}/download", headers=auth).content)
    categories_path.write_text(json.dumps(categories))
    booster = xgb.Booster(model_file=str(model_path))
    bare = bench.bare_api()

    features = frame.drop(columns=[TARGET])
    rows: list[Row] = []
    for size in SIZES:
        sample = features.iloc[:size]
        body = {"rows": records(sample)}
        x = model_frame(sample, categories)
        service, http, inplace = _online(
            stack, model_id, auth, bare.url, body, booster, x, cfg.predict_requests
        )
        s, h, i = Sample.of(service), Sample.of(http), Sample.of(inplace)
        log(
            f"prediction: {size} row(s) service {seconds(s.p50)}, bare HTTP {seconds(h.p50)}, "
            f"inplace {seconds(i.p50)}"
        )
        label = f"predict {size:,} row(s)"
        rows += [
            Row(
                NAME,
                f"{label} vs inplace_predict",
                describe_time(s),
                describe_time(i),
                s.p50 / i.p50,
                None,
                "HTTP + JSON against a function call",
            ),
            Row(
                NAME,
                f"{label} vs bare FastAPI + inplace_predict",
                describe_time(s),
                describe_time(h),
                s.p50 / h.p50,
                None,
                "same uvicorn settings",
            ),
        ]
    rows += _batch(bench, stack, user, model_id, parquet, categories)
    return rows


def _online(
    stack: Stack,
    model_id: str,
    auth: dict[str, str],
    bare_url: str,
    body: dict[str, Any],
    booster: xgb.Booster,
    x: pd.DataFrame,
    repeats: int,
) -> tuple[list[float], list[float], list[float]]:
    """Interleaved: one service request, one bare request, one in-process call, and again."""
    service: list[float] = []
    http: list[float] = []
    inplace: list[float] = []
    path = f"/models/{model_id}/predict"
    with httpx.Client(base_url=bare_url, timeout=60) as bare:
        for i in range(repeats + 5):  # the first five warm up caches and connections
            started = time.perf_counter()
            response = stack.http.post(path, headers=auth, json=body)
            took_service = time.perf_counter() - started
            if response.status_code != 200:
                raise RuntimeError(f"predict answered {response.status_code}: {response.text}")
            started = time.perf_counter()
            bare.post("/predict", json=body).raise_for_status()
            took_http = time.perf_counter() - started
            started = time.perf_counter()
            booster.inplace_predict(x)
            took_inplace = time.perf_counter() - started
            if i >= 5:
                service.append(took_service)
                http.append(took_http)
                inplace.append(took_inplace)
    return service, http, inplace


def _batch(
    bench: Bench,
    stack: Stack,
    user: dict[str, str],
    model_id: str,
    parquet: Any,
    categories: dict[str, list[str]],
) -> list[Row]:
    measures = expected(bench.config.quick)[-2:]
    spec = stack.http.get("/openapi.json").json()
    if BATCH_ROUTE not in spec.get("paths", {}):
        note = "skipped: no POST /models/{id}/predict-batch route in this build"
        return [Row(NAME, measure, note=note) for measure in measures]
    rows = bench.config.train_rows
    log(f"prediction: batch over {rows:,} rows")
    dataset_id, source = seed_dataset(stack, user, classification_frame(rows, seed=2), "batch")
    # A fresh worker: its pool processes' peak RSS is then this job's, not the training's.
    stack.stop_workers()
    stack.start_workers(1)
    children = [pid for worker in stack.workers for pid in child_pids(worker.pid)]
    sent = time.time()
    response = stack.http.post(
        f"/models/{model_id}/predict-batch", headers=headers(user), json={"dataset_id": dataset_id}
    )
    if response.status_code != 202:
        raise RuntimeError(f"predict-batch answered {response.status_code}: {response.text}")
    job = wait_job(stack, user, response.json()["job_id"], timeout=1800, interval=0.1)
    if job["status"] != "succeeded":
        raise RuntimeError(f"batch prediction ended {job['status']}: {job.get('error')}")
    took = epoch(job["completed_at"]) - sent
    worker_peak = max(peak_rss_kib(pid) for pid in children)
    model_path, categories_path = bench.model_files
    bare = run_json_script(
        "bench.bare_predict",
        str(source),
        str(model_path),
        str(categories_path),
        str(bench.workdir / "bare-predictions.parquet"),
    )
    service_rate, bare_rate = rows / took, rows / bare["seconds"]
    return [
        Row(
            NAME,
            measures[0],
            f"{service_rate:,.0f} rows/s",
            f"{bare_rate:,.0f} rows/s",
            service_rate / bare_rate,
            None,
            f"{rows:,} rows, submit → succeeded; both write rows + predictions to Parquet",
        ),
        Row(
            NAME,
            measures[1],
            megabytes(worker_peak),
            megabytes(bare["peak_rss_kib"]),
            worker_peak / bare["peak_rss_kib"],
            Target("<=", 1.0, "ours"),
            "the service streams chunks; the bare script holds the whole frame",
        ),
    ]
