"""The data a search's trials share inside one job process (`ml/reuse.py` says what and why).

A worker's pool process keeps its job process from one job to the next (`jobs/isolation.py`),
and a search queues its trials one after another, so one process often runs trial after trial
of one search. The last trial's frame is kept here, with the `Reuse` holding its prepared data
and matrices, for the next trial of that search: the same search (so the same user), the same
dataset, the same columns.

It is kept only for a frame of at most a quarter of `isolation.MAX_IDLE_PRIVATE`: a job
process that holds more than that after a job exits, and the prepared frame and the matrices
on top of the frame must not push it out. Every job that loads a dataset's frame does it
through `load`, which drops the kept data first unless it is the job's own. Where jobs run
in the pool process itself (`isolate_jobs` off), that bound is what the pool process holds
between jobs.
"""

from __future__ import annotations

import pandas as pd

from xgenerator.context import Context
from xgenerator.datasets import repository as datasets
from xgenerator.db.tables import Dataset, Job
from xgenerator.jobs import isolation
from xgenerator.ml.reuse import Reuse

MAX_FRAME_BYTES = isolation.MAX_IDLE_PRIVATE // 4

_Key = tuple[str | None, str, tuple[str, ...]]
_kept: tuple[_Key, Reuse] | None = None


def load(
    context: Context, job: Job, dataset: Dataset, columns: list[str], *, reusable: bool
) -> tuple[pd.DataFrame, Reuse | None]:
    """The job's frame, and what earlier trainings on it left to reuse. `reusable`: the job is
    a search's trial that starts from no model (any other job gets None, and frees what was
    kept before its own data is read)."""
    global _kept
    key: _Key = (job.parent_job_id, dataset.id, (*columns,))
    if reusable and _kept is not None and _kept[0] == key:
        return _kept[1].frame, _kept[1]
    drop()  # before this job's data is loaded, not beside it
    frame = datasets.load_frame(context.store, dataset, columns=columns)
    if not reusable or frame.memory_usage(deep=True).sum() > MAX_FRAME_BYTES:
        return frame, None
    _kept = (key, Reuse(frame))
    return frame, _kept[1]


def drop() -> None:
    """Let the kept data go (a job about to load data of its own)."""
    global _kept
    _kept = None
