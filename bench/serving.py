"""9. Serving: what coding a prediction request's JSON rows costs, before and after the
DataFrame-free fast path (issue 18), for 1 and 1,000 rows of the prediction benchmark's data.

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

from bench.common import Bench, log
from bench.data import TARGET, classification_frame
from bench.prediction import records
from bench.report import Row, Sample, Target, describe_time, seconds
from xgenerator.ml import bundle as bundles
from xgenerator.ml.bundle import ModelBundle
from xgenerator.ml.predict import predict, predict_records, rows_to_frame
from xgenerator.ml.train import TrainSpec, train

NAME = "serving"
SIZES = (1, 1_000)


def expected(quick: bool) -> list[str]:
    return [f"code + predict {size:,} row(s): fast path vs frame path" for size in SIZES]


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
    return rows


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
