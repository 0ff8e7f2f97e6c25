"""Model files: XGBoost's own UBJSON format with XGenerator's metadata inside, never pickle.

A model file may come back from a blob store that someone else can write to, so loading it
must not be able to run code: pickle could, XGBoost's JSON/UBJSON parser cannot. Anything
that does not look like one (first byte ``{``) is refused before XGBoost even parses it.
The metadata (features with their frozen categories, class labels) travels in a booster
attribute, so one file is the whole model and cannot drift from its metadata.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import xgboost as xgb

from xgenerator.errors import InvalidInput
from xgenerator.ml.features import Feature, model_columns
from xgenerator.ml.labels import LabelEncoding
from xgenerator.ml.params import TASK_TYPES, TaskType

METADATA_ATTR = "xgenerator"
ROLE_KEYS = frozenset({"weight_column", "group_column", "event_column", "rank_k"})
FORMAT_VERSION = 1


@dataclass
class ModelBundle:
    """Everything prediction needs, loaded from one model file.

    `quantiles` (the `quantile_alpha` of a quantile regression) shape its output: one value
    per level; `objective` says what a survival model predicts (risk or time). `roles` are
    the training's role columns (`weight_column`, `group_column`, `event_column`, `rank_k`),
    which a retrain reuses."""

    booster: xgb.Booster
    task_type: TaskType
    target: str
    features: list[Feature]
    labels: LabelEncoding | None
    objective: str | None = None
    quantiles: list[float] | None = None
    roles: dict[str, str | int] = field(default_factory=dict)


def dumps(bundle: ModelBundle) -> bytes:
    """The model file; sets the metadata attribute on `bundle.booster` as a side effect."""
    metadata = {
        "format": FORMAT_VERSION,
        "task_type": bundle.task_type,
        "target": bundle.target,
        "features": [f.to_dict() for f in bundle.features],
        "labels": None if bundle.labels is None else bundle.labels.to_dict(),
        "objective": bundle.objective,
        "quantiles": bundle.quantiles,
        "roles": bundle.roles,
    }
    bundle.booster.set_attr(**{METADATA_ATTR: json.dumps(metadata, allow_nan=False)})
    return booster_bytes(bundle.booster)


def loads(data: bytes) -> ModelBundle:
    """Parse a model file written by `dumps`; anything else is InvalidInput."""
    booster = load_booster(data)
    raw = booster.attr(METADATA_ATTR)
    if raw is None:
        raise InvalidInput("not an XGenerator model file: metadata is missing")
    try:
        metadata = json.loads(raw)
    except ValueError as exc:
        raise InvalidInput("model metadata is not valid JSON") from exc
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_VERSION:
        raise InvalidInput("unsupported model metadata format")
    task_type, target = metadata.get("task_type"), metadata.get("target")
    raw_features = metadata.get("features")
    if task_type not in TASK_TYPES or not isinstance(target, str):
        raise InvalidInput("invalid model metadata")
    if not isinstance(raw_features, list) or not raw_features:
        raise InvalidInput("invalid model metadata: no features")
    features = [Feature.from_dict(f) for f in raw_features]
    raw_labels = metadata.get("labels")
    labels = None if raw_labels is None else LabelEncoding.from_dict(raw_labels)
    if (task_type == "classification") != (labels is not None):
        raise InvalidInput("invalid model metadata: labels do not fit the task type")
    if booster.feature_names is not None and booster.feature_names != model_columns(features):
        raise InvalidInput("model metadata does not match the booster's features")
    objective, quantiles = metadata.get("objective"), metadata.get("quantiles")
    if objective is not None and not isinstance(objective, str):
        raise InvalidInput("invalid model metadata: objective")
    if quantiles is not None and not (
        isinstance(quantiles, list)
        and quantiles
        and all(isinstance(q, float) and 0 < q < 1 for q in quantiles)
    ):
        raise InvalidInput("invalid model metadata: quantiles")
    roles = metadata.get("roles") or {}
    if not isinstance(roles, dict) or not all(
        k in ROLE_KEYS and isinstance(v, str | int) and not isinstance(v, bool)
        for k, v in roles.items()
    ):
        raise InvalidInput("invalid model metadata: roles")
    return ModelBundle(booster, task_type, target, features, labels, objective, quantiles, roles)


def booster_bytes(booster: xgb.Booster) -> bytes:
    """A booster alone in UBJSON, e.g. for a training checkpoint."""
    return bytes(booster.save_raw(raw_format="ubj"))


def load_booster(data: bytes) -> xgb.Booster:
    """Parse UBJSON or JSON model bytes; anything else is InvalidInput, never unpickled."""
    if not isinstance(data, bytes | bytearray) or not data[:1] == b"{":
        raise InvalidInput("not an XGBoost JSON/UBJSON model file")
    booster = xgb.Booster()
    try:
        booster.load_model(bytearray(data))
    except xgb.core.XGBoostError as exc:
        raise InvalidInput("corrupt XGBoost model file") from exc
    return booster
