"""Prediction feedback: log online predictions, record their actual outcomes, and measure
how the model does on them over time.

A logged prediction belongs to one model and one user; an id of another model or user is
treated exactly like an unknown one. Time windows are UTC hours or days, by the time of the
prediction (not of the feedback), so a window's numbers describe the model as it was used
then; a late answer fills in its window.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select, update

from xgenerator.context import Context
from xgenerator.db.tables import Model, PredictionLog, new_id, utcnow
from xgenerator.errors import InvalidInput
from xgenerator.ml.labels import Label, normalize_label
from xgenerator.ml.predict import Prediction
from xgenerator.models.repository import get_owned as get_model

Window = Literal["hour", "day"]


def log_predictions(
    context: Context,
    user_id: str,
    model_id: str,
    records: Sequence[dict[str, Any]],
    prediction: Prediction,
) -> list[str]:
    """Store each row with its prediction; the ids come back in the rows' order."""
    rows = []
    for i, record in enumerate(records):
        probabilities = prediction.probabilities[i] if prediction.probabilities else None
        rows.append(
            PredictionLog(
                id=new_id(),
                model_id=model_id,
                user_id=user_id,
                features=_json_safe(record),
                prediction={"value": prediction.predictions[i], "probabilities": probabilities},
            )
        )
    with context.db.session() as session:
        session.add_all(rows)
    return [r.id for r in rows]


def record_feedback(
    context: Context, user_id: str, model_id: str, items: Sequence[tuple[str, Label]]
) -> int:
    """Set the actual outcome of logged predictions (a second answer replaces the first).

    Nothing is written unless every id is known and every outcome fits the model (422).
    """
    with context.db.session() as session:
        model = get_model(session, user_id, model_id)
        ids = list(dict.fromkeys(pid for pid, _ in items))
        query = select(PredictionLog.id).where(
            PredictionLog.id.in_(ids),
            PredictionLog.model_id == model.id,
            PredictionLog.user_id == user_id,
        )
        known = set(session.scalars(query))
        unknown = [pid for pid in ids if pid not in known]
        if unknown:
            raise InvalidInput(
                f"{len(unknown)} unknown prediction ids", {"unknown": unknown[:1000]}
            )
        actuals = {pid: _checked_actual(model, actual) for pid, actual in items}
        now = utcnow()
        session.execute(
            update(PredictionLog),
            [
                {"id": pid, "actual": {"value": actual}, "feedback_at": now}
                for pid, actual in actuals.items()
            ],
        )
    return len(actuals)


def _checked_actual(model: Model, actual: Label) -> Label:
    if model.task_type not in ("classification", "regression") or (
        model.params.get("objective") == "reg:quantileerror"
    ):
        raise InvalidInput(
            "feedback covers classification and single-output regression models",
            {"task_type": model.task_type},
        )
    if model.task_type == "regression":
        if (
            isinstance(actual, bool)
            or not isinstance(actual, int | float)
            or not math.isfinite(actual)
        ):
            raise InvalidInput(
                "a regression outcome must be a finite number", {"actual": repr(actual)[:100]}
            )
        return actual
    value = normalize_label(actual)
    if label_key(value) not in {label_key(c) for c in model.labels or []}:
        raise InvalidInput(
            "the outcome is not one of the model's classes",
            {"actual": value, "classes": model.labels},
        )
    return value


def label_key(value: object) -> tuple[str, Any]:
    """Compare labels as ml/labels.py does: 3 == 3.0, but True is not 1 and "3" is not 3."""
    label = normalize_label(value)
    kind = "bool" if isinstance(label, bool) else "str" if isinstance(label, str) else "num"
    return (kind, label)


@dataclass
class _Tally:
    predictions: int = 0
    with_feedback: int = 0
    correct: int = 0
    squared_error: float = 0.0
    absolute_error: float = 0.0

    def add(self, prediction: Any, actual: Any, regression: bool) -> None:
        self.predictions += 1
        if actual is None:
            return
        self.with_feedback += 1
        if regression:
            error = float(prediction) - float(actual)
            self.squared_error += error * error
            self.absolute_error += abs(error)
        elif label_key(prediction) == label_key(actual):
            self.correct += 1

    def numbers(self, regression: bool) -> dict[str, Any]:
        n = self.with_feedback
        out: dict[str, Any] = {
            "predictions": self.predictions,
            "with_feedback": n,
            "without_feedback": self.predictions - n,
        }
        if regression:
            out["rmse"] = math.sqrt(self.squared_error / n) if n else None
            out["mae"] = self.absolute_error / n if n else None
        else:
            out["accuracy"] = self.correct / n if n else None
        return out


def window_start(at: datetime, window: Window) -> datetime:
    start = at.replace(minute=0, second=0, microsecond=0)
    return start.replace(hour=0) if window == "day" else start


def performance(context: Context, user_id: str, model_id: str, window: Window) -> dict[str, Any]:
    """Accuracy (classification) or RMSE/MAE (regression) per window, oldest first, and
    overall; counts of predictions with and without feedback. A window with no feedback
    has None for its metrics."""
    with context.db.session() as session:
        model = get_model(session, user_id, model_id)
        regression = model.task_type == "regression"
        query = (
            select(PredictionLog.created_at, PredictionLog.prediction, PredictionLog.actual)
            .where(PredictionLog.model_id == model.id, PredictionLog.user_id == user_id)
            .execution_options(yield_per=1000)
        )
        total = _Tally()
        windows: dict[datetime, _Tally] = {}
        for created_at, prediction, actual in session.execute(query):
            value = None if actual is None else actual.get("value")
            tally = windows.setdefault(window_start(created_at, window), _Tally())
            for t in (tally, total):
                t.add(prediction["value"], value, regression)
    step = timedelta(hours=1) if window == "hour" else timedelta(days=1)
    return {
        "model_id": model_id,
        "task_type": model.task_type,
        "window": window,
        **total.numbers(regression),
        "windows": [
            {"start": start, "end": start + step, **windows[start].numbers(regression)}
            for start in sorted(windows)
        ],
    }


def _json_safe(record: dict[str, Any]) -> dict[str, Any]:
    """JSON allows no NaN or infinity (PostgreSQL refuses them); they become null."""
    return {
        k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in record.items()
    }
