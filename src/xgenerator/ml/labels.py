"""Class labels <-> the integer codes XGBoost trains on.

A user who trained on "yes"/"no" or on True/False must get "yes" or True back from a
prediction, not 1 and not "True"; so the classes are kept as JSON scalars of their original
Python type, and the model file stores them as JSON, which preserves exactly those types.

One normalization: an integral float becomes an int. pandas turns an integer column with a
missing value into float64; the rows with a null target are dropped before training, and the
user's labels were integers (3/7/9), not 3.0/7.0/9.0.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from xgenerator.errors import InvalidInput

Label = str | int | float | bool


def normalize_label(value: object) -> Label:
    """A plain JSON scalar for a raw value (numpy scalars unwrapped, 3.0 -> 3)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not np.isfinite(value):
            raise InvalidInput("invalid class label", {"label": repr(value)})
        return int(value) if value.is_integer() else value
    raise InvalidInput("unsupported class label type", {"label": repr(value)[:200]})


def _key(label: Label) -> tuple[str, Label]:
    # True == 1 and hash(True) == hash(1) in Python: the type keeps them apart.
    kind = "bool" if isinstance(label, bool) else "str" if isinstance(label, str) else "num"
    return (kind, label)


@dataclass(frozen=True)
class LabelEncoding:
    """The sorted classes of a classification target; a class's code is its index."""

    classes: list[Label]

    @classmethod
    def fit(cls, series: pd.Series[Any]) -> LabelEncoding:
        """Classes of the non-null values, sorted within each type (bools, numbers, strings)."""
        _, uniques = pd.factorize(series, use_na_sentinel=True)
        labels = {_key(v): v for v in (normalize_label(u) for u in uniques)}
        return cls(classes=[labels[k] for k in sorted(labels)])

    def unknown(self, series: pd.Series[Any]) -> list[Label]:
        """Labels of `series` that are not among the classes (for retraining checks)."""
        known = {_key(c) for c in self.classes}
        _, uniques = pd.factorize(series, use_na_sentinel=True)
        found = {_key(v): v for v in (normalize_label(u) for u in uniques)}
        return [found[k] for k in sorted(found) if k not in known]

    def encode(self, series: pd.Series[Any]) -> np.ndarray[Any, np.dtype[np.int32]]:
        """Codes for a series without nulls; an unknown label is InvalidInput."""
        index = {_key(c): i for i, c in enumerate(self.classes)}
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        if (codes < 0).any():
            raise InvalidInput("missing class labels")
        lookup = np.empty(len(uniques), dtype=np.int32)
        unknown: list[str] = []
        for i, raw in enumerate(uniques):
            code = index.get(_key(normalize_label(raw)))
            if code is None:
                unknown.append(repr(raw))
                code = -1
            lookup[i] = code
        if unknown:
            raise InvalidInput("unknown class labels", {"unknown": unknown[:20]})
        return lookup[codes]

    def decode(self, codes: Iterable[int] | np.ndarray[Any, Any]) -> list[Label]:
        """Original labels for codes, with their original Python types."""
        return [self.classes[int(code)] for code in codes]

    def to_dict(self) -> dict[str, object]:
        return {"classes": list(self.classes)}

    @classmethod
    def from_dict(cls, data: object) -> LabelEncoding:
        classes = data.get("classes") if isinstance(data, dict) else None
        if not isinstance(classes, list) or len(classes) < 2:
            raise InvalidInput("invalid label encoding", {"labels": repr(data)[:200]})
        return cls(classes=[normalize_label(c) for c in classes])
