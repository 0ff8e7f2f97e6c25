"""Learning to rank: query groups, a split that keeps each query whole, NDCG@k and MAP@k.

XGBoost needs the rows of one query next to each other (`qid` ascending); the dataset need
not be sorted, so rows are ordered by query here, stably, after the split. A query split over
training and validation would leak its relevance pattern into the validation score, so the
split draws whole queries.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.model_selection import GroupShuffleSplit

from xgenerator.errors import TrainingFailed
from xgenerator.ml.metrics import Metrics

IntArray = np.ndarray[Any, np.dtype[np.int64]]
DEFAULT_K = 10


def group_split(groups: IntArray, test_size: float, seed: int) -> tuple[IntArray, IntArray]:
    """Positions of training and validation rows, each query on one side (seeded)."""
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise TrainingFailed(
            "TooFewGroups", "ranking needs at least 2 query groups", {"groups": n_groups}
        )
    n_val = min(max(1, math.ceil(test_size * n_groups)), n_groups - 1)
    splitter = GroupShuffleSplit(n_splits=1, test_size=n_val, random_state=seed)
    train, val = next(splitter.split(np.zeros(len(groups)), groups=groups))
    return np.sort(train).astype(np.int64), np.sort(val).astype(np.int64)


def by_group(rows: IntArray, groups: IntArray) -> IntArray:
    """`rows` reordered so that each query's rows are contiguous, queries ascending."""
    return rows[np.argsort(groups[rows], kind="stable")]


def ranking_metrics(
    relevance: np.ndarray[Any, Any], scores: np.ndarray[Any, Any], groups: IntArray, k: int
) -> Metrics:
    """`ndcg@k` and `map@k`, each the mean over the queries of the validation rows.

    NDCG uses linear gains (scikit-learn's `ndcg_score`); a query without a relevant row
    scores 0, as there. MAP@k counts a row as relevant when its label is > 0 and divides each
    query's precision sum by min(relevant rows, k).
    """
    rel = np.asarray(relevance, dtype=np.float64)
    score = np.asarray(scores, dtype=np.float64)
    if len(rel) == 0:
        return {f"ndcg@{k}": None, f"map@{k}": None}
    # one pass over the rows ordered by query, not a mask per query (O(rows x queries))
    order = np.argsort(groups, kind="stable")
    rel, score, sorted_groups = rel[order], score[order], np.asarray(groups)[order]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    ndcgs: list[float] = []
    aps: list[float] = []
    for start, stop in zip(starts, [*starts[1:], len(rel)], strict=True):
        ndcgs.append(_ndcg(rel[start:stop], score[start:stop], k))
        aps.append(_average_precision(rel[start:stop], score[start:stop], k))
    return {f"ndcg@{k}": float(np.mean(ndcgs)), f"map@{k}": float(np.mean(aps))}


def _ndcg(rel: np.ndarray[Any, Any], score: np.ndarray[Any, Any], k: int) -> float:
    discount = 1.0 / np.log2(np.arange(2, min(k, len(rel)) + 2))
    ranked = rel[np.argsort(-score, kind="stable")][:k]
    ideal = np.sort(rel)[::-1][:k]
    best = float((ideal * discount[: len(ideal)]).sum())
    if best <= 0:
        return 0.0
    return float((ranked * discount[: len(ranked)]).sum()) / best


def _average_precision(rel: np.ndarray[Any, Any], score: np.ndarray[Any, Any], k: int) -> float:
    relevant = rel > 0
    total = int(relevant.sum())
    if total == 0:
        return 0.0
    hits = relevant[np.argsort(-score, kind="stable")][:k]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum()) / min(total, k)
