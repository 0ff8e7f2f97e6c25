"""Training from batches (XGBoost external memory), for data larger than a worker's memory.

The data comes from `batches`, a callable that starts a fresh pass over the rows (as pandas
frames, in a fixed order) each time it is called; `ml/` never opens files itself.

* A first pass collects the target's classes and every categorical feature's levels, and keeps
  a bounded sample on which the feature screening runs (`ml.prepare.select_features`).
* The split is per row and needs no pass of its own: a deterministic hash of the row's position
  sends about `test_size` of the rows to validation. The validation set is bounded: the first
  `validation_cap` such rows are held in memory, later ones train (counted in the result).
* Training runs on `xgb.ExtMemQuantileDMatrix` over an `xgb.DataIter` that re-reads the
  batches: only one batch of raw rows is in memory at a time; XGBoost's quantised pages live
  in its cache files under `cache_prefix` (on CPU: on disk, about a third of the raw float64
  size), and what grows with the rows is XGBoost's own per-row state while it trains
  (gradients, predictions, row partitions: about 50-60 bytes a row, whatever the columns).

Role columns (weights, ranking groups, survival events) are not supported here yet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from xgenerator.errors import InvalidInput, TrainingFailed
from xgenerator.ml.boosting import boost
from xgenerator.ml.evaluation import Validation, validation_metrics
from xgenerator.ml.features import Feature, category_str, to_model_frame
from xgenerator.ml.labels import LabelEncoding
from xgenerator.ml.prepare import MAX_CLASSES, _numeric_target, select_features
from xgenerator.ml.train import (
    TrainHooks,
    TrainResult,
    TrainSpec,
    _best_iteration,
    _check_spec,
    _final_params,
    _Recorder,
    training_callbacks,
    trim_xgboost_error,
    validation_predictions,
)

Batches = Callable[[], Iterator[pd.DataFrame]]
VALIDATION_CAP = 100_000
SAMPLE_ROWS = 100_000
_BUCKETS = 1 << 20


def is_validation(positions: np.ndarray[Any, Any], test_size: float, seed: int) -> Any:
    """Whether each row position falls in validation: a splitmix64 hash of (position, seed),
    the same on every pass, whatever the batch boundaries."""
    with np.errstate(over="ignore"):
        z = positions.astype(np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(_BUCKETS)) < np.uint64(int(test_size * _BUCKETS))


@dataclass
class ExternalResult:
    """The trained model, and the sample of rows with a target (for the SHAP summary)."""

    result: TrainResult
    sample: pd.DataFrame


@dataclass
class _Scan:
    """What the first pass learns: a sample of rows with a target, levels, classes, counts."""

    sample: pd.DataFrame
    levels: dict[str, set[str]]
    classes: list[Any]
    rows: int
    missing_target: int


def _is_text(column: pd.Series[Any]) -> bool:
    return column.dtype == object or isinstance(column.dtype, pd.CategoricalDtype | pd.StringDtype)


def _scan(batches: Batches, spec: TrainSpec) -> _Scan:
    parts: list[pd.DataFrame] = []
    kept = 0
    levels: dict[str, set[str]] = {}
    classes: dict[Any, None] = {}
    rows = missing = 0
    for batch in batches():
        rows += len(batch)
        labelled = batch[batch[spec.target].notna()]
        missing += len(batch) - len(labelled)
        if kept < SAMPLE_ROWS:
            parts.append(labelled.iloc[: SAMPLE_ROWS - kept].copy())  # not a view of the batch
            kept += len(parts[-1])
        for name in spec.features:
            if _is_text(labelled[name]):
                found = levels.setdefault(name, set())
                found.update(category_str(v) for v in pd.unique(labelled[name].dropna()))
        if spec.task_type == "classification":
            classes.update(dict.fromkeys(pd.unique(labelled[spec.target])))
    sample = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return _Scan(sample, levels, list(classes), rows, missing)


def _encoding(scan: _Scan, spec: TrainSpec) -> tuple[list[Feature], Any, list[Any]]:
    """Features screened on the sample, with every level seen in the pass; the labels."""
    if len(scan.sample) < 2:
        raise TrainingFailed("TooFewRows", "at least 2 rows with a target are needed")
    try:
        features, excluded = select_features(scan.sample[list(spec.features)], spec)
    except InvalidInput as exc:
        raise TrainingFailed("InvalidData", exc.message, exc.details) from exc
    features = [
        replace(f, categories=sorted(scan.levels.get(f.name, set()) | set(f.categories or [])))
        if f.kind == "categorical"
        else f
        for f in features
    ]
    labels = None
    if spec.task_type == "classification":
        labels = LabelEncoding.fit(pd.Series(scan.classes, dtype=object))
        if len(labels.classes) < 2:
            raise TrainingFailed(
                "SingleClass", "the target has a single class", {"classes": labels.classes}
            )
        if len(labels.classes) > MAX_CLASSES:
            raise TrainingFailed(
                "TooManyClasses", f"the target has more than {MAX_CLASSES} classes"
            )
    return features, labels, excluded


class _Rows:
    """Turns raw batches into (model frame, target) of one side of the split."""

    def __init__(
        self, spec: TrainSpec, features: list[Feature], labels: LabelEncoding | None, cap: int
    ) -> None:
        self.spec = spec
        self.features = features
        self.labels = labels
        self.cap = cap

    def split(self, batches: Batches) -> Iterator[tuple[pd.DataFrame, Any, Any]]:
        """(batch with a target, validation mask, training mask), the same on every pass."""
        offset = validated = 0
        for batch in batches():
            positions = np.arange(offset, offset + len(batch), dtype=np.uint64)
            offset += len(batch)
            labelled = batch[self.spec.target].notna().to_numpy()
            val = is_validation(positions, self.spec.test_size, self.spec.seed) & labelled
            room = max(self.cap - validated, 0)
            if val.sum() > room:  # past the cap, validation rows train
                val[np.flatnonzero(val)[room:]] = False
            validated += int(val.sum())
            yield batch, val, labelled & ~val

    def encode(self, batch: pd.DataFrame) -> tuple[pd.DataFrame, Any]:
        try:
            frame = to_model_frame(batch, self.features)
            if self.labels is not None:
                return frame, self.labels.encode(batch[self.spec.target])
            return frame, _numeric_target(batch[self.spec.target])
        except InvalidInput as exc:
            raise TrainingFailed("InvalidData", exc.message, exc.details) from exc


class _TrainIter(xgb.DataIter):
    """The training rows, batch after batch; XGBoost calls reset() before each pass."""

    def __init__(self, rows: _Rows, batches: Batches, cache_prefix: str) -> None:
        super().__init__(cache_prefix=cache_prefix)
        self._rows = rows
        self._batches = batches
        self._it: Iterator[tuple[pd.DataFrame, Any, Any]] | None = None
        self.train_rows = 0
        self.error: BaseException | None = None

    def reset(self) -> None:
        self._it = self._rows.split(self._batches)
        self.train_rows = 0

    def next(self, input_data: Callable[..., None]) -> bool:
        if self._it is None:
            self.reset()
        assert self._it is not None  # noqa: S101 - set just above
        try:
            for batch, _val, train in self._it:
                if train.any():
                    frame, target = self._rows.encode(batch[train])
                    self.train_rows += len(frame)
                    input_data(data=frame, label=target)
                    return True
        except BaseException as exc:  # XGBoost would turn it into its own error
            self.error = exc
            raise
        return False


def train_external(
    batches: Batches,
    spec: TrainSpec,
    hooks: TrainHooks | None = None,
    *,
    cache_prefix: str,
    validation_cap: int = VALIDATION_CAP,
    resume: tuple[xgb.Booster, int, list[dict[str, Any]] | None] | None = None,
) -> ExternalResult:
    """Train on batches; `resume` is this job's checkpoint (booster, rounds done, and the
    history up to it)."""
    if spec.weight_column or spec.group_column or spec.event_column:
        raise InvalidInput("external memory does not support weight, group or event columns")
    if spec.task_type not in ("classification", "regression"):
        raise InvalidInput("external memory trains classification and regression only")
    user_params = _check_spec(spec)
    scan = _scan(batches, spec)
    features, labels, excluded = _encoding(scan, spec)
    n_classes = len(labels.classes) if labels is not None else 0
    params = _final_params(spec, user_params, n_classes)
    params["tree_method"] = "hist"  # the only method external memory trains with
    rows = _Rows(spec, features, labels, validation_cap)

    val_frames, val_targets = [], []
    for batch, val, _train in rows.split(batches):
        if val.any():
            frame, target = rows.encode(batch[val])
            val_frames.append(frame)
            val_targets.append(target)
    if not val_frames:
        raise TrainingFailed("TooFewRows", "no row fell in the validation set")
    x_val = pd.concat(val_frames, ignore_index=True)
    y_val = np.concatenate(val_targets)

    rounds_done = min(resume[1], spec.num_boost_round) if resume else 0
    recorder = _Recorder(hooks, rounds_done, spec.num_boost_round, resume[0] if resume else None)
    callbacks = training_callbacks(
        recorder, spec, params, spec.num_boost_round - rounds_done, resume[2] if resume else None
    )
    iterator = _TrainIter(rows, batches, cache_prefix)
    try:
        nthread = recorder.threads()
        threads = -1 if nthread is None else nthread
        max_bin = int(params.get("max_bin", 256))  # type: ignore[call-overload]
        dtrain = xgb.ExtMemQuantileDMatrix(
            iterator, max_bin=max_bin, enable_categorical=True, nthread=threads
        )
        dval = xgb.DMatrix(x_val, label=y_val, enable_categorical=True, nthread=threads)
        del x_val  # dval holds the rows; a frame beside it would double them while training
        evals = recorder.schedule(spec, dtrain, dval)
        booster = boost(
            params if nthread is None else {**params, "nthread": nthread},
            dtrain,
            spec.num_boost_round - rounds_done,
            evals=evals,
            callbacks=callbacks,
            xgb_model=resume[0] if resume else None,
        )
        proba = validation_predictions(booster, recorder, dval)
    except xgb.core.XGBoostError as exc:
        if iterator.error is not None:
            raise iterator.error from exc
        if exc is recorder.hook_error:
            raise
        raise TrainingFailed("XGBoostError", trim_xgboost_error(exc)) from exc
    validation = Validation(target=y_val, predictions=proba, weight=None, group=None, event=None)
    metrics = validation_metrics(spec.task_type, params, n_classes, spec.rank_k, validation)
    result = TrainResult(
        booster=booster,
        features=features,
        labels=labels,
        metrics=metrics,
        history=recorder.history,
        best_iteration=_best_iteration(booster),
        num_boost_round=booster.num_boosted_rounds(),
        train_rows=dtrain.num_row(),
        validation_rows=len(y_val),
        params=params,
        excluded=excluded,
        dropped_rows={"missing_target": scan.missing_target},
    )
    return ExternalResult(result, scan.sample)
