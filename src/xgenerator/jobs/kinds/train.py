"""Training and retraining jobs: checked before a job exists, run on a worker through `ml/`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pandas as pd
import xgboost as xgb
from sqlalchemy.orm import Session

from xgenerator.context import Context
from xgenerator.datasets import repository as datasets
from xgenerator.db.tables import Dataset, Job, Model, utcnow
from xgenerator.errors import InvalidInput
from xgenerator.jobs import threads
from xgenerator.jobs.kinds import Outcome, register
from xgenerator.jobs.queues import Queue
from xgenerator.jobs.runtime import Runtime
from xgenerator.ml import bundle, params
from xgenerator.ml.bundle import ModelBundle
from xgenerator.ml.prepare import fresh_encoding
from xgenerator.ml.train import InitModel, TrainResult, TrainSpec, train
from xgenerator.models.repository import CACHE
from xgenerator.models.repository import get_owned as get_model
from xgenerator.settings import Settings

TASK_TYPES = ("classification", "regression")


def queue_for(xgb_params: dict[str, Any]) -> str:
    return Queue.GPU if params.wants_gpu(xgb_params) else Queue.TRAIN


def resolve_features(
    schema: dict[str, Any],
    target: str,
    features: list[str] | None,
    exclude: list[str] | None,
) -> list[str]:
    """The feature columns, checked against the dataset schema (422 naming what is wrong)."""
    kinds = {c["name"]: c["kind"] for c in schema["columns"]}
    if target not in kinds:
        raise InvalidInput(
            f"target {target!r} is not a column of the dataset",
            {"column": target, "available": list(kinds)},
        )
    asked = list(features) if features else None
    unknown = [c for c in (asked or []) + list(exclude or []) if c not in kinds]
    if unknown:
        raise InvalidInput(
            f"unknown columns: {', '.join(unknown)}", {"unknown": unknown, "available": list(kinds)}
        )
    if asked is not None and target in asked:
        raise InvalidInput("the target cannot also be a feature", {"column": target})
    if asked is not None and len(set(asked)) != len(asked):
        raise InvalidInput("features are listed twice", {"features": asked})
    if asked is None:
        # datetimes are left out by default: XGBoost needs them turned into numbers first
        asked = [c for c, k in kinds.items() if c != target and k != "datetime"]
    chosen = [c for c in asked if c not in set(exclude or [])]
    unusable = [c for c in chosen if kinds[c] == "datetime"]
    if unusable:
        raise InvalidInput("datetime columns cannot be features yet", {"columns": unusable})
    if not chosen:
        raise InvalidInput("no feature columns left to train on", None)
    return chosen


def check_common(
    settings: Settings, task_type: str, xgb_params: dict[str, Any], num_boost_round: int
) -> dict[str, Any]:
    if num_boost_round > settings.max_num_boost_round:
        raise InvalidInput(
            f"num_boost_round is limited to {settings.max_num_boost_round}",
            {"limit": settings.max_num_boost_round},
        )
    return params.validate_params(xgb_params, task_type, max_depth_limit=settings.max_depth_limit)


def prepare_train(
    session: Session, settings: Settings, user_id: str, config: dict[str, Any]
) -> Job:
    """Everything checkable without training, before a job row exists."""
    dataset = datasets.get_owned(session, user_id, config["dataset_id"])
    task_type = config["task_type"]
    features = resolve_features(
        dataset.schema, config["target"], config.get("features"), config.get("exclude_features")
    )
    if task_type == "regression" and _kind(dataset, config["target"]) != "numeric":
        raise InvalidInput("a regression target must be numeric", {"column": config["target"]})
    checked = check_common(
        settings, task_type, config.get("xgb_params") or {}, config["num_boost_round"]
    )
    train_config = {**config, "features": features, "xgb_params": checked}
    return Job(
        user_id=user_id,
        job_type="train",
        queue=queue_for(checked),
        model_name=config["model_name"],
        dataset_id=dataset.id,
        config=train_config,
    )


def prepare_retrain(
    session: Session, settings: Settings, user_id: str, model_id: str, config: dict[str, Any]
) -> Job:
    parent = get_model(session, user_id, model_id)
    dataset = datasets.get_owned(session, user_id, config["dataset_id"])
    columns = {c["name"] for c in dataset.schema["columns"]}
    missing = [
        c for c in [parent.target, *[f["name"] for f in parent.features]] if c not in columns
    ]
    if missing:
        raise InvalidInput("the dataset lacks columns the model needs", {"missing": missing})
    merged = {**parent.params, **(config.get("xgb_params") or {})}
    checked = check_common(
        settings, parent.task_type, merged, config.get("num_boost_round") or parent.num_boost_round
    )
    train_config = {
        "model_name": parent.name,
        "dataset_id": dataset.id,
        "task_type": parent.task_type,
        "target": parent.target,
        "features": [f["name"] for f in parent.features],
        "exclude_features": None,
        "xgb_params": checked,
        "num_boost_round": config.get("num_boost_round") or parent.num_boost_round,
        "early_stopping_rounds": None,
        "test_size": config.get("test_size") or 0.2,
        "parent_model_id": parent.id,
    }
    return Job(
        user_id=user_id,
        job_type="retrain",
        queue=queue_for(checked),
        model_name=parent.name,
        dataset_id=dataset.id,
        source_model_id=parent.id,
        config=train_config,
    )


def _kind(dataset: Dataset, column: str) -> str:
    return next(str(c["kind"]) for c in dataset.schema["columns"] if c["name"] == column)


@dataclass
class _Hooks:
    """Adapts the job runtime to the training callback of `ml.train`."""

    runtime: Runtime
    checkpoint_every: int
    share: threads.Share | None = None
    _jobs: int | None = None  # trainings sharing the worker at the last count
    _total: int | None = None  # the job's rounds, as the last progress report said

    def threads(self) -> int | None:
        """The worker's thread budget decides; without one, the `nthread` parameter or
        XGBoost's default. An event says so when the job starts sharing the worker's cores
        or has its `nthread` lowered, and whenever the number of trainings sharing them
        changes (a lone job on all cores writes none; changes that follow the machine's
        load alone are not events, they may come every few rounds)."""
        if self.share is None:
            return None
        got = self.share.take()
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
        self._total = total
        self.runtime.progress(
            round=round, total=total, metrics=metrics, message=f"round {round}/{total}"
        )

    def checkpoint(self, booster: xgb.Booster, round: int) -> None:
        # Not after the last round: the model itself is stored right after, and this would
        # be the largest checkpoint of the job, written to be deleted.
        last = round == self._total
        if self.checkpoint_every and round % self.checkpoint_every == 0 and not last:
            self.runtime.save_checkpoint(bundle.booster_bytes(booster), round)


class TrainKind:
    job_type = "train"

    def run(self, context: Context, job: Job, runtime: Runtime) -> Outcome:
        cfg = job.config
        spec = TrainSpec(
            task_type=cfg["task_type"],
            target=cfg["target"],
            features=cfg["features"],
            params=cfg["xgb_params"],
            num_boost_round=cfg["num_boost_round"],
            early_stopping_rounds=cfg.get("early_stopping_rounds"),
            test_size=cfg.get("test_size") or 0.2,
        )
        with context.db.session() as session:
            dataset = datasets.get_owned(session, job.user_id, cfg["dataset_id"])
            parent = (
                get_model(session, job.user_id, cfg["parent_model_id"])
                if cfg.get("parent_model_id")
                else None
            )
        runtime.progress(percent=0, message="loading data", force=True)
        frame = datasets.load_frame(context.store, dataset, columns=[*spec.features, spec.target])
        init = self._init(context, runtime, job, spec, frame, parent)
        with threads.registered(job.id, spec.params.get("nthread")) as share:
            hooks = _Hooks(runtime, context.settings.checkpoint_every, share)
            result = train(frame, spec, hooks, init=init)
        return self._register(context, job, runtime, dataset, parent, spec, result)

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
        parent_bundle = CACHE.load(context.store, parent) if parent else None
        saved = runtime.load_checkpoint()
        if saved is not None:
            booster = bundle.load_booster(saved)
            done = booster.num_boosted_rounds() - (parent.num_boost_round if parent else 0)
            if parent_bundle is not None:
                features, labels = parent_bundle.features, parent_bundle.labels
            else:
                features, labels = fresh_encoding(frame, spec)
            runtime.restore_history(job.history[:done])
            runtime.event("resumed", f"resumed from the checkpoint at round {done}")
            return InitModel(booster=booster, features=features, labels=labels, rounds_done=done)
        if parent_bundle is not None:
            return InitModel(
                booster=parent_bundle.booster,
                features=parent_bundle.features,
                labels=parent_bundle.labels,
                rounds_done=0,
            )
        return None

    def _register(
        self,
        context: Context,
        job: Job,
        runtime: Runtime,
        dataset: Dataset,
        parent: Model | None,
        spec: TrainSpec,
        result: TrainResult,
    ) -> Outcome:
        packed = ModelBundle(
            booster=result.booster,
            task_type=spec.task_type,
            target=spec.target,
            features=result.features,
            labels=result.labels,
        )
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
            },
            model_id=model.id,
            commit=lambda session: session.add(model),
            artifact_keys=[key],
        )


def runtime_seconds(job: Job) -> float:
    return (utcnow() - job.started_at).total_seconds() if job.started_at else 0.0


class RetrainKind(TrainKind):
    job_type = "retrain"


register(TrainKind())
register(RetrainKind())
