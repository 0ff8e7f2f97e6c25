"""Predictions in the user's terms: original class labels and per-class probabilities.

`inplace_predict` is used because it skips building a DMatrix, which dominates the latency
of small online requests; it agrees with `Booster.predict` on the same frame (tested).
"""

from __future__ import annotations

import ctypes
import json
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

try:  # XGBoost's own internals (3.x); without them the fast path takes `inplace_predict`
    from xgboost.core import _LIB, _check_call, _ProxyDMatrix

    _DENSE = True
except ImportError:  # pragma: no cover - another XGBoost
    _DENSE = False

from xgenerator.errors import InvalidInput
from xgenerator.ml import fastpath, quantiles
from xgenerator.ml.bundle import ModelBundle
from xgenerator.ml.features import to_model_frame
from xgenerator.ml.labels import Label

# Online prediction runs each request's trees on the thread that took it. An OpenMP team's
# fork and join cost more than a small request's trees, and on a busy host a request waited
# for descheduled team threads: one row took p95 20 ms with XGBoost's default threads against
# 0.26 ms with one (docs/benchmarks.md, serving). The API's threads serve requests side by side
# instead; explanations (up to 1,000 rows of TreeSHAP) keep every core.
ONLINE_THREADS = 1
_thread = threading.local()


def use_threads(count: int | None) -> None:
    """XGBoost's OpenMP threads for what the calling thread runs next (None: every core this
    process may use). XGBoost's global configuration is per thread, so this touches no other
    request; `set_config` is a JSON round trip, so it is called only on a change."""
    wanted = count or _cores()
    if getattr(_thread, "count", None) != wanted:
        xgb.set_config(nthread=wanted)
        _thread.count = wanted


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):  # Linux: the CPUs this process may run on
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@dataclass
class Prediction:
    """One entry per input row; `probabilities` is None but for classification.

    A prediction is a class label (classification), a number (regression, a ranking score, a
    survival model's risk or time) or `{level: value}` (quantile regression)."""

    predictions: list[Label] | list[dict[str, float]]
    probabilities: list[dict[str, float]] | None

    def to_dict(self) -> dict[str, object]:
        return {"predictions": self.predictions, "probabilities": self.probabilities}


def predict(bundle: ModelBundle, rows: pd.DataFrame) -> Prediction:
    """Predict `rows` (extra columns ignored); bad or missing feature columns are InvalidInput."""
    return _answer(bundle, predict_scores(bundle, rows))


def predict_records(bundle: ModelBundle, records: Sequence[Mapping[str, object]]) -> Prediction:
    """Predict JSON rows, by `fastpath` without a DataFrame when the values allow it; else
    exactly as `predict` (same numbers, same errors)."""
    coded = fastpath.records_to_array(records, bundle.features)
    if coded is None:
        return predict(bundle, rows_to_frame(records, [f.name for f in bundle.features]))
    return _answer(bundle, _scores(bundle, coded))


def _answer(bundle: ModelBundle, scores: np.ndarray[Any, Any]) -> Prediction:
    if bundle.quantiles is not None:
        keys = [quantiles.key(q) for q in bundle.quantiles]
        return Prediction([dict(zip(keys, map(float, r), strict=True)) for r in scores], None)
    if bundle.labels is None:
        values: list[Label] = [float(v) for v in scores]
        return Prediction(values, None)
    keys = [str(c) for c in bundle.labels.classes]
    return Prediction(
        predictions=bundle.labels.decode(scores.argmax(axis=1)),
        probabilities=[dict(zip(keys, map(float, row), strict=True)) for row in scores],
    )


def predict_scores(bundle: ModelBundle, rows: pd.DataFrame) -> np.ndarray[Any, Any]:
    """The raw float64 output: (n,) values for regression, ranking and survival, (n, classes)
    probabilities for classification, (n, levels) ascending per row for quantile regression.
    Online and batch prediction both go through here, so they agree."""
    return _scores(bundle, to_model_frame(rows, bundle.features))


def _scores(
    bundle: ModelBundle, coded: pd.DataFrame | np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    width = None if bundle.labels is None else len(bundle.labels.classes)
    if bundle.quantiles is not None:
        width = len(bundle.quantiles)
    if len(coded) == 0:
        return np.empty((0,) if width is None else (0, width), dtype=np.float64)
    if isinstance(coded, np.ndarray) and _DENSE:
        raw = _predict_dense(bundle.booster, np.ascontiguousarray(coded, dtype=np.float32))
    else:
        raw = bundle.booster.inplace_predict(coded)
    scores = np.asarray(raw, dtype=np.float64)
    if bundle.quantiles is not None:
        return quantiles.sorted_quantiles(scores, len(bundle.quantiles))
    if width is not None and scores.ndim == 1:  # binary:logistic gives P(class 1) only
        scores = np.column_stack([1.0 - scores, scores])
    return scores


# `inplace_predict`'s own arguments (`missing` NaN, all trees, no strict shape), encoded once.
_DENSE_ARGS = json.dumps(
    {
        "type": 0,
        "training": False,
        "iteration_begin": 0,
        "iteration_end": 0,
        "missing": float("nan"),
        "strict_shape": False,
        "cache_id": 0,
    }
).encode()


# The array interface of a C-contiguous float32 (rows, columns) array at an address: the bytes
# `json.dumps` would give, formatted directly (a third of the Python side of a one-row call).
_DENSE_INTERFACE = (
    b'{"data": [%d, true], "shape": [%d, %d], "strides": null, "typestr": "<f4", "version": 3}'
)


def _predict_dense(booster: xgb.Booster, data: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """`booster.inplace_predict(data)` for a C-contiguous float32 array (the fast path's), by
    the same C call, with a proxy DMatrix kept per thread. XGBoost's wrapper makes a new proxy
    on every call, and making one reads the cgroup CPU quota (nine system calls): about 0.13 ms
    of a one-row prediction's 0.24 ms (docs/benchmarks.md, online). The proxy only carries
    the array's address into the call; the threads are still this thread's `use_threads`."""
    proxy = getattr(_thread, "proxy", None)
    if proxy is None:
        proxy = _thread.proxy = _ProxyDMatrix()
    rows, columns = data.shape
    interface = _DENSE_INTERFACE % (data.__array_interface__["data"][0], rows, columns)
    shape = ctypes.POINTER(ctypes.c_uint64)()
    dims = ctypes.c_uint64()
    out = ctypes.POINTER(ctypes.c_float)()
    _check_call(
        _LIB.XGBoosterPredictFromDense(
            booster.handle,
            interface,
            _DENSE_ARGS,
            proxy.handle,
            ctypes.byref(shape),
            ctypes.byref(dims),
            ctypes.byref(out),
        )
    )
    sizes = tuple(shape[i] for i in range(dims.value))
    # copied out: the buffer is XGBoost's, reused by this thread's next prediction
    answer = np.empty(sizes, dtype=np.float32)
    ctypes.memmove(answer.ctypes.data, out, answer.nbytes)
    return answer


def rows_to_frame(
    rows: Sequence[Mapping[str, object]], columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """A frame of object columns from JSON rows, so that pandas guesses no dtype.

    Left to itself pandas would turn ``["1", 2]`` into strings or ``[1, None]`` into floats
    before `to_model_frame` sees them; with object columns it coerces each column once,
    knowing the feature's kind. A key absent from a row is a missing value. With `columns`
    (a model's features) only those are built, and only when some row has them, so that a
    column no row names is still reported missing: a row's other keys cost nothing.
    """
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InvalidInput("each row must be an object", {"row": i})
    if columns is None:
        seen: dict[str, None] = {}
        for i, row in enumerate(rows):
            for key in row:
                if not isinstance(key, str):
                    raise InvalidInput("column names must be strings", {"row": i})
                seen.setdefault(key)
        columns = list(seen)
    else:
        columns = [name for name in columns if any(name in row for row in rows)]
    data: dict[str, Any] = {
        name: pd.Series([row.get(name) for row in rows], dtype=object) for name in columns
    }
    return pd.DataFrame(data, index=pd.RangeIndex(len(rows)))
