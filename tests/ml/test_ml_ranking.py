"""Ranking: query-preserving split, NDCG@k / MAP@k against scikit-learn and a direct
computation, and a ranking model trained on unsorted query rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import ndcg_score

from xgenerator.errors import InvalidInput, TrainingFailed
from xgenerator.ml.ranking import ranking_metrics
from xgenerator.ml.split import split_indices
from xgenerator.ml.train import TrainSpec, train

FAST: dict[str, object] = {"nthread": 1, "max_depth": 3, "max_bin": 32}


def ranking_frame(n: int = 600, queries: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    z = rng.normal(size=n)
    relevance = np.clip(np.round(x + 0.5 * rng.normal(size=n) + 1), 0, 3).astype(int)
    # string query ids, rows shuffled: the service sorts them itself
    return pd.DataFrame(
        {"x": x, "z": z, "rel": relevance, "query": [f"q{q}" for q in rng.integers(0, queries, n)]}
    )


def direct_map(rel: np.ndarray[Any, Any], score: np.ndarray[Any, Any], k: int) -> float:
    order = sorted(range(len(rel)), key=lambda i: -score[i])[:k]
    hits, total = 0, 0.0
    for position, i in enumerate(order, start=1):
        if rel[i] > 0:
            hits += 1
            total += hits / position
    relevant = int((rel > 0).sum())
    return total / min(relevant, k) if relevant else 0.0


@pytest.mark.parametrize("k", [3, 10])
def test_metrics_equal_sklearn_ndcg_and_a_direct_map(k: int) -> None:
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(12), rng.integers(2, 15, size=12))
    rel = rng.integers(0, 4, size=len(groups)).astype(float)
    rel[groups == 3] = 0  # a query without a relevant row scores 0, as in sklearn
    score = rng.normal(size=len(groups))
    metrics = ranking_metrics(rel, score, groups, k)
    ndcgs, maps = [], []
    for g in np.unique(groups):
        mine = groups == g
        ndcgs.append(ndcg_score([rel[mine]], [score[mine]], k=k))
        maps.append(direct_map(rel[mine], score[mine], k))
    assert metrics[f"ndcg@{k}"] == pytest.approx(np.mean(ndcgs), rel=1e-12)
    assert metrics[f"map@{k}"] == pytest.approx(np.mean(maps), rel=1e-12)


def test_split_keeps_each_query_on_one_side_and_is_seeded() -> None:
    groups = np.random.default_rng(2).integers(0, 30, size=500)
    train_idx, val_idx = split_indices(500, 0.25, 7, groups=groups)
    assert sorted([*train_idx, *val_idx]) == list(range(500))
    assert not set(groups[train_idx]) & set(groups[val_idx])
    assert len(set(groups[val_idx])) == 8  # ceil(0.25 * 30) queries
    # rows come ordered by query, as XGBoost's qid requires
    assert (np.diff(groups[train_idx]) >= 0).all() and (np.diff(groups[val_idx]) >= 0).all()
    again = split_indices(500, 0.25, 7, groups=groups)
    assert (again[1] == val_idx).all()
    assert set(split_indices(500, 0.25, 8, groups=groups)[1]) != set(val_idx)


@pytest.mark.parametrize("objective", ["rank:ndcg", "rank:pairwise", "rank:map"])
def test_ranking_model_scores_rows_and_reports_ndcg_and_map(objective: str) -> None:
    frame = ranking_frame()
    if objective == "rank:map":  # XGBoost's MAP objective takes binary relevance only
        frame["rel"] = (frame["rel"] > 1).astype(int)
    spec = TrainSpec(
        "ranking",
        "rel",
        ["x", "z"],
        {**FAST, "objective": objective},
        num_boost_round=10,
        group_column="query",
        rank_k=5,
    )
    result = train(frame, spec)
    assert result.params["objective"] == objective
    assert result.params["eval_metric"] == "ndcg@5"
    assert "validation-ndcg@5" in result.history[-1]
    assert set(result.metrics) == {"ndcg@5", "map@5"}
    assert result.metrics["ndcg@5"] is not None and result.metrics["ndcg@5"] > 0.6
    # the metrics are those of the model's scores on the held-out queries
    train_idx, val_idx = split_indices(
        len(frame), 0.2, 42, groups=pd.factorize(frame["query"], sort=True)[0].astype(np.int64)
    )
    val = frame.iloc[val_idx]
    scores = result.booster.inplace_predict(val[["x", "z"]].astype(np.float32))
    groups = pd.factorize(val["query"], sort=True)[0]
    expected = ranking_metrics(val["rel"].to_numpy(float), scores, groups, 5)
    assert result.metrics == pytest.approx(expected)
    assert result.validation_rows == len(val_idx)


def test_ranking_spec_errors() -> None:
    frame = ranking_frame()
    with pytest.raises(InvalidInput) as caught:
        train(frame, TrainSpec("ranking", "rel", ["x", "z"], FAST))
    assert "group_column" in str(caught.value.details)
    with pytest.raises(InvalidInput):
        train(frame, TrainSpec("ranking", "rel", ["x", "query"], FAST, group_column="query"))
    single = frame.assign(query="q0")
    with pytest.raises(TrainingFailed) as failed:
        train(single, TrainSpec("ranking", "rel", ["x", "z"], FAST, group_column="query"))
    assert failed.value.error_type == "TooFewGroups"
