"""Training and retraining jobs: checked before a job exists, run on a worker through `ml/`."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Protocol

import pandas as pd
import xgboost as xgb
from sqlalchemy import update
from sqlalchemy.orm import Session

from xgenerator.context import Context
from xgenerator.datasets import repository as datasets
from xgenerator.db.tables import Dataset, Job, Model, utcnow
from xgenerator.errors import Forbidden, InvalidInput
from xgenerator.jobs import repository, threads, trial_data
from xgenerator.jobs.kinds import Outcome, external, memory, on_dask, register
from xgenerator.jobs.kinds.train_request import (
    ROLE_CONFIG,
    prepare_retrain,
    prepare_train,
    train_spec,
)
from xgenerator.jobs.runtime import Runtime
from xgenerator.jobs.status import JobStatus
from xgenerator.ml import bundle, explain, params
from xgenerator.ml.bundle import ModelBundle
from xgenerator.ml.prepare import Encoding, fresh_encoding
from xgenerator.ml.prepare import role_columns as spec_roles
from xgenerator.ml.resume import inexact_resume
from xgenerator.ml.selection import Excluded
from xgenerator.ml.train import InitModel, TrainResult, TrainSpec, train
from xgenerator.models import versions
from xgenerator.models.repository import get_owned as get_model
from xgenerator.models.repository import load_bundle
from xgenerator.settings import Settings


@dataclass
class _Hooks:
    """Adapts the job runtime to the training callback of `ml.train`."""

    runtime: Runtime
    checkpoint_every: int
    share: threads.Share | None = None
    # a search's trial: asked after every round whether to stop (raises TrialPruned)
    pruner: Callable[[int, list[dict[str, Any]]], None] | None = None
    # and at most one checkpoint per this many seconds (settings.checkpoint_min_interval_s)
    checkpoint_min_interval_s: float = 0.0
    clock: Callable[[], float] = time.monotonic
    _jobs: int | None = None  # trainings sharing the worker at the last count
    _total: int | None = None  # the job's rounds, as the last progress report said
    _first: tuple[float, int] | None = None  # when the job's first round ended, and its number
    _saved_at: float = 0.0  # the last checkpoint, or the first round

    def threads(self) -> int | None:
        """The worker's thread budget decides; without one, the `nthread` parameter or
        XGBoost's default. An event says so when the job starts sharing the worker's cores
        or has its `nthread` lowered, and whenever the number of trainings sharing them
        changes (a lone job on all cores writes none; changes that follow the machine's
        load alone are not events, they may come every few rounds)."""
        if self.share is None:
            return None
        got = self.share.current()
        requested = self.share.requested
        if self._jobs is None:
            tell = got.jobs > 1 or (requested is not None and requested > got.threads)
        else:
            tell = got.jobs != self._jobs
        if tell:
            self.runtime.event("threads", threads.describe(got, requested))
        self._jobs = got.jobs
        return got.threads

    def on_round(self, round: int, total: int, metrics: dict[str, float]) -> None:
        if self._first is None:
            self._first = (self.clock(), round)
            self._saved_at = self._first[0]
        self._total = total
        self.runtime.progress(
            round=round, total=total, metrics=metrics, message=f"round {round}/{total}"
        )
        if self.pruner is not None:
            self.pruner(round, self.runtime.history)

    def checkpoint(self, booster: xgb.Booster, round: int) -> None:
        """Not after the last round, nor when the rounds left should end the job within one
        interval: the model itself is stored then, and the checkpoint would be among the
        job's largest, written to be deleted (a 200-round job on nycflights13 serialized 38 MB
        on its training thread for one). A crash costs at most two intervals of work then."""
        if not self.checkpoint_every or round % self.checkpoint_every or round == self._total:
            return
        now = self.clock()
        interval = self.checkpoint_min_interval_s
        if now - self._saved_at < interval or self._seconds_left(round, now) < interval:
            return
        self.runtime.save_checkpoint(bundle.booster_bytes(booster), round)
        self._saved_at = self.clock()

    def _seconds_left(self, round: int, now: float) -> float:
        """The rounds left at the pace of this job's rounds so far."""
        if self._first is None or self._total is None or round <= self._first[1]:
            return float("inf")
        first_at, first = self._first
        return (self._total - round) * (now - first_at) / (round - first)


def _hooks(runtime: Runtime, share: threads.Share | None = None) -> _Hooks:
    """A job's training hooks, checkpointing as the worker's settings say (every training
    path: in memory, external memory, Dask)."""
    settings = runtime.context.settings
    return _Hooks(
        runtime,
        settings.checkpoint_every,
        share,
        checkpoint_min_interval_s=settings.checkpoint_min_interval_s,
    )


class TrainKind:
    job_type = "train"

    def prepare(
        self, session: Session, settings: Settings, user_id: str, request: dict[str, Any]
    ) -> Job:
        claimed = request.get("user_id")
        if claimed is not None and claimed != user_id:
            raise Forbidden("user_id does not match the API key's user")
        config = {k: v for k, v in request.items() if k != "user_id"}
        job = prepare_train(session, settings, user_id, config)
        params.check_feature_names(job.config["features"])
        return job

    def run(self, context: Context, job: Job, runtime: Runtime) -> Outcome:
        cfg = job.config
        spec = train_spec(cfg)
        with context.db.session() as session:
            dataset = datasets.get_owned(session, job.user_id, cfg["dataset_id"])
            parent = (
                get_model(session, job.user_id, cfg["parent_model_id"])
                if cfg.get("parent_model_id")
                else None
            )
        if parent is not None:
            # a retrain weighs, groups and censors as its parent did (the model file says how,
            # even when the parent's job record is gone)
            spec = replace(spec, **load_bundle(context, parent).roles)  # type: ignore[arg-type]
        columns = [*spec.features, spec.target, *spec_roles(spec)]
        if (cfg.get("external_memory") or cfg.get("distributed")) and parent is None:
            trial_data.drop()
            module = on_dask if cfg.get("distributed") else external
            trained = module.run(context, job, runtime, dataset, spec, columns, _hooks)
            report_screening(runtime, trained.result)
            return self.register_model(
                context, job, runtime, dataset, None, spec, trained.result, trained.sample
            )
        # this worker's own limit decides, before anything is loaded
        memory.check_fits(
            context.settings, dataset.row_count, len(columns), bool(cfg.get("external_memory"))
        )
        runtime.progress(percent=0, message="loading data", force=True)
        trial = job.parent_job_id is not None and "trial" in cfg
        frame, reuse = trial_data.load(
            context, job, dataset, columns, reusable=trial and parent is None
        )
        init = self._init(context, runtime, job, spec, frame, parent)
        with threads.registered(job.id, spec.params.get("nthread")) as share:
            hooks = _hooks(runtime, share)
            if trial:
                from xgenerator.jobs.search import TrialPruning

                hooks.pruner = TrialPruning(context, job)
            result = train(frame, spec, hooks, init=init, reuse=reuse)
        report_screening(runtime, result)
        return self.register_model(context, job, runtime, dataset, parent, spec, result, frame)

    def _init(
        self,
        context: Context,
        runtime: Runtime,
        job: Job,
        spec: TrainSpec,
        frame: pd.DataFrame,
        parent: Model | None,
    ) -> InitModel | None:
        """Where boosting starts: this job's checkpoint (a retried attempt), else the parent
        model (a retrain), else nothing."""
        parent_bundle = load_bundle(context, parent) if parent else None
        saved = runtime.load_checkpoint()
        if saved is not None:
            booster = bundle.load_booster(saved)
            done = booster.num_boosted_rounds() - (parent.num_boost_round if parent else 0)
            if parent_bundle is not None:
                encoding = Encoding(parent_bundle.features, parent_bundle.labels, [])
            else:
                encoding = fresh_encoding(frame, spec)
            earlier = runtime.resume_history(
                done, bool(spec.early_stopping_rounds), inexact_resume(spec.params)
            )
            return InitModel(
                booster=booster,
                features=encoding.features,
                labels=encoding.labels,
                rounds_done=done,
                excluded=encoding.excluded,
                history=earlier,
            )
        if parent_bundle is not None:
            return InitModel(
                booster=parent_bundle.booster,
                features=parent_bundle.features,
                labels=parent_bundle.labels,
                rounds_done=0,
            )
        return None

    def register_model(
        self,
        context: Context,
        job: Job,
        runtime: Runtime,
        dataset: Dataset,
        parent: Model | None,
        spec: TrainSpec,
        result: TrainResult,
        frame: pd.DataFrame,
    ) -> Outcome:
        """Store the model file and build the model row, committed with the job's success.

        `frame` is the training data: a sample of it gives the model's SHAP importance."""
        packed = ModelBundle(
            booster=result.booster,
            task_type=spec.task_type,
            target=spec.target,
            features=result.features,
            labels=result.labels,
            objective=str(result.params["objective"]),
            quantiles=_quantiles(result.params),
            roles={k: v for k in ROLE_CONFIG if (v := getattr(spec, k)) is not None},
        )
        trial = job.parent_job_id is not None
        # a trial knows whether it leads its search only once its success is committed
        later = trial or context.settings.shap_summary_after_success
        shap = None if later else _shap_summary(runtime, frame, spec, result)
        key = context.store.new_key("models", ".ubj")
        context.store.put_bytes(key, bundle.dumps(packed))
        model = Model(
            id=uuid.uuid4().hex,
            user_id=job.user_id,
            job_id=job.id,
            name=job.model_name or "model",
            task_type=spec.task_type,
            target=spec.target,
            features=[f.to_dict() for f in result.features],
            params=result.params,
            # the runtime's history spans attempts; result.history only this attempt's rounds
            metrics=result.metrics,
            history=runtime.history or result.history,
            labels=result.labels.classes if result.labels else None,
            excluded_features=[e.to_dict() for e in result.excluded],
            dropped_rows=result.dropped_rows,
            importance=None if shap is None else {"shap": shap},
            dataset_id=dataset.id,
            parent_model_id=parent.id if parent else None,
            row_count=dataset.row_count,
            num_boost_round=result.num_boost_round,
            storage_key=key,
            xgboost_version=xgb.__version__,
        )
        training_duration = round(runtime_seconds(job), 3)
        return Outcome(
            result={
                "model_id": model.id,
                "metrics": result.metrics,
                "training_duration": training_duration,
                "best_iteration": result.best_iteration,
                "excluded_features": [e.to_dict() for e in result.excluded],
                "dropped_rows": result.dropped_rows,
            },
            model_id=model.id,
            commit=lambda session: _record(session, model),
            artifact_keys=[key],
            then=(lambda: _summarize(context, runtime, job, model.id, frame, spec, result))
            if later
            else None,
        )


# A search's trial summarizes SHAP on this many rows: its training is often a fraction of a
# second, and the pool process is busy until the summary is kept. The summary says how many
# rows it read.
TRIAL_SHAP_ROWS = 200


def _summarize(
    context: Context,
    runtime: Runtime,
    job: Job,
    model_id: str,
    frame: pd.DataFrame,
    spec: TrainSpec,
    result: TrainResult,
) -> None:
    """The work after a success: the model's SHAP summary. A search's trial keeps one only
    when it leads the search as it ends (so the search's best always has one): summaries of
    losing trials cost the next trials CPU (up to 0.5 s each for depth-8 trees here) while
    nobody looks at them."""
    if job.parent_job_id is None:
        _keep_shap_summary(context, runtime, model_id, frame, spec, result, None)
        return
    from xgenerator.jobs import search

    if search.leads(context, job):
        _keep_shap_summary(context, runtime, model_id, frame, spec, result, TRIAL_SHAP_ROWS)
        return
    with context.db.session() as session:
        repository.add_event(
            session,
            runtime.job_id,
            "shap_summary_skipped",
            JobStatus.SUCCEEDED,
            "no SHAP summary: this trial did not lead its search when it ended (every trial "
            "that did has one, the search's best included)",
            runtime.attempt,
        )


def _shap_summary(
    runtime: Runtime,
    frame: pd.DataFrame,
    spec: TrainSpec,
    result: TrainResult,
    max_rows: int | None = None,
    status: JobStatus = JobStatus.RUNNING,
) -> dict[str, Any] | None:
    """The SHAP summary on a sample of the rows the model learned from. A failure costs the
    summary (said in an event), never the trained model."""
    learned = frame[frame[spec.target].notna()]
    sample = {} if max_rows is None else {"max_rows": max_rows}
    try:
        return explain.shap_importance(
            result.booster, result.features, learned, seed=spec.seed, **sample
        )
    except (InvalidInput, ValueError, MemoryError, xgb.core.XGBoostError) as exc:
        details = getattr(exc, "details", None)
        why = f"{exc} {details}" if details else str(exc)
        runtime.event("shap_summary_failed", f"no SHAP summary: {why}"[:2000], status)
        return None


@contextmanager
def summary_threads(key: str, booster: xgb.Booster) -> Iterator[int | None]:
    """The booster predicts on its share of the worker's thread budget, registered under
    `key` for the block; None (XGBoost decides) outside a worker."""
    with threads.registered(key) as share:
        if share is None:
            yield None
            return
        n = share.take().threads
        booster.set_param({"nthread": n})
        yield n


def _keep_shap_summary(
    context: Context,
    runtime: Runtime,
    model_id: str,
    frame: pd.DataFrame,
    spec: TrainSpec,
    result: TrainResult,
    max_rows: int | None,
) -> None:
    """After the success (`Outcome.then`): the summary onto the model, with an event.

    The job has ended, so the worker may already run the next one (a search's next trial is
    scheduled at once): the summary takes its threads from the worker's budget like a
    training, or the two would spin on more threads than there are cores."""
    started = time.perf_counter()
    with summary_threads(f"{runtime.job_id}:shap", result.booster) as n:
        summary = _shap_summary(runtime, frame, spec, result, max_rows, JobStatus.SUCCEEDED)
    if summary is None:
        return
    took = time.perf_counter() - started
    on = "" if n is None else f" on {n} thread{'s' if n != 1 else ''}"
    with context.db.session() as session:
        session.execute(
            update(Model).where(Model.id == model_id).values(importance={"shap": summary})
        )
        repository.add_event(
            session,
            runtime.job_id,
            "shap_summary",
            JobStatus.SUCCEEDED,
            f"SHAP summary of {summary['rows']:,} rows kept on the model ({took:.2f} s{on})",
            runtime.attempt,
        )


class Screened(Protocol):
    """What training (or cross-validation) left out."""

    @property
    def excluded(self) -> list[Excluded]: ...

    @property
    def dropped_rows(self) -> dict[str, int]: ...


def report_screening(runtime: Runtime, result: Screened) -> None:
    """Nothing is left out silently: an event for columns and for rows the model did not use."""
    if result.excluded:
        listed = "; ".join(f"{e.name} ({e.reason}: {e.detail})" for e in result.excluded)
        runtime.event("features_excluded", f"columns not used: {listed}"[:2000])
    dropped = result.dropped_rows.get("missing_target", 0)
    if dropped:
        runtime.event("rows_dropped", f"{dropped:,} rows without a target value were not used")


def _record(session: Session, model: Model) -> None:
    """In the transaction that marks the job succeeded: the model and its version number."""
    versions.assign_version(session, model)
    session.add(model)


def _quantiles(xgb_params: dict[str, object]) -> list[float] | None:
    alphas = xgb_params.get("quantile_alpha")
    if xgb_params.get("objective") != "reg:quantileerror" or not isinstance(alphas, list):
        return None
    return [float(a) for a in alphas]


def runtime_seconds(job: Job) -> float:
    return (utcnow() - job.started_at).total_seconds() if job.started_at else 0.0


class RetrainKind(TrainKind):
    job_type = "retrain"

    def prepare(
        self, session: Session, settings: Settings, user_id: str, request: dict[str, Any]
    ) -> Job:
        return prepare_retrain(session, settings, user_id, request["model_id"], request)


register(TrainKind())
register(RetrainKind())
