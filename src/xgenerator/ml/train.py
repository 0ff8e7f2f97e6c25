"""Training one XGBoost model from a DataFrame, with progress, checkpoints and continuation.

Errors come in two kinds. A bad *spec* (parameters, test_size, target among the features) is
InvalidInput: the API should have refused it at submission. A problem with the *data* is
TrainingFailed with an `error_type`: retrying the job would fail the same way. Exceptions
raised by the hooks (a cancellation, a lost lease) propagate unchanged.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
import xgboost as xgb

from xgenerator.errors import InvalidInput, TrainingFailed
from xgenerator.ml import cost, ranking, roles, survival
from xgenerator.ml.boosting import boost
from xgenerator.ml.constraints import to_positions
from xgenerator.ml.evaluation import Validation, validation_metrics
from xgenerator.ml.features import Feature
from xgenerator.ml.labels import LabelEncoding
from xgenerator.ml.metrics import Metrics
from xgenerator.ml.params import TaskType, validate_params, wants_gpu
from xgenerator.ml.prepare import prepare
from xgenerator.ml.resume import (
    ResumableEarlyStopping,
    RoundSeeds,
    checkpoint_cadence,
    samples,
)
from xgenerator.ml.reuse import MATRIX_PARAMS, Reuse, data_key
from xgenerator.ml.selection import Excluded
from xgenerator.ml.split import split_indices

MAX_ROUNDS = 100_000
# The training metric costs a pass over the training rows; the curve only needs a few points.
EVAL_TRAIN_EVERY = 10
# Without early stopping the validation metric is scored every k rounds (and on the last),
# k giving the live curve about this many points. Each score passes the validation rows
# through the trees added since the last one, and each pass also costs a fixed ~0.5 ms
# (XGBoost fills every row's feature vector again): on `diamonds` (54k rows, 200 rounds),
# scored every round 0.15 s, every 4th 0.09 s, every 10th 0.05 s, as much as predicting
# the validation rows once at the end, which the job needs anyway (`after_training`).
VALIDATION_POINTS = 20


@dataclass(frozen=True)
class TrainSpec:
    """What to train; `params` are user XGBoost parameters (validated again here)."""

    task_type: TaskType
    target: str
    features: list[str]
    params: dict[str, object] = field(default_factory=dict)
    num_boost_round: int = 100
    early_stopping_rounds: int | None = None
    test_size: float = 0.2
    seed: int = 42
    # the training-set metric every k rounds and on the last planned round; 0: never.
    eval_train_every: int = EVAL_TRAIN_EVERY
    # the validation metric every k rounds and on the last; None: see `validation_every`
    eval_every: int | None = None
    # True when the user named the features: then only all-missing ones are left out
    features_forced: bool = False
    # a text column with more distinct values is left out (unless forced); None: no bound
    max_category_levels: int | None = None
    # role columns (`ml.roles`): sample weight, query id (ranking), event (survival)
    weight_column: str | None = None
    group_column: str | None = None
    event_column: str | None = None
    # the cut-off of the ranking metrics ndcg@k and map@k
    rank_k: int = ranking.DEFAULT_K
    # checked again once the classes are known (the API checked with one); None: unbounded
    cost_budget: cost.Budget | None = None


class TrainHooks(Protocol):
    """The caller's view of training: progress, cancellation (by raising) and checkpoints."""

    # `checkpoint` is called after every round that is a multiple of it; 0: never. A resumed
    # training keeps the cadence of the checkpoint it resumes from (`checkpoint_cadence`).
    checkpoint_every: int

    def on_round(self, round: int, total: int, metrics: dict[str, float]) -> None: ...

    def checkpoint(self, booster: xgb.Booster, round: int) -> None:
        """The booster is live, so serialize it now or not at all (or skip this one)."""
        ...

    def threads(self) -> int | None:
        """OpenMP threads for what follows (None: the `nthread` parameter or XGBoost's
        default); asked before the matrices and before every round, so it may change."""
        ...


@dataclass(frozen=True)
class InitModel:
    """A model to continue boosting from.

    `rounds_done` counts the rounds of *this* job already in `booster`: 0 to retrain a parent
    model on new data (all `num_boost_round` rounds are added on top of the parent's), k to
    resume this job from its checkpoint after round k (only the remaining rounds are added).
    """

    booster: xgb.Booster
    features: list[Feature]
    labels: LabelEncoding | None
    rounds_done: int = 0
    excluded: list[Excluded] = field(default_factory=list)
    # this job's history up to the checkpoint (`rounds_done` entries): early stopping picks up
    # where it was (best score, rounds since the best) instead of starting over
    history: list[dict[str, Any]] | None = None


@dataclass
class TrainResult:
    """A trained model and what the job records about it.

    `history` covers only the rounds trained by this call (after a resume, the caller holds
    the earlier ones). `num_boost_round` counts every round in the model and `best_iteration`
    (0-based, set only with early stopping) indexes them, a parent's rounds included.
    """

    booster: xgb.Booster
    features: list[Feature]
    labels: LabelEncoding | None
    metrics: Metrics
    history: list[dict[str, float]]
    best_iteration: int | None
    num_boost_round: int
    train_rows: int
    validation_rows: int
    params: dict[str, object]
    excluded: list[Excluded] = field(default_factory=list)
    dropped_rows: dict[str, int] = field(default_factory=dict)


def train(
    df: pd.DataFrame,
    spec: TrainSpec,
    hooks: TrainHooks | None = None,
    *,
    init: InitModel | None = None,
    reuse: Reuse | None = None,
) -> TrainResult:
    """Train (or continue) a model on `df`; see the module docstring for the error contract.

    With `reuse` (made for this very `df`), the prepared data and matrices of an earlier
    training on it are used again where its spec agrees on what each step reads; a
    training that starts from a model prepares its own (the model's coding decides)."""
    user_params = _check_spec(spec)
    if reuse is None or init is not None or reuse.frame is not df:
        reuse = Reuse(df)  # this training's own: every step is built
    data = reuse.get("prepared", data_key(spec), lambda: prepare(df, spec, init))
    n_classes = len(data.labels.classes) if data.labels is not None else 0
    params = _final_params(spec, user_params, n_classes)
    _check_cost(spec, params, len(data.frame.columns), n_classes, len(data.frame))
    if data.event is not None:
        survival.check_survival(data.target, data.event)
    train_idx, val_idx = split_indices(
        len(data.frame),
        spec.test_size,
        spec.seed,
        data.target if n_classes else None,
        groups=data.group,
    )

    rounds_done = min(init.rounds_done, spec.num_boost_round) if init else 0
    remaining = spec.num_boost_round - rounds_done
    recorder = _Recorder(hooks, rounds_done, spec.num_boost_round, init.booster if init else None)
    # early stopping resumes from this job's earlier rounds only when all of them are known
    earlier = init.history if init is not None and init.history is not None else None
    complete = earlier is not None and len(earlier) == rounds_done
    callbacks = training_callbacks(recorder, spec, params, remaining, earlier if complete else None)
    try:
        nthread = recorder.threads()

        def build() -> tuple[xgb.DMatrix, xgb.DMatrix]:
            return _matrices(
                data.frame.iloc[train_idx],
                None,
                data.frame.iloc[val_idx],
                None,
                params,
                nthread,
                train_fields=roles.dmatrix_fields(data, train_idx, params),
                val_fields=roles.dmatrix_fields(data, val_idx, params),
            )

        read = {k: params.get(k) for k in MATRIX_PARAMS}
        dtrain, dval = reuse.get("matrices", data_key(spec, read), build)
        evals = recorder.schedule(spec, dtrain, dval)
        positioned = to_positions(params, data.features)
        booster = boost(
            positioned if nthread is None else {**positioned, "nthread": nthread},
            dtrain,
            remaining,
            evals=evals,
            callbacks=callbacks,
            xgb_model=_start_model(init),
        )
        proba = validation_predictions(booster, recorder, dval)
        if wants_gpu(params):
            # The frames to predict live in host memory; a CUDA booster would copy them over
            # with a warning on every call. The model file does not store the device anyway.
            booster.set_param({"device": "cpu"})
        own = _eval_metrics(booster, dval) if spec.task_type == "survival" else {}
    except xgb.core.XGBoostError as exc:
        if exc is recorder.hook_error:
            raise
        raise TrainingFailed("XGBoostError", trim_xgboost_error(exc)) from exc

    validation = Validation(
        target=data.target[val_idx],
        predictions=proba,
        weight=None if data.weight is None else data.weight[val_idx],
        group=None if data.group is None else data.group[val_idx],
        event=None if data.event is None else data.event[val_idx],
    )
    metrics = validation_metrics(spec.task_type, params, n_classes, spec.rank_k, validation)
    metrics.update(own)
    return TrainResult(
        booster=booster,
        features=data.features,
        labels=data.labels,
        metrics=metrics,
        history=recorder.history,
        best_iteration=_best_iteration(booster),
        num_boost_round=booster.num_boosted_rounds(),
        train_rows=len(train_idx),
        validation_rows=len(val_idx),
        params=params,
        excluded=data.excluded,
        dropped_rows=data.dropped_rows,
    )


def training_callbacks(
    recorder: _Recorder,
    spec: TrainSpec,
    params: dict[str, object],
    remaining: int,
    earlier: list[dict[str, Any]] | None,
) -> list[xgb.callback.TrainingCallback]:
    """The recorder, per-round seeds and early stopping (carried over a resume with the
    `earlier` rounds of this job): what makes a resumed job the job that never stopped."""
    seeds = RoundSeeds(
        int(str(params.get("seed", spec.seed))),
        resample=samples(params),
        every=recorder.checkpoint_every,
        rounds_done=recorder.rounds_done,
    )
    callbacks: list[xgb.callback.TrainingCallback] = [seeds, recorder]
    if spec.early_stopping_rounds and remaining > 0:
        callbacks.append(ResumableEarlyStopping(spec.early_stopping_rounds, earlier or []))
    return callbacks


def validation_predictions(
    booster: xgb.Booster, recorder: _Recorder, dval: xgb.DMatrix
) -> np.ndarray[Any, Any]:
    """The trained model's predictions of the validation rows.

    The recorder kept them at the end of training, while XGBoost's cache still held every
    tree's output for `dval` (it scored the last round): predicting again would pass the rows
    through every tree, 0.4 s of a 7.7 s, 11-class training of 62k rows. Early stopping keeps
    only the best rounds, which the cache does not match."""
    if recorder.predictions is not None and _best_iteration(booster) is None:
        return recorder.predictions
    return booster.predict(dval)


def trim_xgboost_error(exc: BaseException) -> str:
    """The first line of an XGBoost error, without its timestamp, C++ path and stack trace."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return re.sub(r"^\[[\d:]+\] [^:]+:\d+: ", "", first)[:500]


def validation_every(spec: TrainSpec) -> int:
    """Every round for early stopping (it reads every one), else the request's interval,
    else one that gives the curve about VALIDATION_POINTS points."""
    if spec.early_stopping_rounds:
        return 1
    if spec.eval_every is not None:
        return spec.eval_every
    return max(1, math.ceil(spec.num_boost_round / VALIDATION_POINTS))


class _Recorder(xgb.callback.TrainingCallback):
    """Feeds every round's metrics to the history and the hooks, before early stopping runs.

    XGBoost's `evals` would score every set every round (the training set alone took about a
    quarter of the time on a 48-class job); here the training set is scored every
    `eval_train_every` rounds, and the validation set every `validation_every` rounds unless
    early stopping needs it every round (then through `evals`), both on the last round, with
    the same `eval_set` call and so the same numbers. The model does not change.
    """

    def __init__(
        self,
        hooks: TrainHooks | None,
        rounds_done: int,
        total: int,
        start: xgb.Booster | None = None,
    ) -> None:
        """`start`: the model boosting continues from (a checkpoint carries its cadence)."""
        super().__init__()
        self.hooks = hooks
        self.rounds_done = rounds_done
        self.total = total
        wanted = hooks.checkpoint_every if hooks is not None else 0
        self.checkpoint_every = checkpoint_cadence(start, rounds_done, wanted)
        self.scored: list[tuple[xgb.DMatrix, str, int]] = []  # (data, name, every k rounds)
        self.history: list[dict[str, float]] = []
        self.hook_error: BaseException | None = None
        self.nthread: int | None = None
        self.validation: xgb.DMatrix | None = None
        # the validation predictions of the model at the end of training
        self.predictions: np.ndarray[Any, Any] | None = None

    def threads(self) -> int | None:
        """The hooks' thread count, remembered as the one in use."""
        if self.hooks is not None:
            try:
                self.nthread = self.hooks.threads()
            except BaseException as exc:
                self.hook_error = exc
                raise
        return self.nthread

    def before_iteration(
        self, model: xgb.Booster, epoch: int, evals_log: dict[str, dict[str, list[Any]]]
    ) -> bool:
        in_use = self.nthread
        if in_use is not None:
            wanted = self.threads()
            if wanted is not None and wanted != in_use:
                model.set_param({"nthread": wanted})  # XGBoost takes it between rounds
        return False

    def after_iteration(
        self, model: xgb.Booster, epoch: int, evals_log: dict[str, dict[str, list[Any]]]
    ) -> bool:
        round_ = self.rounds_done + epoch + 1
        latest = self._scores(model, epoch, round_)
        latest.update(
            (f"{data}-{metric}", float(values[-1]))
            for data, by_metric in evals_log.items()
            for metric, values in by_metric.items()
        )
        self.history.append({"round": round_, **latest})
        if self.hooks is not None:
            try:
                self.hooks.on_round(round_, self.total, latest)
                if self.checkpoint_every and round_ % self.checkpoint_every == 0:
                    self.hooks.checkpoint(model, round_)
            except BaseException as exc:
                self.hook_error = exc  # so that train() cannot mistake it for XGBoost's own
                raise
        return False

    def after_training(self, model: xgb.Booster) -> xgb.Booster:
        # from the prediction cache, which holds every round of the model as trained
        if self.validation is not None:
            self.predictions = model.predict(self.validation)
        return model

    def schedule(
        self, spec: TrainSpec, dtrain: xgb.DMatrix, dval: xgb.DMatrix
    ) -> list[tuple[xgb.DMatrix, str]]:
        """Which sets this recorder scores, and when; returns XGBoost's `evals`: the
        validation set when it is scored every round (early stopping reads it there)."""
        self.validation = dval
        every = validation_every(spec)
        self.scored = [(dtrain, "train", spec.eval_train_every)]
        if every == 1:
            return [(dval, "validation")]
        self.scored.append((dval, "validation", every))
        return []

    def _scores(self, model: xgb.Booster, epoch: int, round_: int) -> dict[str, float]:
        due = [
            (data, name)
            for data, name, every in self.scored
            if every and (round_ % every == 0 or round_ == self.total)
        ]
        if not due:
            return {}
        # "[3]\ttrain-logloss:0.25\tvalidation-logloss:0.3", as XGBoost's evals log parses it
        text = model.eval_set(due, epoch)
        return {
            name: float(value)
            for name, value in (item.rsplit(":", 1) for item in text.split("\t")[1:])
        }


def _check_spec(spec: TrainSpec) -> dict[str, object]:
    errors: dict[str, str] = {}
    if spec.task_type not in ("classification", "regression", "ranking", "survival"):
        errors["task_type"] = "must be classification, regression, ranking or survival"
    errors.update(roles.role_errors(spec))
    if not spec.features:
        errors["features"] = "at least one feature is required"
    elif len(set(spec.features)) != len(spec.features):
        errors["features"] = "lists a column twice"
    elif spec.target in spec.features:
        errors["features"] = "must not contain the target"
    if not 1 <= spec.num_boost_round <= MAX_ROUNDS:
        errors["num_boost_round"] = f"must be in [1, {MAX_ROUNDS}]"
    if spec.early_stopping_rounds is not None and spec.early_stopping_rounds < 1:
        errors["early_stopping_rounds"] = "must be >= 1"
    if spec.eval_train_every < 0:
        errors["eval_train_every"] = "must be >= 0"
    if spec.eval_every is not None and spec.eval_every < 1:
        errors["eval_every"] = "must be >= 1"
    elif spec.eval_every not in (None, 1) and spec.early_stopping_rounds:
        errors["eval_every"] = "must be 1 with early stopping, which reads every round"
    if spec.max_category_levels is not None and spec.max_category_levels < 1:
        errors["max_category_levels"] = "must be >= 1"
    if not 0.0 < spec.test_size < 1.0:
        errors["test_size"] = "must be in (0, 1)"
    if errors:
        raise InvalidInput("invalid training spec", {"errors": errors})
    return validate_params(spec.params, spec.task_type)


def _eval_metrics(booster: xgb.Booster, dval: xgb.DMatrix) -> dict[str, float | None]:
    """The objective's own metrics on the validation rows (e.g. `cox-nloglik`)."""
    text = booster.eval_set([(dval, "validation")])
    values = {
        name.removeprefix("validation-"): float(value)
        for name, value in (item.rsplit(":", 1) for item in text.split("\t")[1:])
    }
    return {name: v if math.isfinite(v) else None for name, v in values.items()}


def _check_cost(
    spec: TrainSpec, params: dict[str, object], n_features: int, n_classes: int, rows: int
) -> None:
    if spec.cost_budget is None:
        return
    try:
        estimate = cost.estimate(params, n_features, spec.num_boost_round, n_classes, rows)
        cost.check(estimate, spec.cost_budget)
    except InvalidInput as exc:
        raise TrainingFailed("TooExpensive", exc.message, exc.details) from exc


def _final_params(spec: TrainSpec, user: dict[str, object], n_classes: int) -> dict[str, object]:
    if spec.task_type == "ranking":
        defaults: dict[str, object] = {
            "objective": "rank:ndcg",
            "eval_metric": f"ndcg@{spec.rank_k}",
        }
    elif spec.task_type == "survival":
        aft = user.get("objective") == "survival:aft"
        defaults = {
            "objective": "survival:cox",
            "eval_metric": "aft-nloglik" if aft else "cox-nloglik",
        }
    elif spec.task_type == "regression":
        quantile = user.get("objective") == "reg:quantileerror"
        metric = "quantile" if quantile else "rmse"
        defaults = {"objective": "reg:squarederror", "eval_metric": metric}
    elif n_classes == 2:
        defaults = {"objective": "binary:logistic", "eval_metric": "logloss"}
    else:
        defaults = {"objective": "multi:softprob", "eval_metric": "mlogloss"}
    params = {"tree_method": "hist", "seed": spec.seed, **defaults, **user}
    if n_classes > 2 and params["objective"] != "multi:softprob":
        raise TrainingFailed(
            "IncompatibleObjective",
            f"{params['objective']} cannot fit {n_classes} classes; use multi:softprob",
        )
    if params["objective"] == "multi:softprob":
        if "eval_metric" not in user:
            params["eval_metric"] = "mlogloss"
        params["num_class"] = n_classes
    return params


def _matrices(
    x_train: pd.DataFrame,
    y_train: np.ndarray[Any, Any] | None,
    x_val: pd.DataFrame,
    y_val: np.ndarray[Any, Any] | None,
    params: dict[str, object],
    threads: int | None = None,
    *,
    train_fields: dict[str, Any] | None = None,
    val_fields: dict[str, Any] | None = None,
) -> tuple[xgb.DMatrix, xgb.DMatrix]:
    """QuantileDMatrix skips the raw float copy of the data; only `hist` can train on it.

    `*_fields` are further DMatrix fields (weight, qid, survival label bounds); a label
    given there replaces `y_*`."""
    nthread = params.get("nthread", -1) if threads is None else threads
    extra_train = {"label": y_train, **(train_fields or {})}
    extra_val = {"label": y_val, **(val_fields or {})}
    if params["tree_method"] == "hist":
        max_bin = params.get("max_bin", 256)
        dtrain = xgb.QuantileDMatrix(
            x_train, enable_categorical=True, max_bin=max_bin, nthread=nthread, **extra_train
        )
        dval = xgb.QuantileDMatrix(
            x_val,
            enable_categorical=True,
            ref=dtrain,
            max_bin=max_bin,
            nthread=nthread,
            **extra_val,
        )
        return dtrain, dval
    return (
        xgb.DMatrix(x_train, enable_categorical=True, nthread=nthread, **extra_train),
        xgb.DMatrix(x_val, enable_categorical=True, nthread=nthread, **extra_val),
    )


def _start_model(init: InitModel | None) -> xgb.Booster | None:
    """A copy of the init model without the attributes of its own training run."""
    if init is None:
        return None
    booster = init.booster.copy()
    booster.set_attr(best_iteration=None, best_score=None, xgenerator=None)
    return booster


def _best_iteration(booster: xgb.Booster) -> int | None:
    """Set by early stopping in this run only: `_start_model` clears an inherited one."""
    best = booster.attr("best_iteration")
    return None if best is None else int(best)
