"""The booster cache: bounded by bytes, and one load per model however many ask at once.
Real model files in a real (local) artifact store; no database needed."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import xgboost as xgb

from xgenerator.artifacts import ArtifactStore
from xgenerator.db.tables import Model
from xgenerator.ml import bundle
from xgenerator.ml.bundle import ModelBundle
from xgenerator.ml.features import Feature
from xgenerator.models.repository import BoosterCache


def model_file(store: ArtifactStore, key: str, rounds: int = 5) -> Model:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    booster = xgb.train({"max_depth": 3}, xgb.DMatrix(x, label=x[:, 0]), rounds)
    features = [Feature("a", "numeric"), Feature("b", "numeric")]
    store.put_bytes(key, bundle.dumps(ModelBundle(booster, "regression", "y", features, None)))
    return Model(id=key, storage_key=key)


class GatedStore(ArtifactStore):
    """Reads wait until every caller arrived or a second passed, so that loads overlap."""

    def __init__(self, url: str, callers: int) -> None:
        super().__init__(url)
        self.callers = callers
        self.reads = 0
        self._all_in = threading.Event()
        self._lock = threading.Lock()

    def get_bytes(self, key: str) -> bytes:
        with self._lock:
            self.reads += 1
            if self.reads == self.callers:
                self._all_in.set()
        self._all_in.wait(timeout=1.0)
        return super().get_bytes(key)


def test_twenty_concurrent_cold_requests_load_the_model_once(tmp_path: Path) -> None:
    store = GatedStore(tmp_path.as_uri(), callers=20)
    row = model_file(store, "m1")
    cache = BoosterCache()
    start = threading.Barrier(20)
    got: list[ModelBundle] = []

    def predict() -> None:
        start.wait()
        got.append(cache.load(store, row))

    threads = [threading.Thread(target=predict) for _ in range(20)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (cache.loads, store.reads) == (1, 1)
    assert len(got) == 20 and all(b is got[0] for b in got)
    assert time.monotonic() - began < 10


def test_the_cache_is_bounded_by_bytes_least_recently_used_out(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path.as_uri())
    rows = [model_file(store, f"m{i}") for i in range(3)]
    size = len(store.get_bytes("m0"))
    cache = BoosterCache(max_bytes=2 * size + size // 2)  # room for two
    for row in rows:
        cache.load(store, row)
    assert cache.loads == 3 and cache.size_bytes == 2 * size
    cache.load(store, rows[2])  # still there
    cache.load(store, rows[1])
    assert cache.loads == 3
    cache.load(store, rows[0])  # it was evicted first: loaded again
    assert cache.loads == 4 and cache.size_bytes <= cache.max_bytes


def test_a_smaller_bound_evicts_and_a_model_larger_than_the_bound_is_not_kept(
    tmp_path: Path,
) -> None:
    store = ArtifactStore(tmp_path.as_uri())
    small, big = model_file(store, "small", 2), model_file(store, "big", 50)
    cache = BoosterCache()
    cache.load(store, small)
    cache.load(store, big)
    limit = len(store.get_bytes("small"))
    cache.load(store, small, max_bytes=limit)  # shrinking empties it; `small` comes back
    assert (cache.loads, cache.size_bytes) == (3, limit)
    cache.load(store, big, max_bytes=limit)
    cache.load(store, big, max_bytes=limit)  # read each time, never kept
    assert (cache.loads, cache.size_bytes) == (5, limit)


def test_get_answers_from_memory_only(tmp_path: Path) -> None:
    """What an async route asks on the event loop: never a file read, never a wait."""
    store = ArtifactStore(tmp_path.as_uri())
    row = model_file(store, "m1")
    cache = BoosterCache()
    assert cache.get("m1") is None and cache.loads == 0  # not loaded: None, nothing read
    loaded = cache.load(store, row)
    assert cache.get("m1") is loaded and cache.loads == 1
    cache.forget("m1")
    assert cache.get("m1") is None
