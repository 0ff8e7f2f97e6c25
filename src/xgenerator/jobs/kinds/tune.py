"""Hyper-parameter searches (`tune`): checked here at submission, scheduled by `jobs/search.py`.

A search is a parent job that never runs on a worker: it is `running` from its submission,
with no worker and no lease (the reconciler leaves it alone), while its trials, ordinary
`train` jobs with `parent_job_id`, go through the queue, claim, lease, cancel and retry
machinery. Each trial's end schedules the next ones; the last one's end finishes the search.

With `cv_folds`, each trial is a `cv` job with `refit` instead: it is scored by the mean
validation metric of k-fold cross-validation at its best round, and its model is then trained
on every row for that many rounds (as H2O's grid search does with `nfolds`). The search's
model, the best trial's, is therefore trained on the full data with the best params; the
refit costs one more full-data training per finished trial (a pruned one stops before it).
"""

from __future__ import annotations

import math
from typing import Any

from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from sqlalchemy.orm import Session

from xgenerator.context import Context
from xgenerator.db.tables import Job
from xgenerator.errors import InvalidInput
from xgenerator.jobs import sampling
from xgenerator.jobs.kinds import Outcome, register
from xgenerator.jobs.kinds.cv import CVKind
from xgenerator.jobs.kinds.train import TrainKind
from xgenerator.jobs.queues import Queue
from xgenerator.jobs.runtime import Runtime
from xgenerator.ml.cv import MAX_FOLDS, MIN_FOLDS
from xgenerator.ml.train import VALIDATION_POINTS
from xgenerator.settings import Settings

SEARCH_FIELDS = (
    "search_space",
    "metric",
    "direction",
    "max_trials",
    "max_parallel",
    "strategy",
    "timeout_s",
    "cv_folds",
    "seed",
    "prune",
    "prune_warmup_rounds",
    "prune_every",
)
MAX_TRIALS = 200


class TuneKind:
    job_type = "tune"

    def prepare(
        self, session: Session, settings: Settings, user_id: str, request: dict[str, Any]
    ) -> Job:
        """The training checks on the request less the search's fields (the cross-validation
        checks with `cv_folds`), then the search's."""
        if request.get("distributed"):
            raise InvalidInput(
                "a search's trials train on single workers (they are pruned round by round); "
                "distributed is for /train",
                {"option": "distributed"},
            )
        train_request = {k: v for k, v in request.items() if k not in SEARCH_FIELDS}
        train_request["distributed"] = False  # whatever the dataset's size
        cv_folds = request.get("cv_folds")
        notes: list[str] = []
        if cv_folds is None:
            base = TrainKind().prepare(session, settings, user_id, train_request)
        else:
            if not MIN_FOLDS <= int(cv_folds) <= MAX_FOLDS:
                raise InvalidInput(
                    f"cv_folds must be in [{MIN_FOLDS}, {MAX_FOLDS}]", {"cv_folds": cv_folds}
                )
            cv_request = {**train_request, "folds": int(cv_folds), "refit": True}
            base = CVKind().prepare(session, settings, user_id, cv_request)
            notes.append(
                f"trials are scored by {cv_folds}-fold cross-validation (the mean validation "
                "metric at each trial's best round), so test_size is not used; each finished "
                "trial's model is then trained on every row for that many rounds"
            )
        cfg = base.config
        prune = bool(request.get("prune", True))
        prune_every = int(request.get("prune_every") or 1)
        strategy = request.get("strategy") or "tpe"
        if strategy not in sampling.STRATEGIES:
            raise InvalidInput("strategy must be tpe, random or grid", {"strategy": strategy})
        space = request.get("search_space") or {}
        dists = sampling.check_space(
            space,
            strategy,
            cfg["task_type"],
            cfg["xgb_params"],
            max_depth_limit=settings.max_depth_limit,
            max_rounds=settings.max_num_boost_round,
        )
        if prune and cv_folds is None and cfg.get("eval_every") is None:
            cfg["eval_every"] = _trial_curve(cfg, dists, prune_every)
        max_trials = int(request.get("max_trials") or 20)
        if not 1 <= max_trials <= MAX_TRIALS:
            raise InvalidInput(f"max_trials must be in [1, {MAX_TRIALS}]", None)
        if strategy == "grid":
            points = len(sampling.grid_points(dists, sampling.MAX_GRID_POINTS))
            if points < max_trials:
                notes.append(f"max_trials lowered from {max_trials} to the grid's {points} points")
                max_trials = points
        limit = settings.max_active_jobs_per_user or MAX_TRIALS
        max_parallel = int(request.get("max_parallel") or 1)
        if not 1 <= max_parallel <= limit:
            raise InvalidInput(f"max_parallel must be in [1, {limit}] (the active-job quota)", None)
        metric = request.get("metric")
        if metric is not None and not str(metric).startswith("validation-"):
            metric = f"validation-{metric}"
        direction = request.get("direction") or (
            sampling.default_direction(metric) if metric else None
        )
        if direction not in (None, "minimize", "maximize"):
            raise InvalidInput("direction must be minimize or maximize", {"direction": direction})
        search = {
            "search_space": space,
            "strategy": strategy,
            "metric": metric,
            "direction": direction,
            "max_trials": max_trials,
            "max_parallel": max_parallel,
            "timeout_s": request.get("timeout_s"),
            "cv_folds": None if cv_folds is None else int(cv_folds),
            "seed": int(request.get("seed") or 0),
            "prune": prune,
            "prune_warmup_rounds": int(request.get("prune_warmup_rounds") or 5),
            "prune_every": prune_every,
            "notes": notes,
        }
        return Job(
            user_id=user_id,
            job_type=self.job_type,
            queue=Queue.MAINTENANCE,
            model_name=base.model_name,
            dataset_id=base.dataset_id,
            config={"train": cfg, "search": search},
        )

    def run(self, context: Context, job: Job, runtime: Runtime) -> Outcome:
        """Never sent to a worker: its trials' ends schedule it (`jobs/search.py`)."""
        raise InvalidInput("a search is scheduled by its trials; it has nothing to run", None)


def _trial_curve(cfg: dict[str, Any], dists: dict[str, BaseDistribution], every: int) -> int:
    """Every `k` rounds, the rounds at which a pruning search's trials score their validation
    set: the pruner judges a trial at a round it scored, against the finished trials at that
    same round, so all trials share `k`, a multiple of `prune_every`, about as sparse as the
    default curve of the longest trial (each score costs ~0.5 ms besides the new trees).
    Early stopping reads every round."""
    if cfg.get("early_stopping_rounds"):
        return 1
    rounds = int(cfg["num_boost_round"])
    sampled = dists.get("num_boost_round")
    if isinstance(sampled, IntDistribution):
        rounds = max(rounds, sampled.high)
    elif isinstance(sampled, CategoricalDistribution):
        rounds = max(rounds, *(int(c) for c in sampled.choices if isinstance(c, int | float)))
    default = math.ceil(rounds / VALIDATION_POINTS)
    return every * max(1, math.ceil(default / every))


register(TuneKind())
