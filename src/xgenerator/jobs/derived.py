"""What jobs that stream datasets share: open a stored Parquet file, write a derived one,
and turn chunk counts into progress (which is also where a cancel is noticed)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

import pyarrow.parquet as pq

from xgenerator.artifacts import ArtifactStore
from xgenerator.context import Context
from xgenerator.datasets import registry as datasets
from xgenerator.datasets.stream import OnChunk, Written
from xgenerator.db.tables import Dataset, Job
from xgenerator.jobs.kinds import Artifact
from xgenerator.jobs.runtime import Runtime


@contextmanager
def open_parquet(store: ArtifactStore, key: str) -> Iterator[pq.ParquetFile]:
    """The stored file for chunked reading. Not pre-buffered: pyarrow would keep every row
    group it pre-buffered until the file closes, so memory would grow with the dataset (seen
    in bench/batch_memory.py); not memory-mapped, so the pages read do not count as ours."""
    local = store.local_path(key)
    if local is not None:
        with pq.ParquetFile(local, pre_buffer=False) as parquet:
            yield parquet
        return
    with store.open(key) as handle, pq.ParquetFile(handle, pre_buffer=False) as parquet:
        yield parquet


@contextmanager
def new_parquet(store: ArtifactStore) -> Iterator[tuple[str, IO[bytes]]]:
    """A new key and a handle to write a Parquet file to; a failure (or a cancel) part way
    deletes the partial file. Once it is written, the caller lists the key in
    `Outcome.artifact_keys` and adds its dataset row in `Outcome.commit`, so that a success
    that is never recorded leaves nothing behind either."""
    key = store.new_key("datasets", ".parquet")
    try:
        with store.open(key, "wb") as handle:
            yield key, handle
    except BaseException:
        store.delete(key)
        raise


def derived_dataset(context: Context, job: Job, name: str, key: str, written: Written) -> Dataset:
    """The unsaved dataset row for a file `new_parquet` wrote for `job`."""
    size = context.store.size(key)
    return datasets.derived_row(job.user_id, name[:200], key, size, written.schema, job.id)


PARQUET = "application/vnd.apache.parquet"


def as_artifact(context: Context, name: str, key: str) -> Artifact:
    return Artifact(name=name, content_type=PARQUET, key=key, size=context.store.size(key))


def chunk_progress(runtime: Runtime, what: str) -> OnChunk:
    """Progress per chunk; each write (at most one per interval) may raise JobCancelled."""

    def on_chunk(done: int, total: int) -> None:
        percent = 100.0 * done / total if total else 100.0
        runtime.progress(percent=min(percent, 99.0), message=f"{what}: {done}/{total}")

    return on_chunk
