"""Submission checks of a training request's role columns and constraints.

Weight, group (ranking) and event (survival) columns, and the columns that
`monotone_constraints` / `interaction_constraints` name, are checked against the dataset's
schema before a job exists: each mistake is a 422 naming the field, never a failure on a worker.
"""

from __future__ import annotations

from typing import Any

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
