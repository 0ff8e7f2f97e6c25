"""9. Serving: what coding a prediction request's JSON rows costs, before and after the
DataFrame-free fast path (issue 18), for 1 and 1,000 rows of the prediction benchmark's data;
and, before and after each, the other per-request costs of the predict route: reading the JSON
body (pydantic's validation of every value vs orjson and a check of the rows), encoding the
answer (FastAPI's response model vs orjson), and XGBoost's threads for one row (its default,
every core, vs the one thread the API now predicts on).

In-process, so that the figure is the model work of one request and nothing else: the
"before" side is the frame path every request took (`rows_to_frame` -> `to_model_frame` ->
`inplace_predict` on a DataFrame), the "after" side `predict_records` (rows coded straight into
a float32 array). Both give the same answer (tests/ml/test_ml_fastpath.py). HTTP figures against
a bare FastAPI route are the prediction benchmark's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import orjson
import pandas as pd
from pydantic import TypeAdapter

from bench.common import Bench, log
from bench.data import TARGET, classification_frame
from bench.prediction import records
from bench.report import Row, Sample, Target, describe_time, seconds
from xgenerator.api.routes.predict import _parse_json
from xgenerator.api.schemas.models import PredictRequest, PredictResponse
from xgenerator.ml import bundle as bundles
from xgenerator.ml.bundle import ModelBundle
from xgenerator.ml.fastpath import records_to_array
from xgenerator.ml.predict import (
    ONLINE_THREADS,
    predict,
    predict_records,
    rows_to_frame,
    use_threads,
)
from xgenerator.ml.train import TrainSpec, train

NAME = "serving"
SIZES = (1, 1_000)


def expected(quick: bool) -> list[str]:
    return [
        *(f"code + predict {size:,} row(s): fast path vs frame path" for size in SIZES),
        "parse a 1,000-row body: orjson + row check vs pydantic",
        "encode a 1,000-row answer: orjson vs FastAPI's response model",
        "inplace_predict 1 row: one thread vs XGBoost's default",
    ]


def run(bench: Bench) -> list[Row]:
    cfg = bench.config
    frame = classification_frame(cfg.predict_model_rows, seed=1)
    names = [c for c in frame.columns if c != TARGET]
    log(f"serving: training a {cfg.predict_rounds}-round model on {len(frame):,} rows")
    spec = TrainSpec("classification", TARGET, names, {"max_depth": 6}, cfg.predict_rounds)
    result = train(frame, spec)
    trained = ModelBundle(result.booster, "classification", TARGET, result.features, result.labels)
    bundle = bundles.loads(bundles.dumps(trained))  # as the service loads it: from its file
    rows: list[Row] = []
    for size in SIZES:
        body = json.loads(json.dumps(records(frame[names].iloc[:size])))  # as parsed from HTTP

        def before(body: list[dict[str, Any]] = body) -> object:
            return predict(bundle, rows_to_frame(body, names))

        def after(body: list[dict[str, Any]] = body) -> object:
            return predict_records(bundle, body)

        slow, fast = _interleaved(before, after, cfg.predict_requests)
        s, f = Sample.of(slow), Sample.of(fast)
        log(f"serving: {size} row(s) frame path {seconds(s.p50)}, fast path {seconds(f.p50)}")
        rows.append(
            Row(
                NAME,
                expected(cfg.quick)[SIZES.index(size)],
                describe_time(f),
                describe_time(s),
                f.p50 / s.p50,
                Target("<=", 1.0, "this benchmark"),
                "same answers; in-process, no HTTP",
            )
        )
    rows += _route_costs(cfg.quick, bundle, frame[names], cfg.predict_requests)
    return rows


def _route_costs(
    quick: bool, bundle: ModelBundle, features: pd.DataFrame, repeats: int
) -> list[Row]:
    """Before and after of the predict route's other per-request costs, in-process."""
    measures = expected(quick)[len(SIZES) :]
    body = json.dumps({"rows": records(features.iloc[:1_000])}).encode()
    answer = {
        "model_id": "m" * 32,
        "output": None,
        **predict_records(bundle, json.loads(body)["rows"]).to_dict(),
        "ignored_columns": [],
        "prediction_ids": None,
        "contributions": None,
    }
    encoder = TypeAdapter(PredictResponse)
    row = records_to_array(records(features.iloc[:1]), bundle.features)  # coded as the API does
    threads: dict[str, int | None] = {"before": None, "after": ONLINE_THREADS}

    def predict_with(side: str) -> Callable[[], object]:
        def call() -> object:
            return bundle.booster.inplace_predict(row)

        use_threads(threads[side])  # outside the timing: set once per side, as a thread does
        return call

    pairs: list[tuple[Callable[[], object], Callable[[], object], str]] = [
        (
            lambda: PredictRequest.model_validate_json(body),
            lambda: _parse_json(body),
            "same request object; 1,000 rows × 30 values",
        ),
        (
            lambda: encoder.dump_json(PredictResponse(**answer)),
            lambda: orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY),
            "labels + probabilities of 1,000 rows; same JSON",
        ),
    ]
    rows = []
    for measure, (before, after, note) in zip(measures, pairs, strict=False):
        first, second = before(), after()
        if isinstance(first, bytes):  # the encoders: the same document
            assert isinstance(second, bytes) and orjson.loads(first) == orjson.loads(second)
        else:
            assert first == second, measure
        slow, fast = _interleaved(before, after, repeats)
        rows.append(_row(measure, slow, fast, note))
    slow, fast = _interleaved_threads(predict_with, repeats * 5)
    s, f = Sample.of(slow), Sample.of(fast)
    log(f"serving: {measures[-1]}: p95 {seconds(f.p95)} vs {seconds(s.p95)}")
    rows.append(
        Row(
            NAME,
            measures[-1],
            describe_time(f),
            describe_time(s),
            f.p95 / s.p95,
            Target("<=", 1.0, "this benchmark"),
            "ratio of p95: waiting for OpenMP's team shows in the tail; the same booster",
        )
    )
    use_threads(None)
    return rows


def _row(measure: str, slow: list[float], fast: list[float], note: str) -> Row:
    s, f = Sample.of(slow), Sample.of(fast)
    log(f"serving: {measure}: {seconds(f.p50)} vs {seconds(s.p50)}")
    return Row(
        NAME,
        measure,
        describe_time(f),
        describe_time(s),
        f.p50 / s.p50,
        Target("<=", 1.0, "this benchmark"),
        note,
    )


def _interleaved_threads(
    call_for: Callable[[str], Callable[[], object]], repeats: int
) -> tuple[list[float], list[float]]:
    """One call on XGBoost's default threads, one on a single thread, alternating."""
    slow: list[float] = []
    fast: list[float] = []
    for i in range(repeats + 5):
        for side, out in (("before", slow), ("after", fast)):
            call = call_for(side)
            started = time.perf_counter()
            call()
            if i >= 5:
                out.append(time.perf_counter() - started)
    return slow, fast


def _interleaved(
    before: Callable[[], object], after: Callable[[], object], repeats: int
) -> tuple[list[float], list[float]]:
    """One call of each, alternating, after five warm-up rounds."""
    slow: list[float] = []
    fast: list[float] = []
    for i in range(repeats + 5):
        started = time.perf_counter()
        before()
        took_slow = time.perf_counter() - started
        started = time.perf_counter()
        after()
        took_fast = time.perf_counter() - started
        if i >= 5:
            slow.append(took_slow)
            fast.append(took_fast)
    return slow, fast
