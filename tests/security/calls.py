"""How to call each route of the spec as a user: which object fills each path parameter, and a
valid body per route, so that a request fails on ownership and not on validation."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

from tests.security.spec import Operation
from tests.security.world import ROWS, World

# Which of Alice's objects fills each path parameter; all of her jobs are tried for job_id.
PATH_VALUES: dict[str, list[str]] = {
    "job_id": ["train_job_id", "report_job_id", "artifact_job_id", "queued_job_id"],
    "model_id": ["model_id"],
    "dataset_id": ["dataset_id"],
    "key_id": ["key_id"],
    "name": ["artifact_name"],
    "model_name": ["model_name"],
    "alias": ["alias"],
}
# Per route: the id that makes the owner's control call meaningful, where not the first.
OWNER_CHOICE: dict[tuple[str, str], dict[str, str]] = {
    ("GET", "/jobs/{job_id}/artifacts/{name}"): {"job_id": "artifact_job_id"},
}

# A valid body per route that takes one, so that Bob's request fails on ownership and not on
# validation. `dataset_id` is the caller's own dataset: only the path names Alice's object.
Body = Callable[[World, str], dict[str, Any]]


def no_body(world: World, dataset_id: str) -> dict[str, Any]:
    return {}


BODIES: dict[tuple[str, str], Body] = {
    ("POST", "/models/{model_id}/predict"): lambda w, d: {"rows": ROWS, "log": True},
    ("POST", "/models/{model_id}/invocations"): lambda w, d: {"dataframe_records": ROWS},
    ("POST", "/models/{model_id}/retrain"): lambda w, d: {"dataset_id": d, "num_boost_round": 3},
    ("POST", "/models/{model_id}/predict-batch"): lambda w, d: {"dataset_id": d},
    ("POST", "/datasets/{dataset_id}/process"): lambda w, d: {"operation": "profile"},
    ("POST", "/models/{model_id}/feedback"): lambda w, d: {
        "items": [{"prediction_id": w.ids["prediction_id"], "actual": "yes"}]
    },
    ("POST", "/users/me/keys"): lambda w, d: {"name": "k"},
    # registration is off in these tests: the route answers 403 before reading anything
    ("POST", "/datasets/register"): lambda w, d: {"dataset_name": "r", "uri": "/nowhere"},
    ("PUT", "/registered-models/{model_name}/aliases/{alias}"): lambda w, d: {"version": 1},
    ("POST", "/train"): lambda w, d: {
        "model_name": "m",
        "dataset_id": d,
        "task_type": "classification",
        "target": "label",
        "num_boost_round": 3,
    },
    ("POST", "/cv"): lambda w, d: {
        "model_name": "m",
        "dataset_id": d,
        "task_type": "classification",
        "target": "label",
        "num_boost_round": 3,
        "folds": 2,
    },
    ("POST", "/tune"): lambda w, d: {
        "model_name": "m",
        "dataset_id": d,
        "task_type": "classification",
        "target": "label",
        "num_boost_round": 3,
        "search_space": {"max_depth": {"type": "int", "low": 1, "high": 2}},
        "max_trials": 1,
    },
}


def calls(op: Operation, world: World) -> Iterator[str]:
    """Every URL of `op` with Alice's ids: each combination of her objects."""
    choices = [PATH_VALUES[p] for p in op.path_params]
    for combo in itertools.product(*choices):
        values = {p: world.ids[k] for p, k in zip(op.path_params, combo, strict=True)}
        yield op.path.format(**values)


def owner_url(op: Operation, world: World) -> str:
    chosen = OWNER_CHOICE.get((op.method, op.path), {})
    values = {p: world.ids[chosen.get(p, PATH_VALUES[p][0])] for p in op.path_params}
    return op.path.format(**values)
