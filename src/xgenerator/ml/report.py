"""A model report: evaluation on the model's validation rows, rendered as one HTML file.

The validation rows are found again the way training chose them (same row filter, same
coding, same seeded split), so the report's metrics are the model's own metrics, recomputed;
the plots (confusion matrix, ROC/PR curves, residuals) are drawn from the same predictions.
Without the data, the report still shows what the model file and its record hold: stored
metrics, feature importance (gain) and the per-round training curve.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from xgenerator.ml import svg
from xgenerator.ml.bundle import ModelBundle
from xgenerator.ml.features import model_columns
from xgenerator.ml.metrics import Metrics, classification_metrics, regression_metrics
from xgenerator.ml.prepare import prepare
from xgenerator.ml.split import split_indices
from xgenerator.ml.train import InitModel, TrainSpec

CURVE_POINTS = 300  # points kept per curve: enough to look smooth, small enough to embed
SCATTER_POINTS = 2000
MAX_CURVE_CLASSES = 10
TOP_FEATURES = 30

OnChunk = Callable[[int, int], None]
Array = np.ndarray[Any, Any]


@dataclass
class Curve:
    name: str
    xs: list[float]
    ys: list[float]
    area: float | None


@dataclass
class Evaluation:
    """Predictions on the validation rows and what is drawn from them."""

    rows: int
    metrics: Metrics
    classes: list[str] | None = None
    confusion: list[list[int]] | None = None
    roc: list[Curve] = field(default_factory=list)
    pr: list[Curve] = field(default_factory=list)
    actual: list[float] = field(default_factory=list)
    predicted: list[float] = field(default_factory=list)
    residuals: list[float] = field(default_factory=list)


def evaluate(
    bundle: ModelBundle, frame: pd.DataFrame, test_size: float, chunk_rows: int, on_chunk: OnChunk
) -> Evaluation:
    """Predict the validation split of `frame` chunk by chunk (`on_chunk` may raise to stop).

    Raises TrainingFailed or InvalidInput when the data no longer fits the model.
    """
    spec = TrainSpec(
        task_type=bundle.task_type,
        target=bundle.target,
        features=[f.name for f in bundle.features],
        test_size=test_size,
    )
    init = InitModel(booster=bundle.booster, features=bundle.features, labels=bundle.labels)
    data = prepare(frame, spec, init)
    classification = bundle.labels is not None
    _, val_idx = split_indices(
        len(data.frame), spec.test_size, spec.seed, data.target if classification else None
    )
    x_val, y_val = data.frame.iloc[val_idx], data.target[val_idx]
    parts: list[Array] = []
    for start in range(0, len(x_val), chunk_rows):
        part = x_val.iloc[start : start + chunk_rows]
        parts.append(np.asarray(bundle.booster.inplace_predict(part), dtype=np.float64))
        on_chunk(start + len(part), len(x_val))
    scores = np.concatenate(parts) if parts else np.empty(0)
    if bundle.labels is None:
        return _regression(y_val, scores)
    return _classification(y_val, scores, [str(c) for c in bundle.labels.classes])


def _classification(y: Array, scores: Array, classes: list[str]) -> Evaluation:
    n = len(classes)
    proba = np.column_stack([1.0 - scores, scores]) if scores.ndim == 1 else scores
    result = Evaluation(rows=len(y), metrics=classification_metrics(y, scores, n), classes=classes)
    result.confusion = skm.confusion_matrix(y, proba.argmax(axis=1), labels=list(range(n))).tolist()
    targets = [1] if n == 2 else list(range(min(n, MAX_CURVE_CLASSES)))
    for k in targets:
        truth = y == k
        if truth.all() or not truth.any():
            continue  # a curve needs both outcomes
        name = classes[k] if n > 2 else f"{classes[1]} vs {classes[0]}"
        fpr, tpr, _ = skm.roc_curve(truth, proba[:, k])
        precision, recall, _ = skm.precision_recall_curve(truth, proba[:, k])
        result.roc.append(Curve(name, *_thin(fpr, tpr), float(skm.auc(fpr, tpr))))
        result.pr.append(
            Curve(
                name,
                *_thin(recall, precision),
                float(skm.average_precision_score(truth, proba[:, k])),
            )
        )
    return result


def _regression(y: Array, pred: Array) -> Evaluation:
    keep = np.arange(len(y))
    if len(keep) > SCATTER_POINTS:
        keep = np.sort(np.random.default_rng(0).choice(keep, SCATTER_POINTS, replace=False))
    residuals = y - pred
    return Evaluation(
        rows=len(y),
        metrics=regression_metrics(y, pred),
        actual=y[keep].tolist(),
        predicted=pred[keep].tolist(),
        residuals=residuals.tolist(),
    )


def _thin(xs: Array, ys: Array) -> tuple[list[float], list[float]]:
    if len(xs) > CURVE_POINTS:
        pick = np.unique(np.linspace(0, len(xs) - 1, CURVE_POINTS).round().astype(int))
        xs, ys = xs[pick], ys[pick]
    return [float(v) for v in xs], [float(v) for v in ys]


def feature_importance(bundle: ModelBundle) -> dict[str, float]:
    """Average gain per feature, highest first; a feature no split used has 0."""
    gain = bundle.booster.get_score(importance_type="gain")
    values = {
        c: float(np.asarray(gain.get(c, 0.0)).ravel()[0]) for c in model_columns(bundle.features)
    }
    return dict(sorted(values.items(), key=lambda item: -item[1]))


# --- rendering -------------------------------------------------------------------------------


@dataclass
class ReportData:
    """What the HTML shows. `facts` are (label, value) rows about the model."""

    title: str
    facts: list[tuple[str, str]]
    stored_metrics: dict[str, Any]
    history: list[dict[str, Any]]
    importance: dict[str, float]
    evaluation: Evaluation | None
    notes: list[str]
    # the model's SHAP summary (mean |contribution| per column) and its sample's size
    shap: dict[str, float] | None = None
    shap_rows: int = 0


STYLE = """body{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:4px 10px;
text-align:left}th{background:#f5f5f5}section{margin:2em 0}.note{color:#8a4b00}
svg{display:block;margin:.5em 0}"""


def render(data: ReportData) -> tuple[str, list[str]]:
    """The HTML document and the ids of the plot sections it contains."""
    sections = _data_plots(data.evaluation) if data.evaluation is not None else []
    if data.importance:
        top = list(data.importance.items())[:TOP_FEATURES]
        chart = svg.bar_chart(
            "Feature importance (average gain)", [k for k, _ in top], [v for _, v in top], "gain"
        )
        sections.append(("feature-importance", "Feature importance (gain)", chart))
    if data.shap:
        top = sorted(data.shap.items(), key=lambda item: -item[1])[:TOP_FEATURES]
        chart = svg.bar_chart(
            f"Mean |SHAP contribution| over {data.shap_rows:,} training rows",
            [k for k, _ in top],
            [v for _, v in top],
            "mean |contribution| (margin units)",
        )
        sections.append(("shap-importance", "SHAP summary", chart))
    curves = _training_curves(data.history)
    if curves:
        sections.append(("training-curve", "Training curve", "".join(curves)))
    body = [f"<h1>{escape(data.title)}</h1>", _facts(data.facts), _metrics(data)]
    if data.notes:
        body.append(
            '<section id="notes"><h2>Notes</h2><ul>'
            + "".join(f'<li class="note">{escape(n)}</li>' for n in data.notes)
            + "</ul></section>"
        )
    body += [
        f'<section id="{sid}"><h2>{escape(h)}</h2>{html}</section>' for sid, h, html in sections
    ]
    document = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(data.title)}</title><style>{STYLE}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )
    return document, [sid for sid, _, _ in sections]


def _data_plots(evaluation: Evaluation) -> list[tuple[str, str, str]]:
    """(id, heading, svg) of the plots drawn from validation predictions."""
    plots = []
    if evaluation.confusion is not None and evaluation.classes:
        title = f"Confusion matrix ({evaluation.rows} validation rows)"
        chart = svg.heatmap(title, evaluation.confusion, evaluation.classes, "predicted", "actual")
        plots.append(("confusion-matrix", "Confusion matrix", chart))
    if evaluation.roc:
        roc = [svg.Series(_auc_name(c, "AUC"), c.xs, c.ys) for c in evaluation.roc]
        chart = svg.line_chart(
            "ROC curve",
            roc,
            "false positive rate",
            "true positive rate",
            x_range=(0, 1),
            y_range=(0, 1),
            diagonal=True,
            legend="bottom-right",
        )
        plots.append(("roc-curve", "ROC curve", chart))
        pr = [svg.Series(_auc_name(c, "AP"), c.xs, c.ys) for c in evaluation.pr]
        chart = svg.line_chart(
            "Precision-recall curve",
            pr,
            "recall",
            "precision",
            x_range=(0, 1),
            y_range=(0, 1.02),
            legend="bottom-left",
        )
        plots.append(("pr-curve", "Precision-recall curve", chart))
    if evaluation.classes is None and evaluation.rows:
        chart = svg.scatter_chart(
            "Predicted vs actual",
            evaluation.actual,
            evaluation.predicted,
            "actual",
            "predicted",
            diagonal=True,
        )
        chart += svg.histogram("Residuals (actual - predicted)", evaluation.residuals, "residual")
        plots.append(("residuals", "Residuals", chart))
    return plots


def _auc_name(curve: Curve, what: str) -> str:
    return curve.name if curve.area is None else f"{curve.name} ({what} {curve.area:.3f})"


def _facts(facts: list[tuple[str, str]]) -> str:
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in facts)
    return f'<section id="summary"><h2>Model</h2><table>{rows}</table></section>'


def _metrics(data: ReportData) -> str:
    evaluated = data.evaluation.metrics if data.evaluation is not None else {}
    names = list(dict.fromkeys([*data.stored_metrics, *evaluated]))
    head = "<tr><th>metric</th><th>at training (validation)</th>"
    if data.evaluation is not None:
        head += f"<th>recomputed ({data.evaluation.rows} validation rows)</th>"
    rows = [head + "</tr>"]
    for name in names:
        cells = [name, _value(data.stored_metrics.get(name))]
        if data.evaluation is not None:
            cells.append(_value(evaluated.get(name)))
        rows.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    return f'<section id="metrics"><h2>Metrics</h2><table>{"".join(rows)}</table></section>'


def _value(value: Any) -> str:
    return "n/a" if value is None else f"{value:.6g}" if isinstance(value, float) else str(value)


def _training_curves(history: list[dict[str, Any]]) -> list[str]:
    """One chart per metric, one line per data set (train, validation)."""
    by_metric: dict[str, dict[str, svg.Series]] = {}
    for key in dict.fromkeys(k for row in history for k in row if k != "round"):
        dataset, _, metric = key.partition("-")
        points = [
            (float(r["round"]), float(r[key]))
            for r in history
            if r.get(key) is not None and r.get("round") is not None
        ]
        if points:
            by_metric.setdefault(metric or key, {})[dataset] = svg.Series(
                dataset, [p[0] for p in points], [p[1] for p in points]
            )
    return [
        svg.line_chart(f"{metric} per round", list(series.values()), "round", metric)
        for metric, series in by_metric.items()
    ]
