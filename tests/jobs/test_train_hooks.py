"""The training job's hooks: checkpoints every `checkpoint_every` rounds, except after the
last round and when the rounds left end the job within `checkpoint_min_interval_s` (the model
itself is stored next; that checkpoint would be among the job's largest, written only to be
deleted)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

from tests.ml.conftest import FEATURES, make_frame
from xgenerator.jobs.kinds.train import _Hooks
from xgenerator.jobs.runtime import Runtime
from xgenerator.ml.train import TrainSpec, train


class Recorded:
    """Stands in for the job runtime: what the hooks asked it to do."""

    def __init__(self) -> None:
        self.checkpoints: list[int] = []
        self.rounds = 0

    def progress(self, **_: Any) -> None:
        self.rounds += 1

    def save_checkpoint(self, data: bytes, round: int) -> None:
        assert data
        self.checkpoints.append(round)


SPEC = TrainSpec(
    task_type="classification",
    target="yes_no",
    features=FEATURES,
    params={"max_depth": 2, "nthread": 1},
    num_boost_round=15,
)


def test_no_checkpoint_after_the_last_round() -> None:
    runtime = Recorded()
    train(make_frame(), SPEC, _Hooks(cast(Runtime, runtime), checkpoint_every=5))
    assert runtime.checkpoints == [5, 10]


def test_checkpoints_are_at_most_one_per_interval() -> None:
    """A job shorter than the interval writes none (each checkpoint is a whole model)."""
    runtime = Recorded()
    hooks = _Hooks(cast(Runtime, runtime), checkpoint_every=5, checkpoint_min_interval_s=3600)
    train(make_frame(), SPEC, hooks)
    assert runtime.checkpoints == []


def test_no_checkpoint_when_the_rounds_left_end_the_job_within_the_interval() -> None:
    """A clock that reads one second per round: with a 6 s interval, a 15-round job is 5 s
    from its end at round 10 and writes none; a 30-round job writes at rounds 10 and 20, one
    interval apart, and none at 25 (5 s after the last)."""
    written = {}
    for rounds in (15, 30):
        runtime = Recorded()

        def clock(runtime: Recorded = runtime) -> float:
            return float(runtime.rounds)

        hooks = _Hooks(
            cast(Runtime, runtime), checkpoint_every=5, checkpoint_min_interval_s=6, clock=clock
        )
        train(make_frame(), replace(SPEC, num_boost_round=rounds), hooks)
        written[rounds] = runtime.checkpoints
    assert written == {15: [], 30: [10, 20]}
