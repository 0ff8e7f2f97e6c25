"""Cross-validation jobs (`cv`): the /train request plus `folds` and `refit`, run through `ml.cv`.

Submission runs the training checks (`prepare_train`), so a request /train would refuse is
refused here too. On the worker, every round's fold-aggregated metrics go to the job's
progress and history as they come, and a cancel is noticed within a round, as in training.
With `refit`, a model is then trained on every row for the best round's count and
registered like a training job's (its `metrics` are the best round's cross-validation means
and standard deviations). A retried attempt starts over: cross-validation has no checkpoint.

A search's trial (`tune` with `cv_folds`) is such a job with `refit`; its search's pruner
reads the fold means of every round and may stop it before the refit (`jobs/search.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from xgenerator.context import Context
from xgenerator.datasets import repository as datasets
from xgenerator.db.tables import Job
from xgenerator.errors import InvalidInput
from xgenerator.jobs import trial_data
from xgenerator.jobs.kinds import Outcome, memory, register
from xgenerator.jobs.kinds.train import TrainKind, report_screening
from xgenerator.jobs.kinds.train_request import train_spec
from xgenerator.jobs.runtime import Runtime
from xgenerator.ml.cv import MAX_FOLDS, MIN_FOLDS, CVResult, cross_validate, refit
from xgenerator.ml.train import TrainResult
from xgenerator.settings import Settings

DEFAULT_FOLDS = 5
# With a refit, cross-validation is this share of the progress bar, the refit the rest.
CV_SHARE = 80.0


@dataclass
class _Hooks:
    runtime: Runtime
    share: float
    checkpoint_every = 0  # cross-validation keeps no checkpoint
    # a search's trial: asked after every round whether to stop (raises TrialPruned)
    pruner: Callable[[int, list[dict[str, Any]]], None] | None = None

    def on_round(self, round: int, total: int, metrics: dict[str, float]) -> None:
        self.runtime.progress(
            round=round,
            total=total,
            metrics=metrics,
            percent=round / total * self.share,
            message=f"cross-validation round {round}/{total}",
        )
        if self.pruner is not None:
            self.pruner(round, self.runtime.history)

    def checkpoint(self, booster: Any, round: int) -> None:  # pragma: no cover - unused
        return None

    def threads(self) -> int | None:
        # xgboost.cv takes its nthread once, from the parameters: the worker's thread budget
        # does not reach the folds (a known gap, docs/benchmarks.md).
        return None


class CVKind:
    job_type = "cv"

    def prepare(
        self, session: Session, settings: Settings, user_id: str, request: dict[str, Any]
    ) -> Job:
        """The training checks, on the request less `folds` and `refit`."""
        folds = int(request.get("folds") or DEFAULT_FOLDS)
        if not MIN_FOLDS <= folds <= MAX_FOLDS:
            raise InvalidInput(f"folds must be in [{MIN_FOLDS}, {MAX_FOLDS}]", {"folds": folds})
        if request.get("external_memory"):
            raise InvalidInput(
                "cross-validation trains in memory only; external_memory is for /train",
                {"option": "external_memory"},
            )
        if request.get("distributed"):
            raise InvalidInput(
                "cross-validation trains on one worker; distributed is for /train",
                {"option": "distributed"},
            )
        # the folds train in memory, whatever the dataset's size
        train_request = {
            k: v for k, v in request.items() if k not in ("folds", "refit", "distributed")
        }
        train_request["distributed"] = False
        job = TrainKind().prepare(session, settings, user_id, train_request)
        job.job_type = self.job_type
        job.config = {
            **job.config,
            "folds": folds,
            "refit": bool(request.get("refit", False)),
        }
        return job

    def run(self, context: Context, job: Job, runtime: Runtime) -> Outcome:
        cfg = job.config
        spec = train_spec(cfg)
        with context.db.session() as session:
            dataset = datasets.get_owned(session, job.user_id, cfg["dataset_id"])
        runtime.progress(percent=0, message="loading data", force=True)
        # ranking (a query id column): folds by group, a query never split across two
        group_column = cfg.get("group_column")
        columns = [*spec.features, spec.target, *([group_column] if group_column else [])]
        memory.check_fits(context.settings, dataset.row_count, len(columns), False)
        frame, _ = trial_data.load(context, job, dataset, columns, reusable=False)
        groups = frame[group_column].to_numpy() if group_column else None
        hooks = _Hooks(runtime, CV_SHARE if cfg["refit"] else 100.0)
        if job.parent_job_id is not None and "trial" in cfg:
            from xgenerator.jobs.search import TrialPruning

            hooks.pruner = TrialPruning(context, job)
        result = cross_validate(frame, spec, cfg["folds"], hooks, groups=groups)
        # early stopping ran a few rounds past the best: the model's history ends at the best
        runtime.replace_history(result.history)
        summary = _summary(result)
        report_screening(runtime, result)
        if not cfg["refit"]:
            return Outcome(result=summary)

        def on_refit_round(round_: int, total: int) -> None:
            runtime.progress(
                percent=CV_SHARE + (100 - CV_SHARE) * round_ / total,
                message=f"refit on all rows: round {round_}/{total}",
            )

        booster = refit(result, on_refit_round)
        trained = TrainResult(
            booster=booster,
            features=result.features,
            labels=result.labels,
            metrics={k: v for k, v in result.best().items() if k != "round"},
            history=result.history,
            best_iteration=None,
            num_boost_round=booster.num_boosted_rounds(),
            train_rows=result.rows,
            validation_rows=0,
            params=result.params,
            excluded=result.excluded,
            dropped_rows=result.dropped_rows,
        )
        outcome = TrainKind().register_model(
            context, job, runtime, dataset, None, spec, trained, frame
        )
        outcome.result = {**summary, "model_id": outcome.model_id}
        return outcome


def _summary(result: CVResult) -> dict[str, Any]:
    return {
        "folds": result.folds,
        "rows": result.rows,
        "best_round": result.best_round,
        "best_metric": result.best_metric,
        "maximize": result.maximize,
        "best": result.best(),
        "history": result.history,
        "excluded_features": [e.to_dict() for e in result.excluded],
        "dropped_rows": result.dropped_rows,
        "model_id": None,
    }


register(CVKind())
