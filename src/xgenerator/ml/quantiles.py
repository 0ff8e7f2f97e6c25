"""Quantile regression (`reg:quantileerror` with several `quantile_alpha`): one model whose
output has a column per level.

Each level is fitted on its own, so on a given row the 0.9 prediction may come out below the
0.5 one. A user reads them as one distribution, so every row is sorted: the k-th smallest value
goes to the k-th smallest level, and intervals never have a negative width.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from xgenerator.ml.metrics import Metrics

MAX_ALPHAS = 20


def check_alphas(value: object) -> list[float]:
    """A sorted list of distinct levels in (0, 1); raises ValueError (a params error)."""
    values = value if isinstance(value, list) else [value]
    if not values or len(values) > MAX_ALPHAS:
        raise ValueError(f"must be a level or a list of 1 to {MAX_ALPHAS} levels")
    out: list[float] = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ValueError("every level must be a number")
        if not 0.0 < v < 1.0:
            raise ValueError("every level must be in (0, 1)")
        out.append(float(v))
    if len(set(out)) != len(out):
        raise ValueError("lists a level twice")
    return sorted(out)


def key(alpha: float) -> str:
    """The JSON key of a level: `0.1`, `0.5`, `0.975`."""
    return f"{alpha:g}"


def sorted_quantiles(scores: np.ndarray[Any, Any], n_alphas: int) -> np.ndarray[Any, Any]:
    """(n, k) float64 with each row ascending (see the module docstring)."""
    matrix = np.asarray(scores, dtype=np.float64).reshape(-1, n_alphas)
    return np.sort(matrix, axis=1)


def quantile_metrics(
    y_true: np.ndarray[Any, Any],
    scores: np.ndarray[Any, Any],
    alphas: list[float],
    weights: np.ndarray[Any, Any] | None = None,
) -> Metrics:
    """Pinball loss per level (`pinball@0.1`) and the share of rows inside the outer interval
    (`coverage@0.1-0.9`, with two levels or more), weighted if `weights` are given."""
    y = np.asarray(y_true, dtype=np.float64)
    if len(y) == 0:
        return {}
    q = sorted_quantiles(scores, len(alphas))
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=np.float64)
    total = float(w.sum())
    out: Metrics = {}
    for i, alpha in enumerate(alphas):
        diff = y - q[:, i]
        loss = np.maximum(alpha * diff, (alpha - 1.0) * diff)
        out[f"pinball@{key(alpha)}"] = float((w * loss).sum() / total) if total > 0 else None
    if len(alphas) >= 2:
        inside = (y >= q[:, 0]) & (y <= q[:, -1])
        name = f"coverage@{key(alphas[0])}-{key(alphas[-1])}"
        out[name] = float((w * inside).sum() / total) if total > 0 else None
    return out
