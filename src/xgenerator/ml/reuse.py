"""What trainings on one frame can share: its prepared data and its matrices.

A search's trials train on one dataset, coded, split and binned the same way; only the
boosting parameters differ. Preparing the frame and building the two matrices again took
~55 ms of each quarter-second trial (docs/benchmarks.md, issue 19), work whose result the
trial before had just thrown away. A `Reuse` keeps the last result of each step for the
next training on the same frame object, keyed by everything of the spec that step reads
(the split is drawn again: it is cheap, and the same seed and size draw the same rows). The
frame must not change in place while a `Reuse` serves it.

Each step keeps one result (a new key replaces it), so a `Reuse` holds at most one copy of
the data's prepared forms besides the frame itself.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd

if TYPE_CHECKING:
    from xgenerator.ml.train import TrainSpec

T = TypeVar("T")

# The parameters the matrices depend on: their kind and bins (`train._matrices`), the survival
# label bounds (`roles.dmatrix_fields`), and the device a search's trial may vary.
MATRIX_PARAMS = ("tree_method", "max_bin", "objective", "device")


class Reuse:
    """The results of the steps of trainings on `frame`, the last one per step."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self._kept: dict[str, tuple[Hashable, Any]] = {}

    def get(self, step: str, key: Hashable, make: Callable[[], T]) -> T:
        """`make()`, or what it gave the last time `step` was asked for with `key`."""
        kept = self._kept.get(step)
        if kept is not None and kept[0] == key:
            value: T = kept[1]
            return value
        self._kept.pop(step, None)  # freed before the new one is built
        value = make()
        self._kept[step] = (key, value)
        return value


def data_key(spec: TrainSpec, params: dict[str, object] | None = None) -> str:
    """The spec as the data steps read it: all of it but what only boosting and scoring read
    (so a field added to the spec counts until it is listed here), and of the parameters only
    `params`, those a step reads."""
    blank = replace(
        spec,
        params=dict(sorted((params or {}).items())),
        num_boost_round=0,
        early_stopping_rounds=None,
        eval_train_every=0,
        eval_every=None,
        rank_k=0,
        cost_budget=None,
    )
    return repr(blank)
