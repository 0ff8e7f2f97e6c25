"""A training request, checked before its job exists, and the spec a worker trains from.

Everything knowable at submission is checked here (features against the dataset's schema,
parameters, the cost budget, role columns and constraints): a bad request is a 422 and no job,
never a failure on a worker.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy.orm import Session

from xgenerator.artifacts.store import open_store
from xgenerator.datasets import repository as datasets
from xgenerator.db.tables import Dataset, Job
from xgenerator.errors import InvalidInput
from xgenerator.jobs.kinds import memory
from xgenerator.jobs.kinds.derived import open_parquet
from xgenerator.jobs.kinds.train_checks import (
    check_constraints,
    check_role_values,
    check_roles,
    role_columns,
)
from xgenerator.jobs.queues import Queue
from xgenerator.ml import cost, params
from xgenerator.ml.ranking import DEFAULT_K as RANK_K
from xgenerator.ml.train import EVAL_TRAIN_EVERY, TrainSpec
from xgenerator.models.repository import get_owned as get_model
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


def training_budget(settings: Settings) -> cost.Budget:
    return cost.Budget(
        max_leaves=settings.max_training_leaves,
        max_histogram_bytes=settings.max_training_histogram_mb * 2**20,
    )


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
    # Classes are not known before the data is read: one here, all of them on the worker.
    budget = training_budget(settings)
    estimate = cost.estimate(
        checked, len(features), config["num_boost_round"], rows=dataset.row_count
    )
    cost.check(estimate, budget)
    if config.get("external_memory"):
        external_checks(task_type, config)
    on_dask = dask_choice(settings, dataset.row_count, task_type, config)
    memory.check_fits(
        settings,
        dataset.row_count,
        len(features) + 1 + len(role_columns(config)),
        bool(config.get("external_memory")) or on_dask is not None,
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
        "cost_budget": asdict(budget),
        "xgb_params": checked,
        # what the service decided, and why: the request, or the dataset's size
        "distributed": on_dask is not None,
        **({"distributed_by": on_dask} if on_dask else {}),
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


def external_checks(
    task_type: str, config: dict[str, Any], option: str = "external_memory"
) -> None:
    """What external-memory (and distributed) training does not do yet: a 422 at
    submission, not a failed job."""
    if task_type not in ("classification", "regression"):
        raise InvalidInput(
            f"{option} trains classification and regression models only",
            {"task_type": task_type, "option": option},
        )
    if role_columns(config):
        raise InvalidInput(
            f"{option} does not support weight, group or event columns yet",
            {"columns": role_columns(config), "option": option},
        )


def dask_choice(
    settings: Settings, rows: int, task_type: str, config: dict[str, Any]
) -> str | None:
    """Whether the job trains on the Dask cluster, and why: "request" ("distributed": true),
    "size" (at least XGEN_DASK_MIN_ROWS rows, and a training Dask can do), or None."""
    asked = config.get("distributed")
    if asked:
        if not settings.dask_scheduler:
            raise InvalidInput(
                '"distributed": true needs a Dask cluster, and this service has none '
                "(the operator sets XGEN_DASK_SCHEDULER); leave it out to train on one worker",
                {"option": "distributed", "setting": "XGEN_DASK_SCHEDULER"},
            )
        if config.get("external_memory"):
            raise InvalidInput(
                "distributed and external_memory are two ways to train one model; choose one",
                {"options": ["distributed", "external_memory"]},
            )
        external_checks(task_type, config, "distributed")
        return "request"
    big = settings.dask_min_rows is not None and rows >= settings.dask_min_rows
    supported = task_type in ("classification", "regression") and not role_columns(config)
    if asked is None and settings.dask_scheduler and big and supported:
        return None if config.get("external_memory") else "size"
    return None


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
        eval_every=cfg.get("eval_every"),
        # jobs submitted before the exclusion rules existed used their features as given
        features_forced=cfg.get("features_forced", True),
        max_category_levels=cfg.get("max_category_levels"),
        weight_column=cfg.get("weight_column"),
        group_column=cfg.get("group_column"),
        event_column=cfg.get("event_column"),
        rank_k=cfg.get("rank_k") or RANK_K,
        cost_budget=cost.Budget(**cfg["cost_budget"]) if cfg.get("cost_budget") else None,
    )
