"""The allow-list of XGBoost parameters a user may set.

XGBoost silently ignores unknown keys and accepts values that make a worker run for hours or
exhaust its memory (``max_depth=60``, ``max_bin=1e9``), so user parameters pass through this
list before they reach a job: every key must be known, typed and bounded.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from xgenerator.errors import InvalidInput
from xgenerator.ml.constraints import check_interaction_shape, check_monotone_shape
from xgenerator.ml.quantiles import check_alphas

TaskType = Literal["classification", "regression", "ranking", "survival"]
TASK_TYPES: tuple[str, ...] = ("classification", "regression", "ranking", "survival")

CLASSIFICATION_OBJECTIVES = frozenset({"binary:logistic", "multi:softprob"})
REGRESSION_OBJECTIVES = frozenset(
    {
        "reg:squarederror",
        "reg:absoluteerror",
        "reg:pseudohubererror",
        "reg:squaredlogerror",
        "count:poisson",
        "reg:tweedie",
        "reg:gamma",
        "reg:quantileerror",
    }
)
# objectives whose leaf values XGBoost refreshes from the residuals' quantiles
ADAPTIVE_LEAF_OBJECTIVES = frozenset({"reg:quantileerror", "reg:absoluteerror"})
RANKING_OBJECTIVES = frozenset({"rank:ndcg", "rank:pairwise", "rank:map"})
SURVIVAL_OBJECTIVES = frozenset({"survival:cox", "survival:aft"})
OBJECTIVES: dict[str, frozenset[str]] = {
    "classification": CLASSIFICATION_OBJECTIVES,
    "regression": REGRESSION_OBJECTIVES,
    "ranking": RANKING_OBJECTIVES,
    "survival": SURVIVAL_OBJECTIVES,
}

# Metrics are not checked against the task: `error` on a regression fails inside XGBoost,
# which `train()` reports as a TrainingFailed("XGBoostError").
EVAL_METRICS = frozenset(
    {
        "logloss",
        "mlogloss",
        "error",
        "merror",
        "auc",
        "aucpr",
        "rmse",
        "rmsle",
        "mae",
        "mape",
        "mphe",
        "poisson-nloglik",
        "gamma-nloglik",
        "gamma-deviance",
        "tweedie-nloglik",
        "ndcg",
        "map",
        "pre",
        "cox-nloglik",
        "aft-nloglik",
        "interval-regression-accuracy",
        "quantile",
    }
)
# ranking metrics cut at k: `ndcg@5`, `map@10`, `pre@3`
_METRIC_AT_K = re.compile(r"^(ndcg|map|pre)@([1-9][0-9]{0,3})$")

DEVICES = frozenset({"cpu", "cuda", *(f"cuda:{i}" for i in range(8))})

# Keys XGBoost knows but that XGenerator sets itself; a clearer reason than "unknown".
RESERVED: dict[str, str] = {
    "num_class": "set automatically from the target's classes",
    "enable_categorical": "categorical features are always enabled",
    "verbosity": "controlled by the service",
    "num_boost_round": "a training option, not an XGBoost parameter",
    "n_estimators": "use num_boost_round",
}

BIG = 1e6  # upper bound for unbounded-in-theory penalties; larger values only hide typos


@dataclass(frozen=True)
class Param:
    """One allowed key: its kind and its bounds (``open_*`` excludes the bound itself)."""

    kind: Literal["float", "int", "choice", "metrics", "alphas", "monotone", "interaction"]
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    choices: frozenset[str] = frozenset()
    doc: str = ""


def _unit(doc: str) -> Param:
    return Param("float", 0.0, 1.0, open_low=True, doc=doc)


def _penalty(doc: str) -> Param:
    return Param("float", 0.0, BIG, doc=doc)


ALLOWED_PARAMS: dict[str, Param] = {
    "eta": _unit("learning rate; smaller needs more rounds"),
    "max_depth": Param("int", 1, None, doc="tree depth; the upper bound is max_depth_limit"),
    "min_child_weight": _penalty("minimum hessian sum in a leaf"),
    "subsample": _unit("row sampling ratio per tree"),
    "colsample_bytree": _unit("column sampling ratio per tree"),
    "colsample_bylevel": _unit("column sampling ratio per depth level"),
    "colsample_bynode": _unit("column sampling ratio per split"),
    "gamma": _penalty("minimum loss reduction to split"),
    "lambda": _penalty("L2 regularisation"),
    "alpha": _penalty("L1 regularisation"),
    "max_bin": Param("int", 2, 4096, doc="histogram bins; memory grows with it"),
    "max_delta_step": _penalty("caps leaf outputs; helps very unbalanced classes"),
    "scale_pos_weight": Param("float", 0.0, BIG, open_low=True, doc="weight of the positives"),
    "grow_policy": Param("choice", choices=frozenset({"depthwise", "lossguide"})),
    "max_leaves": Param("int", 0, 1 << 16, doc="0 means no limit"),
    "max_cat_to_onehot": Param("int", 1, 1024, doc="one-hot splits below this cardinality"),
    "nthread": Param("int", 1, 64, doc="threads per training job"),
    "seed": Param("int", 0, 2**31 - 1, doc="XGBoost's random seed"),
    "eval_metric": Param("metrics", choices=EVAL_METRICS, doc="a name or a list of names"),
    "device": Param("choice", choices=DEVICES, doc="cuda runs on a GPU worker"),
    # `exact` is refused: it has no categorical support.
    "tree_method": Param("choice", choices=frozenset({"hist", "approx"}), doc="default hist"),
    "objective": Param("choice", choices=CLASSIFICATION_OBJECTIVES | REGRESSION_OBJECTIVES),
    "base_score": Param("float", -BIG, BIG, doc="initial prediction; estimated when unset"),
    "num_parallel_tree": Param("int", 1, 100, doc=">1 builds a boosted random forest"),
    "tweedie_variance_power": Param("float", 1.0, 2.0, open_low=True, open_high=True),
    "huber_slope": Param("float", 0.0, BIG, open_low=True, doc="for reg:pseudohubererror"),
    "quantile_alpha": Param("alphas", doc="for reg:quantileerror: a list of levels in (0, 1)"),
    "aft_loss_distribution": Param(
        "choice", choices=frozenset({"normal", "logistic", "extreme"}), doc="for survival:aft"
    ),
    "aft_loss_distribution_scale": Param(
        "float", 0.0, 100.0, open_low=True, doc="for survival:aft"
    ),
    "lambdarank_pair_method": Param("choice", choices=frozenset({"mean", "topk"})),
    "lambdarank_num_pair_per_sample": Param("int", 1, 1000, doc="pairs per document"),
    "monotone_constraints": Param("monotone", doc="{column: 1 | -1}, numeric columns only"),
    "interaction_constraints": Param("interaction", doc="[[column, ...], ...]"),
}

# Aliases are folded into XGBoost's native names so that a model's params read one way.
ALIASES: dict[str, str] = {
    "learning_rate": "eta",
    "reg_lambda": "lambda",
    "reg_alpha": "alpha",
    "random_state": "seed",
}


def validate_params(
    params: Mapping[str, object], task_type: str, *, max_depth_limit: int = 16
) -> dict[str, object]:
    """Return a normalized copy (native names, exact Python types) or raise one InvalidInput.

    Every problem is reported at once, keyed by the name the user wrote, so that a client fixes
    its request in one round trip.
    """
    if task_type not in TASK_TYPES:
        raise InvalidInput("invalid task_type", {"errors": {"task_type": "unknown task type"}})
    errors: dict[str, str] = {}
    out: dict[str, object] = {}
    for key, value in params.items():
        name = ALIASES.get(key, key)
        spec = ALLOWED_PARAMS.get(name)
        if spec is None:
            errors[str(key)] = RESERVED.get(str(key), "unknown parameter")
            continue
        if name in out:
            errors[key] = f"given twice (alias of {name})"
            continue
        try:
            out[name] = _check(name, spec, value, task_type, max_depth_limit)
        except ValueError as exc:
            errors[key] = str(exc)
    if not errors:
        errors.update(_check_combination(out))
    if errors:
        raise InvalidInput("invalid xgb_params", {"errors": errors})
    if out.get("objective") == "reg:quantileerror":
        out.setdefault("quantile_alpha", [0.5])  # XGBoost's default, written out
    return out


def wants_gpu(params: Mapping[str, object]) -> bool:
    """Whether the job must run on a GPU worker."""
    device = params.get("device")
    return isinstance(device, str) and device.startswith("cuda")


def _check(name: str, spec: Param, value: object, task_type: str, depth_limit: int) -> object:
    if spec.kind == "float":
        return _number(value, spec, as_int=False)
    if spec.kind == "int":
        if name == "max_depth":
            spec = Param("int", spec.low, depth_limit)
        return _number(value, spec, as_int=True)
    if spec.kind == "metrics":
        return _metrics(value, spec.choices)
    if spec.kind == "alphas":
        return check_alphas(value)
    if spec.kind == "monotone":
        return check_monotone_shape(value)
    if spec.kind == "interaction":
        return check_interaction_shape(value)
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if name == "tree_method" and value == "exact":
        raise ValueError("'exact' is not allowed: it has no categorical support")
    choices = OBJECTIVES[task_type] if name == "objective" else spec.choices
    if value not in choices:
        where = f" for {task_type}" if name == "objective" else ""
        raise ValueError(f"must be one of {sorted(choices)}{where}")
    return value


def _number(value: object, spec: Param, *, as_int: bool) -> int | float:
    # bool is an int subclass in Python; `max_depth: true` is a client bug, not 1.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be an integer" if as_int else "must be a number")
    if not math.isfinite(value):
        raise ValueError("must be finite")
    if as_int:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError("must be an integer")
        number: int | float = int(value)
    else:
        number = float(value)
    if spec.low is not None and (number < spec.low or (spec.open_low and number == spec.low)):
        raise ValueError(_range_text(spec))
    if spec.high is not None and (number > spec.high or (spec.open_high and number == spec.high)):
        raise ValueError(_range_text(spec))
    return number


def _range_text(spec: Param) -> str:
    left = "(" if spec.open_low else "["
    right = ")" if spec.open_high else "]"
    low = "-inf" if spec.low is None else f"{spec.low:g}"
    high = "inf" if spec.high is None else f"{spec.high:g}"
    return f"must be in {left}{low}, {high}{right}"


def _metrics(value: object, choices: frozenset[str]) -> str | list[str]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ValueError("must be a metric name or a non-empty list of names")
    unknown = [n for n in names if n not in choices and not _METRIC_AT_K.match(n)]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; allowed: {sorted(choices)}")
    if len(set(names)) != len(names):
        raise ValueError("lists a metric twice")
    return value if isinstance(value, str) else list(names)


def _check_combination(params: Mapping[str, object]) -> dict[str, str]:
    """Constraints between keys that XGBoost would otherwise reject deep inside a worker."""
    errors: dict[str, str] = {}
    base_score = params.get("base_score")
    objective = params.get("objective")
    if isinstance(base_score, float):
        if objective == "binary:logistic" and not 0.0 < base_score < 1.0:
            errors["base_score"] = "must be in (0, 1) for binary:logistic"
        if objective in {"count:poisson", "reg:gamma", "reg:tweedie"} and base_score <= 0:
            errors["base_score"] = f"must be > 0 for {objective}"
    if "monotone_constraints" in params and objective in ADAPTIVE_LEAF_OBJECTIVES:
        # XGBoost recomputes their leaf values after growing a tree, ignoring the constraint
        # (tested: the predictions are not monotone); refusing beats a silently broken model
        errors["monotone_constraints"] = f"XGBoost does not keep them with {objective}"
    if "quantile_alpha" in params and objective != "reg:quantileerror":
        errors["quantile_alpha"] = 'only with "objective": "reg:quantileerror"'
    for key in ("aft_loss_distribution", "aft_loss_distribution_scale"):
        if key in params and objective != "survival:aft":
            errors[key] = 'only with "objective": "survival:aft"'
    return errors


# XGBoost refuses these in feature names (they are its own dump syntax): a worker would fail.
FORBIDDEN_IN_NAMES = ("[", "]", "<")


def check_feature_names(names: list[str]) -> None:
    bad = [n for n in names if any(c in n for c in FORBIDDEN_IN_NAMES)]
    if bad:
        raise InvalidInput(
            "XGBoost does not accept '[', ']' or '<' in feature names: rename these columns, "
            "or leave them out with exclude_features",
            {"columns": bad[:20]},
        )
