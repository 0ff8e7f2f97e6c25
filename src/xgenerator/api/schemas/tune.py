"""Hyper-parameter search requests (POST /tune) and leaderboards (GET /jobs/{id}/trials)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from xgenerator.api.schemas import Request, Response
from xgenerator.api.schemas.jobs import TrainRequest


class ParamRange(Request):
    type: Literal["float", "int", "categorical"]
    low: int | float | None = None
    high: int | float | None = None
    log: bool = False
    step: float | None = Field(default=None, gt=0, description="Required for floats in a grid")
    choices: list[Any] | None = Field(default=None, max_length=1000)


class TuneRequest(TrainRequest):
    """A /train request plus the search: every trial is that training with sampled params."""

    search_space: dict[str, ParamRange] = Field(
        min_length=1,
        max_length=30,
        description="XGBoost parameters the service allows, and `num_boost_round`",
    )
    metric: str | None = Field(
        default=None,
        max_length=100,
        description="A validation metric of the training history (`logloss` or "
        "`validation-logloss`); default: the last validation metric (XGBoost's early-stopping one)",
    )
    direction: Literal["minimize", "maximize"] | None = Field(
        default=None, description="Default: maximize for auc, aucpr, ndcg, map; else minimize"
    )
    max_trials: int = Field(default=20, ge=1, le=200)
    max_parallel: int = Field(
        default=1, ge=1, description="Trials at once; they count against the active-job quota"
    )
    strategy: Literal["tpe", "random", "grid"] = "tpe"
    timeout_s: float | None = Field(
        default=None, gt=0, description="No trial starts after this; running ones finish"
    )
    cv_folds: int | None = Field(
        default=None,
        ge=2,
        le=20,
        description="Score each trial by k-fold cross-validation (its mean validation metric "
        "at its best round); each finished trial's model is then trained on every row for "
        "that many rounds, so the search's model is the best params on the full data",
    )
    seed: int = Field(default=0, ge=0, description="The sampler's seed")
    prune: bool = Field(default=True, description="Stop trials below the median early")
    prune_warmup_rounds: int = Field(
        default=5, ge=0, description="No trial is pruned before this round"
    )
    prune_every: int = Field(
        default=1,
        ge=1,
        description="Rounds between pruning checks; unless the body sets eval_every, every "
        "trial scores its validation set every k rounds, k a multiple of this about as sparse "
        "as the default curve of the longest trial, so that the pruner has values to compare "
        "(at most one check per progress interval, on a round that scored one)",
    )


class Trial(Response):
    number: int
    job_id: str
    status: str
    state: str = Field(description="The status, or `pruned` for a trial the pruner stopped")
    params: dict[str, Any]
    value: float | None = Field(
        description="The metric of a succeeded trial (with cv_folds: the fold mean at the "
        "trial's best round)"
    )
    rounds: int
    model_id: str | None
    pruned_at_round: int | None


class Leaderboard(Response):
    job_id: str
    status: str
    metric: str
    direction: str
    strategy: str
    max_trials: int
    counts: dict[str, int]
    best: Trial | None
    trials: list[Trial]
