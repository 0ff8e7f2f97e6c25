"""Monotone and interaction constraints given by column name, mapped to model positions.

Users name dataset columns; XGBoost wants positions in the model frame, whose columns are
not the dataset's (a date-time column becomes several parts). Only numeric features can be
constrained: a monotone order has no meaning on category codes or on a date split in parts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from xgenerator.errors import TrainingFailed
from xgenerator.ml.features import Feature, model_columns

MonotoneSpec = dict[str, int]
InteractionSpec = list[list[str]]


def check_monotone_shape(value: object) -> MonotoneSpec:
    """`{column: 1 | -1 | 0}`; raises ValueError (a params error) otherwise."""
    if not isinstance(value, dict) or not value:
        raise ValueError("must be a non-empty object {column: 1 | -1}")
    out: MonotoneSpec = {}
    for column, direction in value.items():
        if isinstance(direction, bool) or direction not in (-1, 0, 1):
            raise ValueError(f"{column!r}: the direction must be 1, -1 or 0")
        out[column] = int(direction)
    return out


def check_interaction_shape(value: object) -> InteractionSpec:
    """`[[column, ...], ...]`: non-empty lists of distinct column names."""
    if not isinstance(value, list) or not value:
        raise ValueError("must be a non-empty list of lists of column names")
    out: InteractionSpec = []
    for group in value:
        if (
            not isinstance(group, list)
            or not group
            or not all(isinstance(c, str) for c in group)
            or len(set(group)) != len(group)
        ):
            raise ValueError("each group must be a non-empty list of distinct column names")
        out.append(list(group))
    return out


def constrained_columns(params: Mapping[str, object]) -> list[str]:
    """Every column a constraint names, in order of first mention."""
    names: dict[str, None] = {}
    monotone = params.get("monotone_constraints")
    if isinstance(monotone, dict):
        names.update(dict.fromkeys(str(c) for c in monotone))
    interaction = params.get("interaction_constraints")
    if isinstance(interaction, list):
        for group in interaction:
            names.update(dict.fromkeys(str(c) for c in group))
    return list(names)


def constraint_errors(params: Mapping[str, object], kinds: Mapping[str, str]) -> dict[str, str]:
    """Columns a constraint may not name: `kinds` maps each feature to its kind."""
    errors: dict[str, str] = {}
    for column in constrained_columns(params):
        kind = kinds.get(column)
        if kind is None:
            errors[column] = "is not a feature of this model"
        elif kind != "numeric":
            errors[column] = f"is {kind}: only numeric features can be constrained"
    return errors


def to_positions(params: Mapping[str, object], features: Sequence[Feature]) -> dict[str, object]:
    """A copy of `params` with the constraints as XGBoost reads them, by model position.

    A constrained column that training left out (all missing, constant) fails the job:
    dropping the constraint would silently train another model than the one asked for.
    """
    monotone = params.get("monotone_constraints")
    interaction = params.get("interaction_constraints")
    if monotone is None and interaction is None:
        return dict(params)
    errors = constraint_errors(params, {f.name: f.kind for f in features})
    if errors:
        raise TrainingFailed(
            "ConstrainedColumnUnusable",
            "a constrained column is not a numeric feature of the model",
            {"columns": errors},
        )
    columns = model_columns(features)
    position = {name: i for i, name in enumerate(columns)}
    out = dict(params)
    if isinstance(monotone, dict):
        vector = [0] * len(columns)
        for column, direction in monotone.items():
            vector[position[column]] = int(direction)
        out["monotone_constraints"] = "(" + ",".join(map(str, vector)) + ")"
    if isinstance(interaction, list):
        groups = [[position[c] for c in group] for group in interaction]
        out["interaction_constraints"] = str(groups)
    return out
