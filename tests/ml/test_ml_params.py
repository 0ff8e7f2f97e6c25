"""The XGBoost parameter allow-list."""

from __future__ import annotations

import pytest

from xgenerator.errors import InvalidInput
from xgenerator.ml.params import ALLOWED_PARAMS, validate_params, wants_gpu


def errors_of(params: dict[str, object], task: str = "classification", **kw: int) -> dict[str, str]:
    with pytest.raises(InvalidInput) as info:
        validate_params(params, task, **kw)
    assert info.value.message == "invalid xgb_params"
    assert info.value.details is not None
    errors: dict[str, str] = info.value.details["errors"]
    return errors


def test_valid_params_are_normalized_to_native_names_and_types() -> None:
    params = {
        "learning_rate": 1,
        "max_depth": 6.0,
        "reg_lambda": 2,
        "random_state": 7,
        "subsample": 0.5,
        "eval_metric": ["logloss", "auc"],
        "device": "cuda:1",
        "tree_method": "approx",
        "grow_policy": "lossguide",
        "objective": "multi:softprob",
    }
    out = validate_params(params, "classification")
    assert out == {
        "eta": 1.0,
        "max_depth": 6,
        "lambda": 2.0,
        "seed": 7,
        "subsample": 0.5,
        "eval_metric": ["logloss", "auc"],
        "device": "cuda:1",
        "tree_method": "approx",
        "grow_policy": "lossguide",
        "objective": "multi:softprob",
    }
    assert type(out["eta"]) is float and type(out["max_depth"]) is int
    assert params["learning_rate"] == 1  # the input is not modified


def test_every_problem_is_reported_at_once() -> None:
    params: dict[str, object] = {
        "max_depht": 3,
        "eta": 0,
        "subsample": 1.5,
        "max_depth": True,
        "nthread": 2.5,
        "max_bin": "64",
        "gamma": float("nan"),
        "num_class": 3,
    }
    errors = errors_of(params)
    assert set(errors) == set(params)
    assert errors["max_depht"] == "unknown parameter"
    assert errors["eta"] == "must be in (0, 1]"
    assert errors["max_depth"] == "must be an integer"  # a bool is not an int
    assert errors["gamma"] == "must be finite"
    assert "automatically" in errors["num_class"]


@pytest.mark.parametrize("value", [True, False])
def test_bool_is_not_a_number(value: bool) -> None:
    assert set(errors_of({"eta": value, "nthread": value})) == {"eta", "nthread"}


def test_max_depth_limit() -> None:
    assert validate_params({"max_depth": 16}, "regression") == {"max_depth": 16}
    assert errors_of({"max_depth": 17})["max_depth"] == "must be in [1, 16]"
    assert validate_params({"max_depth": 20}, "regression", max_depth_limit=20)["max_depth"] == 20
    assert "max_depth" in errors_of({"max_depth": 0})


@pytest.mark.parametrize(
    ("task", "objective", "ok"),
    [
        ("classification", "binary:logistic", True),
        ("classification", "multi:softprob", True),
        ("classification", "reg:squarederror", False),
        ("regression", "reg:tweedie", True),
        ("regression", "count:poisson", True),
        ("regression", "binary:logistic", False),
        ("regression", "multi:softmax", False),
    ],
)
def test_objective_must_fit_the_task(task: str, objective: str, ok: bool) -> None:
    if ok:
        assert validate_params({"objective": objective}, task) == {"objective": objective}
    else:
        assert task in errors_of({"objective": objective}, task)["objective"]


def test_exact_tree_method_is_refused_with_a_reason() -> None:
    assert "categorical" in errors_of({"tree_method": "exact"})["tree_method"]


def test_choices_and_metrics() -> None:
    errors = errors_of(
        {"device": "cuda:8", "grow_policy": "random", "eval_metric": ["logloss", "nope"]}
    )
    assert set(errors) == {"device", "grow_policy", "eval_metric"}
    assert "nope" in errors["eval_metric"]
    assert "eval_metric" in errors_of({"eval_metric": []})
    assert "eval_metric" in errors_of({"eval_metric": ["auc", "auc"]})


def test_alias_and_native_name_together_are_refused() -> None:
    assert "alias" in errors_of({"eta": 0.1, "learning_rate": 0.2})["learning_rate"]


def test_base_score_must_fit_the_objective() -> None:
    params = {"objective": "binary:logistic", "base_score": 1.5}
    assert "base_score" in errors_of(params)
    assert "base_score" in errors_of({"objective": "reg:gamma", "base_score": 0}, "regression")
    assert validate_params({"base_score": -3}, "regression") == {"base_score": -3.0}


def test_unknown_task_type() -> None:
    with pytest.raises(InvalidInput):
        validate_params({}, "clustering")


def test_every_allowed_param_is_documented_by_its_kind() -> None:
    for name, spec in ALLOWED_PARAMS.items():
        assert spec.kind in {
            "float",
            "int",
            "choice",
            "metrics",
            "alphas",
            "monotone",
            "interaction",
        }, name
        if spec.kind in {"choice", "metrics"}:
            assert spec.choices, name


def test_wants_gpu() -> None:
    assert wants_gpu({"device": "cuda"})
    assert wants_gpu({"device": "cuda:3"})
    assert not wants_gpu({"device": "cpu"})
    assert not wants_gpu({})
