"""Training and retraining jobs: checked before a job exists, run on a worker through `ml/`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any, Protocol

import pandas as pd
import xgboost as xgb
from sqlalchemy.orm import Session

from xgenerator.artifacts.store import open_store
from xgenerator.context import Context
from xgenerator.datasets import repository as datasets
from xgenerator.db.tables import Dataset, Job, Model, utcnow
from xgenerator.errors import Forbidden, InvalidInput
from xgenerator.jobs import threads
from xgenerator.jobs.kinds import Outcome, external, memory, register
from xgenerator.jobs.kinds.derived import open_parquet
from xgenerator.jobs.kinds.train_checks import (
    check_constraints,
    check_role_values,
    check_roles,
    role_columns,
)
from xgenerator.jobs.queues import Queue
from xgenerator.jobs.runtime import Runtime
from xgenerator.ml import bundle, explain, params
from xgenerator.ml.bundle import ModelBundle
from xgenerator.ml.prepare import Encoding, fresh_encoding
from xgenerator.ml.prepare import role_columns as spec_roles
from xgenerator.ml.ranking import DEFAULT_K as RANK_K
from xgenerator.ml.selection import Excluded
from xgenerator.ml.train import EVAL_TRAIN_EVERY, InitModel, TrainResult, TrainSpec, train
from xgenerator.models import versions
from xgenerator.models.repository import get_owned as get_model
from xgenerator.models.repository import load_bundle
from xgenerator.settings import Settings

TASK_TYPES = ("classification", "regression", "ranking", "survival")
# request fields that travel from a training job to its retrains
ROLE_CONFIG = ("weight_column", "group_column", "event_column", "rank_k")


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
        # every other column is a candidate; training leaves out (and reports) the unusable
        asked = [c for c in kinds if c != target]
    chosen = [c for c in asked if c not in set(exclude or [])]
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
    check_roles(dataset.schema, config)
    # a role column is never a feature: left out of the default candidates (and reported)
    features = [c for c in features if c not in set(role_columns(config))]
    if not features:
        raise InvalidInput("no feature columns left to train on", None)
    if task_type != "classification" and _kind(dataset, config["target"]) != "numeric":
        raise InvalidInput(f"a {task_type} target must be numeric", {"column": config["target"]})
    checked = check_common(
        settings, task_type, config.get("xgb_params") or {}, config["num_boost_round"]
    )
    check_constraints(dataset.schema, features, checked)
    if config.get("external_memory"):
        external_checks(task_type, config)
    memory.check_fits(
        settings,
        dataset.row_count,
        len(features) + 1 + len(role_columns(config)),
        bool(config.get("external_memory")),
    )
    # a referenced dataset's footers are the user's files: the worker checks its values
    if (role_columns(config) or task_type == "survival") and dataset.source_uri is None:
        with open_parquet(open_store(settings), dataset.storage_key) as parquet:
            check_role_values(parquet, dataset.schema, config)
    train_config = {
        **config,
        "features": features,
        # named features are used as asked; the others go through the exclusion rules
        "features_forced": bool(config.get("features")),
        "max_category_levels": settings.max_category_levels,
        "xgb_params": checked,
    }
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
    parent_job = session.get(Job, parent.job_id)
    roles = {k: parent_job.config.get(k) for k in ROLE_CONFIG} if parent_job else {}
    needed = [parent.target, *[f["name"] for f in parent.features], *role_columns(roles)]
    missing = [c for c in needed if c not in columns]
    if missing:
        raise InvalidInput("the dataset lacks columns the model needs", {"missing": missing})
    merged = {**parent.params, **(config.get("xgb_params") or {})}
    checked = check_common(
        settings, parent.task_type, merged, config.get("num_boost_round") or parent.num_boost_round
    )
    memory.check_fits(settings, dataset.row_count, len(needed), False)
    train_config = {
        "model_name": parent.name,
        "dataset_id": dataset.id,
        "task_type": parent.task_type,
        "target": parent.target,
        "features": [f["name"] for f in parent.features],
        "features_forced": True,
        "exclude_features": None,
        "xgb_params": checked,
        "num_boost_round": config.get("num_boost_round") or parent.num_boost_round,
        "early_stopping_rounds": None,
        "test_size": config.get("test_size") or 0.2,
        "parent_model_id": parent.id,
        **{k: v for k, v in roles.items() if v is not None},
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


def external_checks(task_type: str, config: dict[str, Any]) -> None:
    """What external-memory training does not do yet: a 422 at submission, not a failed job."""
    if task_type not in ("classification", "regression"):
        raise InvalidInput(
            "external_memory trains classification and regression models only",
            {"task_type": task_type},
        )
    if role_columns(config):
        raise InvalidInput(
            "external_memory does not support weight, group or event columns yet",
            {"columns": role_columns(config)},
        )


def _kind(dataset: Dataset, column: str) -> str:
    return next(str(c["kind"]) for c in dataset.schema["columns"] if c["name"] == column)


def train_spec(cfg: dict[str, Any]) -> TrainSpec:
    """The `ml.train` spec of a checked training request (a job's config)."""
    return TrainSpec(
        task_type=cfg["task_type"],
        target=cfg["target"],
        features=cfg["features"],
        params=cfg["xgb_params"],
        num_boost_round=cfg["num_boost_round"],
        early_stopping_rounds=cfg.get("early_stopping_rounds"),
        test_size=cfg.get("test_size") or 0.2,
        eval_train_every=cfg.get("eval_train_every", EVAL_TRAIN_EVERY),
        # jobs submitted before the exclusion rules existed used their features as given
        features_forced=cfg.get("features_forced", True),
        max_category_levels=cfg.get("max_category_levels"),
        weight_column=cfg.get("weight_column"),
        group_column=cfg.get("group_column"),
        event_column=cfg.get("event_column"),
        rank_k=cfg.get("rank_k") or RANK_K,
    )


@dataclass
class _Hooks:
    """Adapts the job runtime to the training callback of `ml.train`."""

    runtime: Runtime
    checkpoint_every: int
    share: threads.Share | None = None
    _jobs: int | None = None  # trainings sharing the worker at the last count

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
        self.runtime.progress(
            round=round, total=total, metrics=metrics, message=f"round {round}/{total}"
        )

    def checkpoint(self, booster: xgb.Booster, round: int) -> None:
        if self.checkpoint_every and round % self.checkpoint_every == 0:
            self.runtime.save_checkpoint(bundle.booster_bytes(booster), round)


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
        if cfg.get("external_memory") and parent is None:
            trained = external.run(context, job, runtime, dataset, spec, columns, _Hooks)
            report_screening(runtime, trained.result)
            return self.register_model(
                context, job, runtime, dataset, None, spec, trained.result, trained.sample
            )
        # this worker's own limit decides, before anything is loaded
        memory.check_fits(
            context.settings, dataset.row_count, len(columns), bool(cfg.get("external_memory"))
        )
        runtime.progress(percent=0, message="loading data", force=True)
        frame = datasets.load_frame(context.store, dataset, columns=columns)
        init = self._init(context, runtime, job, spec, frame, parent)
        with threads.registered(job.id, spec.params.get("nthread")) as share:
            hooks = _Hooks(runtime, context.settings.checkpoint_every, share)
            result = train(frame, spec, hooks, init=init)
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
            runtime.restore_history(job.history[:done])
            runtime.event("resumed", f"resumed from the checkpoint at round {done}")
            return InitModel(
                booster=booster,
                features=encoding.features,
                labels=encoding.labels,
                rounds_done=done,
                excluded=encoding.excluded,
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
        shap = _shap_summary(runtime, frame, spec, result)
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
        )


def _shap_summary(
    runtime: Runtime, frame: pd.DataFrame, spec: TrainSpec, result: TrainResult
) -> dict[str, Any] | None:
    """The SHAP summary on a sample of the rows the model learned from. A failure costs the
    summary (said in an event), never the trained model."""
    learned = frame[frame[spec.target].notna()]
    try:
        return explain.shap_importance(result.booster, result.features, learned, seed=spec.seed)
    except (InvalidInput, ValueError, MemoryError, xgb.core.XGBoostError) as exc:
        details = getattr(exc, "details", None)
        why = f"{exc} {details}" if details else str(exc)
        runtime.event("shap_summary_failed", f"no SHAP summary: {why}"[:2000])
        return None


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
