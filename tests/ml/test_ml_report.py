"""Model reports: metrics recomputed on the training split, plots present, HTML well formed."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from tests.support.reports import outline
from xgenerator.ml.bundle import ModelBundle
from xgenerator.ml.report import ReportData, evaluate, feature_importance, render
from xgenerator.ml.train import TrainResult, TrainSpec, train


def fit(
    frame: pd.DataFrame, target: str, features: list[str], params: Any
) -> tuple[ModelBundle, TrainResult]:
    task: Any = "regression" if target == "value" else "classification"
    result = train(frame, TrainSpec(task, target, features, params, 8, test_size=0.25))
    return ModelBundle(result.booster, task, target, result.features, result.labels), result


def data(
    bundle: ModelBundle, result: TrainResult, evaluation: Any, title: str = "Model report: m"
) -> ReportData:
    return ReportData(
        title=title,
        facts=[("name", "m")],
        stored_metrics=result.metrics,
        history=result.history,
        importance=feature_importance(bundle),
        evaluation=evaluation,
        notes=[],
    )


@pytest.mark.parametrize(
    ("target", "plots"),
    [
        ("yes_no", ["confusion-matrix", "roc-curve", "pr-curve"]),
        ("digit", ["confusion-matrix", "roc-curve", "pr-curve"]),
        ("value", ["residuals"]),
    ],
)
def test_report_recomputes_the_training_metrics_and_draws_the_plots(
    frame: pd.DataFrame, features: list[str], fast_params: Any, target: str, plots: list[str]
) -> None:
    bundle, result = fit(frame, target, features, fast_params)
    steps: list[int] = []
    evaluation = evaluate(bundle, frame, 0.25, 7, lambda done, total: steps.append(done))
    assert evaluation.rows == result.validation_rows == steps[-1]
    assert evaluation.metrics == pytest.approx(result.metrics)
    html, sections = render(data(bundle, result, evaluation))
    assert sections == [*plots, "feature-importance", "training-curve"]
    parsed = outline(html)
    assert parsed.sections == ["summary", "metrics", *sections]
    assert parsed.tags.count("svg") >= len(sections)
    assert "script" not in parsed.tags and "http://" not in html.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )
    text = " ".join(parsed.text)
    first_metric = next(iter(result.metrics))
    assert first_metric in text
    if evaluation.confusion is not None:
        assert sum(map(sum, evaluation.confusion)) == evaluation.rows


def test_without_data_the_report_keeps_what_the_model_holds(
    frame: pd.DataFrame, features: list[str], fast_params: Any
) -> None:
    bundle, result = fit(frame, "yes_no", features, fast_params)
    report = data(bundle, result, None, title="<script>alert(1)</script>")
    report.notes.append("The model's dataset no longer exists")
    html, sections = render(report)
    assert sections == ["feature-importance", "training-curve"]
    parsed = outline(html)
    assert "script" not in parsed.tags
    assert "notes" in parsed.sections
    assert "&lt;script&gt;" in html


def test_feature_importance_lists_every_feature_by_gain(
    frame: pd.DataFrame, features: list[str], fast_params: Any
) -> None:
    bundle, _ = fit(frame, "yes_no", features, fast_params)
    importance = feature_importance(bundle)
    assert set(importance) == set(features)
    assert list(importance.values()) == sorted(importance.values(), reverse=True)
    gain = bundle.booster.get_score(importance_type="gain")
    assert importance["num"] == pytest.approx(gain["num"])


def test_the_shap_summary_is_a_bar_chart_by_column(
    frame: pd.DataFrame, features: list[str], fast_params: Any
) -> None:
    bundle, result = fit(frame, "yes_no", features, fast_params)
    report = data(bundle, result, None, title="m")
    report.shap = {"num": 0.5, "cat": 1.5, "<b>": 0.1}
    report.shap_rows = 240
    html, sections = render(report)
    assert sections == ["feature-importance", "shap-importance", "training-curve"]
    section = html[html.index('id="shap-importance"') :]
    assert "over 240 training rows" in section
    assert section.index(">cat<") < section.index(">num<")
    assert "<b>" not in section and "&lt;b&gt;" in section
