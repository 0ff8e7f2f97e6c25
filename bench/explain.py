"""7. Explanations and cross-validation, in process (no service around them):

* the cost of SHAP contributions (`ml.explain.explain`, what `"explain": true` adds to a
  prediction) per row against a plain prediction (`ml.predict.predict_scores`) of the same rows
  by the same model, for one row and for 1,000;
* the SHAP summary computed when a model is trained, against that training's own time;
* cross-validation (`ml.cv.cross_validate`: coding the frame, building the folds, XGBoost's
  `cv` with a per-round callback) against a bare `xgboost.cv` on an already coded DMatrix
  with the same folds and parameters.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

import xgboost as xgb

from bench.common import Bench, log
from bench.data import TARGET, classification_frame
from bench.report import Row, Sample, Target, describe_time
from xgenerator.ml.bundle import ModelBundle
from xgenerator.ml.cv import cross_validate, fold_indices
from xgenerator.ml.explain import explain, shap_importance
from xgenerator.ml.predict import predict_scores
from xgenerator.ml.prepare import prepare
from xgenerator.ml.train import TrainSpec, train

NAME = "explain"
SIZES = (1, 1_000)
PARAMS: dict[str, object] = {"tree_method": "hist", "max_depth": 6, "nthread": 2}


def expected(quick: bool) -> list[str]:
    return [
        *(f"explain {n:,} row(s) vs plain prediction" for n in SIZES),
        "SHAP summary at training vs the training itself",
        "cross-validation vs bare xgboost.cv",
    ]


def timed(action: Callable[[], Any], repeats: int) -> Sample:
    values = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        values.append(time.perf_counter() - started)
    return Sample.of(values)


def spec(features: list[str], rounds: int) -> TrainSpec:
    return TrainSpec(
        task_type="classification",
        target=TARGET,
        features=features,
        params=dict(PARAMS),
        num_boost_round=rounds,
        features_forced=True,
    )


def run(bench: Bench) -> list[Row]:
    config = bench.config
    frame = classification_frame(config.explain_model_rows)
    features = [c for c in frame.columns if c != TARGET]
    log(f"{NAME}: training a {config.explain_rounds}-round model on {len(frame):,} rows")
    started = time.perf_counter()
    result = train(frame, spec(features, config.explain_rounds))
    train_seconds = time.perf_counter() - started
    bundle = ModelBundle(result.booster, "classification", TARGET, result.features, result.labels)
    rows: list[Row] = []
    for n in SIZES:
        batch = frame.drop(columns=[TARGET]).head(n)
        # alternate the two sides, so that a load change on a shared machine hits both
        plain: list[float] = []
        explained: list[float] = []
        for _ in range(config.explain_repeats):
            plain += timed(partial(predict_scores, bundle, batch), 1).values
            explained += timed(partial(explain, bundle, batch), 1).values
        ours, base = Sample.of(explained), Sample.of(plain)
        rows.append(
            Row(
                NAME,
                f"explain {n:,} row(s) vs plain prediction",
                describe_time(ours),
                describe_time(base),
                ours.p50 / base.p50,
                None,
                f"{ours.p50 / n * 1e6:,.0f} µs vs {base.p50 / n * 1e6:,.1f} µs per row; "
                f"{len(features)} features, {config.explain_rounds} rounds of depth 6",
            )
        )
    sampled: list[int] = []
    summary = timed(
        lambda: sampled.append(shap_importance(bundle.booster, bundle.features, frame)["rows"]),
        1,
    )
    rows.append(
        Row(
            NAME,
            "SHAP summary at training vs the training itself",
            describe_time(summary),
            describe_time(Sample.of([train_seconds])),
            summary.p50 / train_seconds,
            None,
            f"mean |contribution| over {sampled[0]:,} sampled rows; training "
            f"{len(frame):,} rows, {config.explain_rounds} rounds",
        )
    )
    rows.append(cv_row(bench))
    return rows


def cv_row(bench: Bench) -> Row:
    config = bench.config
    frame = classification_frame(config.cv_rows, seed=1)
    features = [c for c in frame.columns if c != TARGET]
    s = spec(features, config.cv_rounds)
    data = prepare(frame, s, None)
    folds = fold_indices(len(data.frame), config.cv_folds, s.seed, data.target)
    params = {**PARAMS, "objective": "binary:logistic", "eval_metric": "logloss", "seed": s.seed}
    log(f"{NAME}: {config.cv_folds}-fold cross-validation, {config.cv_rows:,} rows")

    def bare() -> None:
        dall = xgb.DMatrix(data.frame, label=data.target, enable_categorical=True)
        xgb.cv(params, dall, config.cv_rounds, folds=folds, as_pandas=False)

    ours_values: list[float] = []
    bare_values: list[float] = []
    for _ in range(config.cv_repeats):
        ours_values += timed(lambda: cross_validate(frame, s, config.cv_folds), 1).values
        bare_values += timed(bare, 1).values
    ours, base = Sample.of(ours_values), Sample.of(bare_values)
    return Row(
        NAME,
        "cross-validation vs bare xgboost.cv",
        describe_time(ours),
        describe_time(base),
        ours.p50 / base.p50,
        Target("<=", 1.1, "ours"),
        f"{config.cv_rows:,} rows × {len(features)} features, {config.cv_folds} folds, "
        f"{config.cv_rounds} rounds; ours includes coding the raw frame",
    )
