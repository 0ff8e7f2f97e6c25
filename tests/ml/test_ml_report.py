"""Model reports: metrics recomputed on the training split, plots present, HTML well formed."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pandas as pd
import pytest

from xgenerator.ml.bundle import ModelBundle
from xgenerator.ml.report import ReportData, evaluate, feature_importance, render
from xgenerator.ml.train import TrainResult, TrainSpec, train


class Outline(HTMLParser):
    """Tags seen, section ids, text, and whether every opened tag was closed in order."""

    VOID = {"meta", "br", "img", "rect", "line", "circle", "polyline", "path"}

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.sections: list[str] = []
        self.text: list[str] = []
        self.stack: list[str] = []
        self.balanced = True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "section":
            self.sections.append(dict(attrs).get("id") or "")
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        if not self.stack or self.stack.pop() != tag:
            self.balanced = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def outline(html: str) -> Outline:
    parser = Outline()
    parser.feed(html)
    parser.close()
    assert parser.balanced and not parser.stack
    return parser


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
