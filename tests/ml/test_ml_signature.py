"""The signature says what a model reads and answers, from its frozen coding."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd

from tests.ml.conftest import fit
from xgenerator.ml.signature import signature


def test_outputs_follow_the_task(
    frame: pd.DataFrame, features: list[str], fast_params: Any
) -> None:
    regression = fit(frame, "value", features, fast_params)
    described = signature(regression, max_categories=1)
    assert described["outputs"] == {"choices": ["margin", "contributions"], "prediction": "value"}
    cat = next(c for c in described["inputs"] if c["kind"] == "categorical")
    assert len(cat["categories"]) == 1 and cat["category_count"] > 1
    assert [c["name"] for c in described["inputs"]] == [f.name for f in regression.features]
    levels = signature(replace(regression, quantiles=[0.1, 0.9]))["outputs"]
    assert levels["prediction"] == "quantiles" and levels["quantiles"] == ["0.1", "0.9"]
    aft = signature(replace(regression, task_type="survival", objective="survival:aft"))
    assert aft["outputs"]["prediction"] == "time"
    classifier = signature(fit(frame, "yes_no", features, fast_params))["outputs"]
    assert classifier["prediction"] == "label" and classifier["classes"] == ["no", "yes"]
