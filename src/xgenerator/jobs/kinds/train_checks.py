"""Submission checks of a training request's role columns and constraints.

Weight, group (ranking) and event (survival) columns, and the columns that
`monotone_constraints` / `interaction_constraints` name, are checked against the dataset's
schema before a job exists: each mistake is a 422 naming the field, never a failure on a worker.
"""

from __future__ import annotations

from typing import Any

import pyarrow.parquet as pq

from xgenerator.errors import InvalidInput
from xgenerator.ml.constraints import constraint_errors
from xgenerator.ml.roles import ROLE_FIELDS

# the schema kinds a role column may have (booleans are 0/1 numbers)
NUMERIC_KINDS = ("numeric", "boolean")
REQUIRED_ROLE = {"ranking": "group_column", "survival": "event_column"}
ROLE_TASK = {"group_column": "ranking", "event_column": "survival"}


def role_columns(config: dict[str, Any]) -> list[str]:
    return [config[f] for f in ROLE_FIELDS if config.get(f)]


def check_roles(schema: dict[str, Any], config: dict[str, Any]) -> None:
    """Every role field fits the task and names a distinct, usable column of the dataset."""
    kinds = {c["name"]: c["kind"] for c in schema["columns"]}
    task_type = config["task_type"]
    errors: dict[str, str] = {}
    required = REQUIRED_ROLE.get(task_type)
    if required and not config.get(required):
        errors[required] = f"is required for {task_type}"
    for field_name, task in ROLE_TASK.items():
        if config.get(field_name) and task_type != task:
            errors[field_name] = f"only for task_type {task!r}"
    if task_type == "ranking" and config.get("weight_column"):
        errors["weight_column"] = "is not supported for ranking (XGBoost weighs whole queries)"
    explicit = set(config.get("features") or [])
    seen: set[str] = set()
    for field_name in ROLE_FIELDS:
        column = config.get(field_name)
        if not column or field_name in errors:
            continue
        if column not in kinds:
            errors[field_name] = f"{column!r} is not a column of the dataset"
        elif column == config["target"]:
            errors[field_name] = "cannot be the target"
        elif column in explicit:
            errors[field_name] = "cannot also be a feature"
        elif column in seen:
            errors[field_name] = "is already used by another role"
        elif field_name != "group_column" and kinds[column] not in NUMERIC_KINDS:
            errors[field_name] = f"must be a numeric column, not {kinds[column]}"
        seen.add(column)
    if errors:
        raise InvalidInput("invalid role columns", {"errors": errors})


def check_constraints(
    schema: dict[str, Any], features: list[str], xgb_params: dict[str, Any]
) -> None:
    """Constraints may name only numeric features of this job (the model maps them)."""
    kinds = {c["name"]: c["kind"] for c in schema["columns"]}
    feature_kinds = {
        name: "numeric" if kinds[name] in NUMERIC_KINDS else str(kinds[name]) for name in features
    }
    errors = constraint_errors(xgb_params, feature_kinds)
    if errors:
        raise InvalidInput("invalid constraints in xgb_params", {"columns": errors})


def column_ranges(parquet: pq.ParquetFile, names: list[str]) -> dict[str, tuple[float, float]]:
    """(min, max) of each numeric column over the non-missing values, from the Parquet footer's
    row-group statistics (no data page is read); a column without statistics is left out."""
    metadata = parquet.metadata
    # Parquet's leaf columns by path: the Arrow field index differs once a column is nested
    positions = {metadata.schema.column(i).path: i for i in range(metadata.num_columns)}
    ranges: dict[str, tuple[float, float]] = {}
    for name in names:
        index = positions.get(name)
        if index is None:
            continue
        lows: list[float] = []
        highs: list[float] = []
        for group in range(metadata.num_row_groups):
            stats = metadata.row_group(group).column(index).statistics
            rows = metadata.row_group(group).num_rows
            if stats is None or not stats.has_min_max:
                if stats is not None and stats.null_count == rows:
                    continue  # a row group of nulls only
                break  # values without statistics: the range is unknown
            if not all(isinstance(v, int | float) for v in (stats.min, stats.max)):
                break
            lows.append(float(stats.min))
            highs.append(float(stats.max))
        else:
            if lows:
                ranges[name] = (min(lows), max(highs))
    return ranges


def check_role_values(
    parquet: pq.ParquetFile, schema: dict[str, Any], config: dict[str, Any]
) -> None:
    """What the file's statistics already tell: negative weights, event values outside
    [0, 1], survival times <= 0. (An event of 0.5 or a missing value only the worker sees.)

    Training drops the rows without a target, so weights and events are judged here only
    when the target has no missing value: a bad value on a dropped row fails nothing."""
    nulls = {c["name"]: c.get("null_count", 1) for c in schema["columns"]}
    complete = nulls.get(config["target"]) == 0
    roles = (config.get("weight_column"), config.get("event_column")) if complete else ()
    wanted = [c for c in roles if c]
    if config["task_type"] == "survival":
        wanted.append(config["target"])
    ranges = column_ranges(parquet, wanted)
    errors: dict[str, str] = {}
    weight = ranges.get(config.get("weight_column") or "")
    if weight is not None and weight[0] < 0:
        errors["weight_column"] = f"has negative weights (min {weight[0]:g})"
    event = ranges.get(config.get("event_column") or "")
    if event is not None and (event[0] < 0 or event[1] > 1):
        errors["event_column"] = f"must be 0 or 1, has values in [{event[0]:g}, {event[1]:g}]"
    time = ranges.get(config["target"]) if config["task_type"] == "survival" else None
    if time is not None and time[0] <= 0:
        errors["target"] = f"survival times must be > 0 (min {time[0]:g})"
    if errors:
        raise InvalidInput("invalid values in role columns", {"errors": errors})
