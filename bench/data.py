"""Synthetic data for the benchmarks: a binary classification frame with some categoricals."""

from __future__ import annotations

import numpy as np
import pandas as pd

TARGET = "label"
CATEGORY_LEVELS = (4, 8, 16, 32, 64)  # one string column per entry


def classification_frame(rows: int, features: int = 30, seed: int = 0) -> pd.DataFrame:
    """`features` columns (the last five categorical strings), 2% missing numbers, and a
    string label that depends on both kinds, so the trees have real splits to find."""
    rng = np.random.default_rng(seed)
    n_numeric = features - len(CATEGORY_LEVELS)
    numbers = rng.normal(size=(rows, n_numeric)).astype(np.float64)
    score = numbers[:, :5] @ np.array([1.0, -0.8, 0.6, 0.4, -0.3])
    numbers[rng.random(size=numbers.shape) < 0.02] = np.nan
    columns: dict[str, object] = {f"x{i}": numbers[:, i] for i in range(n_numeric)}
    for j, levels in enumerate(CATEGORY_LEVELS):
        codes = rng.integers(0, levels, size=rows)
        effects = rng.normal(scale=0.5, size=levels)
        score += effects[codes]
        names = pd.Index([f"c{j}_{k}" for k in range(levels)])
        columns[f"cat{j}"] = pd.Categorical.from_codes(codes, categories=names)
    score += rng.normal(scale=0.5, size=rows)
    columns[TARGET] = np.where(score > 0, "yes", "no")
    return pd.DataFrame(columns)
