"""K-fold cross-validation: every fold trained round by round in lockstep, metrics aggregated.

The folds are trained by `xgboost.cv` itself, given explicit (train, validation) index pairs:
the numbers are XGBoost's own, and a callback sees the fold-aggregated metrics (mean, std) of
every round as it ends, which is what progress and cancellation need. The features are coded
exactly as for training (`ml.prepare`), so a refit model is the model a training job makes.

Folds are stratified by class for classification (scikit-learn's StratifiedKFold, shuffled
with the request seed), plain shuffled KFold for regression, and GroupKFold when the caller
passes group labels (ranking: a query's rows are never split across folds). For ranking, the
fold matrices will also need their query ids, which `xgboost.cv`'s own slicing refuses to
carry (`DMatrix.slice` without `allow_groups`): that objective needs its fold matrices built
here, per fold, when ranking lands.

History keys follow the training history's: ``train-<metric>-mean``, ``train-<metric>-std``,
``validation-<metric>-mean`` and ``validation-<metric>-std`` (XGBoost's own `cv` says ``test``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold

from xgenerator.errors import InvalidInput, TrainingFailed
from xgenerator.ml.boosting import boost
from xgenerator.ml.features import Feature
from xgenerator.ml.labels import LabelEncoding
from xgenerator.ml.prepare import prepare
from xgenerator.ml.selection import Excluded
from xgenerator.ml.train import (
    TrainHooks,
    TrainSpec,
    _check_spec,
    _final_params,
    trim_xgboost_error,
)

MIN_FOLDS, MAX_FOLDS = 2, 20
# XGBoost's EarlyStopping maximizes these (and their "@k" forms); every other metric is a loss.
_MAXIMIZED = ("auc", "aucpr", "pre", "map", "ndcg")

FoldIndices = list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]]


@dataclass
class CVResult:
    """Per-round fold means and standard deviations; `best_round` is 1-based."""

    history: list[dict[str, float]]
    best_round: int
    best_metric: str
    maximize: bool
    folds: int
    rows: int
    params: dict[str, object]
    features: list[Feature]
    labels: LabelEncoding | None
    excluded: list[Excluded] = field(default_factory=list)
    dropped_rows: dict[str, int] = field(default_factory=dict)
    # every row with a target, coded: what `refit` trains on
    matrix: xgb.DMatrix | None = field(default=None, repr=False)

    def best(self) -> dict[str, float]:
        """The history entry of the best round."""
        return self.history[self.best_round - 1]


def is_maximized(metric: str) -> bool:
    """Whether a larger value of an XGBoost eval metric is better (as its early stopping)."""
    name = metric.split("@", 1)[0]
    return name in _MAXIMIZED


def fold_indices(
    n_rows: int,
    folds: int,
    seed: int,
    classes: np.ndarray[Any, Any] | None = None,
    groups: np.ndarray[Any, Any] | None = None,
) -> FoldIndices:
    """(train, validation) row indices per fold: by group, else stratified, else shuffled."""
    if not MIN_FOLDS <= folds <= MAX_FOLDS:
        raise InvalidInput(f"folds must be in [{MIN_FOLDS}, {MAX_FOLDS}]", {"folds": folds})
    if n_rows < folds:
        raise TrainingFailed(
            "TooFewRows", f"{folds} folds need at least {folds} rows", {"rows": n_rows}
        )
    x = np.zeros((n_rows, 1))
    if groups is not None:
        distinct = len(pd.unique(groups))
        if distinct < folds:
            raise TrainingFailed(
                "TooFewGroups", f"{folds} folds need at least {folds} groups", {"groups": distinct}
            )
        return list(GroupKFold(n_splits=folds).split(x, groups=groups))
    if classes is not None:
        smallest = int(np.bincount(classes.astype(np.int64)).min())
        if smallest < folds:
            raise TrainingFailed(
                "TooFewRows",
                f"stratified {folds}-fold cross-validation needs {folds} rows of every class",
                {"smallest_class_rows": smallest},
            )
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        return list(splitter.split(x, classes))
    return list(KFold(n_splits=folds, shuffle=True, random_state=seed).split(x))


def cross_validate(
    df: pd.DataFrame,
    spec: TrainSpec,
    folds: int,
    hooks: TrainHooks | None = None,
    *,
    groups: np.ndarray[Any, Any] | None = None,
) -> CVResult:
    """Cross-validate `spec` on `df` over `folds` folds (see the module docstring).

    `groups` (one label per row of `df`) switches to GroupKFold. `spec.early_stopping_rounds`
    stops all folds together when the mean validation metric stops improving; the history
    then ends at the best round, as `xgboost.cv`'s does.
    """
    user_params = _check_spec(spec)
    data = prepare(df, spec, None)
    n_classes = len(data.labels.classes) if data.labels is not None else 0
    params = _final_params(spec, user_params, n_classes)
    if groups is not None:
        groups = np.asarray(groups)[df[spec.target].notna().to_numpy()]
    seed = _int(params.get("seed", spec.seed))  # the user's xgb_params seed, if any
    indices = fold_indices(len(data.frame), folds, seed, data.target if n_classes else None, groups)
    metric = _last_metric(params)
    recorder = _CVRecorder(hooks, spec.num_boost_round)
    try:
        dall = xgb.DMatrix(
            data.frame,
            label=data.target,
            enable_categorical=True,
            nthread=_int(params.get("nthread", -1)),
        )
        results = xgb.cv(
            params,
            dall,
            num_boost_round=spec.num_boost_round,
            folds=indices,
            early_stopping_rounds=spec.early_stopping_rounds,
            maximize=is_maximized(metric),
            callbacks=[recorder],
            seed=seed,
            as_pandas=False,
            verbose_eval=False,
        )
    except xgb.core.XGBoostError as exc:
        if exc is recorder.hook_error:
            raise
        raise TrainingFailed("XGBoostError", trim_xgboost_error(exc)) from exc
    # with early stopping, XGBoost cuts its results at the best round: so does the history
    rounds = len(cast(dict[str, list[float]], results)[f"test-{metric}-mean"])
    history = recorder.history[:rounds]
    key = f"validation-{metric}-mean"
    values = [h[key] for h in history]
    maximize = is_maximized(metric)
    best = int(np.argmax(values) if maximize else np.argmin(values)) + 1
    return CVResult(
        history=history,
        best_round=best,
        best_metric=key,
        maximize=maximize,
        folds=len(indices),
        rows=len(data.frame),
        params=params,
        features=data.features,
        labels=data.labels,
        excluded=data.excluded,
        dropped_rows=data.dropped_rows,
        matrix=dall,
    )


def refit(result: CVResult, on_round: Callable[[int, int], None] | None = None) -> xgb.Booster:
    """A model trained on every row with a target, for `result.best_round` rounds.

    `on_round(round, total)` is called after each round: where a cancel is noticed.
    """
    if result.matrix is None:
        raise ValueError("the cross-validation result holds no data to refit on")
    params = result.params
    callbacks: list[xgb.callback.TrainingCallback] = []
    if on_round is not None:
        callbacks.append(_RefitRecorder(on_round, result.best_round))
    try:
        booster = boost(params, result.matrix, result.best_round, callbacks=callbacks)
    except xgb.core.XGBoostError as exc:
        raise TrainingFailed("XGBoostError", trim_xgboost_error(exc)) from exc
    if params.get("device", "cpu") != "cpu":
        booster.set_param({"device": "cpu"})  # predictions run on host frames
    return booster


def _last_metric(params: dict[str, object]) -> str:
    """The metric XGBoost's early stopping reads: the last of `eval_metric`."""
    metric = params.get("eval_metric")
    if isinstance(metric, list | tuple):
        return str(metric[-1])
    return str(metric)


def _int(value: object) -> int:
    return int(value) if isinstance(value, int | float | str) else -1


class _CVRecorder(xgb.callback.TrainingCallback):
    """Turns the fold-aggregated evals log of each round into a history entry and a hook call.

    In `xgboost.cv` the log holds (mean, std) pairs per round; data names are ``train`` and
    ``test``, renamed ``validation`` here to match the training history.
    """

    def __init__(self, hooks: TrainHooks | None, total: int) -> None:
        super().__init__()
        self.hooks = hooks
        self.total = total
        self.history: list[dict[str, float]] = []
        self.hook_error: BaseException | None = None

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        round_ = epoch + 1
        latest: dict[str, float] = {}
        for data, by_metric in evals_log.items():
            name = "validation" if data == "test" else data
            for metric, values in by_metric.items():
                mean, std = values[-1]
                latest[f"{name}-{metric}-mean"] = float(mean)
                latest[f"{name}-{metric}-std"] = float(std)
        self.history.append({"round": round_, **latest})
        if self.hooks is not None:
            try:
                self.hooks.on_round(round_, self.total, latest)
            except BaseException as exc:
                self.hook_error = exc
                raise
        return False


class _RefitRecorder(xgb.callback.TrainingCallback):
    def __init__(self, on_round: Callable[[int, int], None], total: int) -> None:
        super().__init__()
        self.on_round = on_round
        self.total = total

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        self.on_round(epoch + 1, self.total)
        return False
