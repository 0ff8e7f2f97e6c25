"""The train/validation split.

Validation metrics are only comparable between models if the split is reproducible (seeded)
and, for classification, keeps class proportions (stratified). Stratification is impossible
when a class has a single row; then that row goes to training, where it can at least be
learned, and the rest is split at random.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from xgenerator.ml import ranking

IntArray = np.ndarray[Any, np.dtype[np.int64]]


def validation_size(n_rows: int, test_size: float) -> int:
    """Rows held out: at least one, as sklearn rounds (up)."""
    return max(1, math.ceil(test_size * n_rows))


def split_indices(
    n_rows: int,
    test_size: float,
    seed: int,
    classes: IntArray | None = None,
    *,
    groups: IntArray | None = None,
) -> tuple[IntArray, IntArray]:
    """Positions of the training and validation rows (caller guarantees n_rows >= 2).

    With `groups` (ranking queries) whole groups go to one side, and each side's rows are
    ordered by group, as XGBoost's `qid` requires."""
    if groups is not None:
        train, val = ranking.group_split(groups, test_size, seed)
        return ranking.by_group(train, groups), ranking.by_group(val, groups)
    n_val = min(validation_size(n_rows, test_size), n_rows - 1)
    rows = np.arange(n_rows, dtype=np.int64)
    if classes is None:
        return _random(rows, n_val, seed)
    counts = np.bincount(classes)
    present = counts[counts > 0]
    n_classes = len(present)
    if present.min() >= 2 and n_val >= n_classes and n_rows - n_val >= n_classes:
        train, val = train_test_split(rows, test_size=n_val, random_state=seed, stratify=classes)
        return np.sort(train), np.sort(val)
    singletons = rows[counts[classes] == 1]
    rest = rows[counts[classes] > 1]
    if len(rest) <= n_val:
        return _random(rows, n_val, seed)
    train, val = _random(rest, n_val, seed)
    return np.sort(np.concatenate([train, singletons])), val


def _random(rows: IntArray, n_val: int, seed: int) -> tuple[IntArray, IntArray]:
    train, val = train_test_split(rows, test_size=n_val, random_state=seed, shuffle=True)
    return np.sort(train), np.sort(val)
