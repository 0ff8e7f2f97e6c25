"""What a prediction answers, as the caller asks: the class, its probabilities, the raw margin,
or each feature's contribution.

The default answer (`predict.predict`) is kept as it was; an `output` asks for one of these
instead. `label` and `probability` only mean something for a classifier: for any other model
they are InvalidInput rather than a number that silently means something else.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

from xgenerator.errors import InvalidInput
from xgenerator.ml import explain, quantiles
from xgenerator.ml.bundle import ModelBundle
from xgenerator.ml.features import to_model_frame
from xgenerator.ml.predict import predict_scores

Output = Literal["label", "probability", "margin", "contributions"]
OUTPUTS: tuple[Output, ...] = ("label", "probability", "margin", "contributions")


def check_output(bundle: ModelBundle, output: Output) -> None:
    """Refuse an output the model cannot give, before any row is coded."""
    if output in ("label", "probability") and bundle.labels is None:
        raise InvalidInput(
            f"output '{output}' is only for classification models",
            {"output": output, "task_type": bundle.task_type},
        )


def predict_output(bundle: ModelBundle, rows: pd.DataFrame, output: Output) -> list[Any]:
    """One entry per row of `rows` (raw columns; extra ones ignored)."""
    check_output(bundle, output)
    if output == "contributions":
        return explain.explain(bundle, rows)
    if output == "margin":
        return _margins(bundle, rows)
    scores = predict_scores(bundle, rows)
    assert bundle.labels is not None  # noqa: S101 - check_output refused the others
    if output == "label":
        return list(bundle.labels.decode(scores.argmax(axis=1)))
    keys = [str(c) for c in bundle.labels.classes]
    return [dict(zip(keys, map(float, row), strict=True)) for row in scores]


def margins(bundle: ModelBundle, rows: pd.DataFrame) -> np.ndarray[Any, Any]:
    """The untransformed scores: (n,) or (n, classes / levels), as XGBoost gives them."""
    frame = to_model_frame(rows, bundle.features)
    if len(frame) == 0:
        return np.empty((0,), dtype=np.float64)
    raw = bundle.booster.inplace_predict(frame, predict_type="margin")
    return np.asarray(raw, dtype=np.float64)


def _margins(bundle: ModelBundle, rows: pd.DataFrame) -> list[Any]:
    """A number per row (for a binary classifier, the log-odds of its second class); for a
    multi-class model {class: margin}, for quantile regression {level: margin}."""
    values = margins(bundle, rows)
    if values.ndim == 1:
        return [float(v) for v in values]
    if bundle.quantiles is not None:
        keys = [quantiles.key(q) for q in bundle.quantiles]
    else:
        keys = [str(c) for c in bundle.labels.classes] if bundle.labels else []
    return [dict(zip(keys, map(float, row), strict=True)) for row in values]
