"""A model's signature: the columns a prediction must send and what comes back.

It is read from the frozen feature coding the model file carries, so it is exactly what the
predict route enforces: every input column is required (a null is a missing value), its kind
decides how a value is read, a category outside the frozen list is predicted as missing, and a
date-time becomes the parts listed.
"""

from __future__ import annotations

from typing import Any

from xgenerator.ml import quantiles
from xgenerator.ml.bundle import ModelBundle

_READS = {
    "numeric": "a number (or a numeric string); null is missing",
    "categorical": "one of the categories; an unseen one or null is missing",
    "datetime": "an ISO-8601 date-time or epoch seconds, taken as UTC; null is missing",
}


def signature(bundle: ModelBundle, max_categories: int = 50) -> dict[str, Any]:
    """{inputs: [...], outputs: {...}}; a categorical lists its first `max_categories`."""
    inputs: list[dict[str, Any]] = []
    for feature in bundle.features:
        entry: dict[str, Any] = {
            "name": feature.name,
            "kind": feature.kind,
            "required": True,
            "reads": _READS[feature.kind],
        }
        if feature.categories is not None:
            entry["category_count"] = len(feature.categories)
            entry["categories"] = feature.categories[:max_categories]
        if feature.kind == "datetime":
            entry["parts"] = list(feature.parts or [])
            entry["model_columns"] = feature.columns
        inputs.append(entry)
    return {"inputs": inputs, "outputs": outputs(bundle)}


def outputs(bundle: ModelBundle) -> dict[str, Any]:
    """What `predictions` holds by default, and the `output` choices the model accepts."""
    if bundle.labels is not None:
        classes = [str(c) for c in bundle.labels.classes]
        return {
            "prediction": "label",
            "classes": classes,
            "probabilities": classes,
            "choices": ["label", "probability", "margin", "contributions"],
        }
    out: dict[str, Any] = {"choices": ["margin", "contributions"]}
    if bundle.quantiles is not None:
        out.update(prediction="quantiles", quantiles=[quantiles.key(q) for q in bundle.quantiles])
    elif bundle.task_type == "ranking":
        out["prediction"] = "score"
    elif bundle.task_type == "survival":
        out["prediction"] = "time" if bundle.objective == "survival:aft" else "risk"
    else:
        out["prediction"] = "value"
    return out
