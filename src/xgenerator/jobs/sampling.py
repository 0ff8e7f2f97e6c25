"""A search's sampler and pruner, rebuilt from its trials' rows every time they are asked.

Nothing of a search lives only in one process: `study` turns the trials recorded in the
database (their parameters, status and per-round history) into an in-memory Optuna study,
asks it for the next parameters, or asks its median pruner whether a running trial should
stop. TPE and random samplers are seeded from the search's seed and the trial's number
(through NumPy's `SeedSequence`: consecutive plain seeds gave trials 0 and 1 nearly the same
draws), so a rebuild asks the same question the same way on any process. `grid` needs no
study: trial n takes the n-th point of the grid.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState, create_trial

from xgenerator.errors import InvalidInput
from xgenerator.ml import params as xgb_params

optuna.logging.set_verbosity(optuna.logging.WARNING)

STRATEGIES = ("tpe", "random", "grid")
MAX_GRID_POINTS = 10_000
# Metrics where bigger is better (the default direction of a metric named after them).
MAXIMIZED = ("auc", "aucpr", "ndcg", "map", "pre", "cox-nloglik-neg")
# A cross-validated trial's history names each metric's fold mean and standard deviation so.
CV_MEAN, CV_STD = "-mean", "-std"


def default_direction(metric: str) -> str:
    name = metric.removeprefix("validation-").split("@")[0]
    return "maximize" if name in MAXIMIZED else "minimize"


def check_space(
    space: dict[str, Any],
    strategy: str,
    task_type: str,
    base_params: dict[str, Any],
    *,
    max_depth_limit: int,
    max_rounds: int,
) -> dict[str, BaseDistribution]:
    """The Optuna distributions of a search space; every bound and choice is checked as an
    XGBoost parameter the service allows (one 422 naming every problem)."""
    if not space:
        raise InvalidInput("search_space is empty", None)
    errors: dict[str, str] = {}
    out: dict[str, BaseDistribution] = {}
    for name, spec in space.items():
        try:
            dist = _distribution(name, spec, strategy)
            for value in _edges(dist):
                if name == "num_boost_round":
                    if not isinstance(value, int) or not 1 <= value <= max_rounds:
                        raise ValueError(f"num_boost_round must be an integer in [1, {max_rounds}]")
                else:
                    xgb_params.validate_params(
                        {**base_params, name: value}, task_type, max_depth_limit=max_depth_limit
                    )
            out[name] = dist
        except InvalidInput as exc:
            errors[name] = str((exc.details or {}).get("errors", {}).get(name, exc.message))
        except (ValueError, TypeError) as exc:
            errors[name] = str(exc)
    if errors:
        raise InvalidInput("invalid search_space", {"errors": errors})
    if strategy == "grid" and len(grid_points(out, MAX_GRID_POINTS + 1)) > MAX_GRID_POINTS:
        raise InvalidInput(f"the grid has more than {MAX_GRID_POINTS} points", None)
    return out


def _distribution(name: str, spec: Any, strategy: str) -> BaseDistribution:
    if not isinstance(spec, dict):
        raise ValueError("expected {type, low, high, log, step, choices}")
    kind = spec.get("type")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ValueError("a categorical parameter needs a non-empty `choices` list")
        if not all(c is None or isinstance(c, bool | int | float | str) for c in choices):
            raise ValueError("choices must be numbers, strings, booleans or null")
        return CategoricalDistribution(choices)
    if kind not in ("float", "int"):
        raise ValueError("type must be float, int or categorical")
    low, high, step = spec.get("low"), spec.get("high"), spec.get("step")
    log = bool(spec.get("log"))
    numeric = (int,) if kind == "int" else (int, float)
    if not (
        isinstance(low, numeric)
        and isinstance(high, numeric)
        and not isinstance(low, bool)
        and not isinstance(high, bool)
    ):
        raise ValueError(f"low and high must be {'integers' if kind == 'int' else 'numbers'}")
    if low > high:
        raise ValueError("low must not exceed high")
    if log and low <= 0:
        raise ValueError("a log scale needs low > 0")
    if log and step is not None:
        raise ValueError("step and log cannot be combined")
    if kind == "int":
        return IntDistribution(int(low), int(high), log=log, step=int(step or 1))
    if strategy == "grid" and step is None:
        raise ValueError("a float parameter of a grid search needs a `step`")
    return FloatDistribution(float(low), float(high), log=log, step=step)


def _edges(dist: BaseDistribution) -> list[Any]:
    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    assert isinstance(dist, IntDistribution | FloatDistribution)  # noqa: S101
    return [dist.low, dist.high]


def grid_points(space: dict[str, BaseDistribution], limit: int) -> list[dict[str, Any]]:
    """The grid's points in a fixed order (parameters by name), at most `limit` of them."""
    axes: list[list[Any]] = []
    names = sorted(space)
    for name in names:
        dist = space[name]
        if isinstance(dist, CategoricalDistribution):
            axes.append(list(dist.choices))
        elif isinstance(dist, IntDistribution):
            axes.append(list(range(dist.low, dist.high + 1, dist.step)))
        else:
            assert isinstance(dist, FloatDistribution) and dist.step is not None  # noqa: S101
            count = int(math.floor((dist.high - dist.low) / dist.step + 1e-9)) + 1
            axes.append([round(dist.low + i * dist.step, 12) for i in range(count)])
    product = itertools.islice(itertools.product(*axes), limit)
    return [dict(zip(names, point, strict=True)) for point in product]


@dataclass(frozen=True)
class TrialRecord:
    """What the database says of one trial (a child training job)."""

    number: int
    params: dict[str, Any]
    state: TrialState
    value: float | None
    intermediate: dict[int, float]


def curve(history: list[dict[str, Any]], metric: str) -> dict[int, float]:
    """The trial's metric per round, from its history (rounds without it are left out); a
    cross-validated trial's fold mean (`<metric>-mean`)."""
    out: dict[int, float] = {}
    for row in history or []:
        value = row.get(metric, row.get(metric + CV_MEAN))
        if isinstance(value, int | float) and math.isfinite(value):
            out[int(row["round"])] = float(value)
    return out


def trial_value(
    history: list[dict[str, Any]], metric: str, direction: str, early_stopping: bool
) -> float | None:
    """A finished trial's score: the metric at its last round, or at its best round when
    early stopping kept the best iteration."""
    values = curve(history, metric)
    if not values:
        return None
    if early_stopping:
        return max(values.values()) if direction == "maximize" else min(values.values())
    return values[max(values)]


def study(
    space: dict[str, BaseDistribution],
    trials: list[TrialRecord],
    direction: str,
    *,
    strategy: str = "tpe",
    seed: int = 0,
    warmup_rounds: int = 0,
    startup_trials: int = 1,
) -> optuna.Study:
    """An in-memory study holding `trials`, with the sampler for the next trial's number."""
    number = len(trials)
    trial_seed = int(np.random.SeedSequence([seed, number]).generate_state(1)[0])
    sampler: optuna.samplers.BaseSampler = (
        optuna.samplers.RandomSampler(seed=trial_seed)
        if strategy == "random"
        else optuna.samplers.TPESampler(seed=trial_seed, n_startup_trials=5)
    )
    # no trial is pruned at a round <= warmup_rounds (Optuna's warm-up counts from step 0)
    pruner = optuna.pruners.MedianPruner(
        n_startup_trials=startup_trials, n_warmup_steps=warmup_rounds + 1
    )
    built = optuna.create_study(
        direction=StudyDirection.MAXIMIZE if direction == "maximize" else StudyDirection.MINIMIZE,
        sampler=sampler,
        pruner=pruner,
    )
    for t in trials:
        built.add_trial(_frozen(space, t))
    return built


def _frozen(space: dict[str, BaseDistribution], t: TrialRecord) -> FrozenTrial:
    return create_trial(
        params=t.params,
        distributions={k: space[k] for k in t.params},
        value=t.value if t.state is TrialState.COMPLETE else None,
        intermediate_values=t.intermediate,
        state=t.state,
    )


def ask(built: optuna.Study, space: dict[str, BaseDistribution]) -> dict[str, Any]:
    """The sampler's next parameters (the asked trial stays in this throwaway study only)."""
    return dict(built.ask(space).params)


def should_prune(built: optuna.Study, space: dict[str, BaseDistribution], t: TrialRecord) -> bool:
    """The median pruner's verdict on a running trial, against the study's finished trials."""
    return bool(built.pruner.prune(built, _frozen(space, t)))


def distributions(space: dict[str, Any], strategy: str) -> dict[str, BaseDistribution]:
    """The distributions of a search space already checked at submission."""
    return {name: _distribution(name, spec, strategy) for name, spec in space.items()}
