"""What jobs that stream datasets share: open a stored Parquet file, write a derived one,
and turn chunk counts into progress (which is also where a cancel is noticed)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import pyarrow.parquet as pq

from xgenerator.artifacts import ArtifactStore
from xgenerator.context import Context
from xgenerator.datasets import references
from xgenerator.datasets import repository as datasets
from xgenerator.datasets.chunks import OnChunk, Written, reader
from xgenerator.db.tables import Dataset, Job
from xgenerator.jobs.kinds import Artifact, Outcome
from xgenerator.jobs.runtime import Runtime


@contextmanager
def open_parquet(store: ArtifactStore, key: str) -> Iterator[pq.ParquetFile]:
    """The stored file for chunked reading (`chunks.reader`: not pre-buffered); not
    memory-mapped, so the pages read do not count as ours."""
    local = store.local_path(key)
    if local is not None:
        with reader(local) as parquet:
            yield parquet
        return
    with store.open(key) as handle, reader(handle) as parquet:
        yield parquet


@contextmanager
def open_dataset(store: ArtifactStore, dataset: Dataset) -> Iterator[Any]:
    """A dataset for chunked reading: its stored file, or the files it references (read as
    one, see `datasets.references.Parts`)."""
    if dataset.source_uri is None:
        with open_parquet(store, dataset.storage_key) as parquet:
            yield parquet
        return
    yield references.open_parts(dataset.source_uri, dataset.source_fingerprint, store.s3_options)


@contextmanager
def new_parquet(store: ArtifactStore) -> Iterator[tuple[str, IO[bytes]]]:
    """A new key and a handle to write a Parquet file to; a failure (or a cancel) part way
    deletes the partial file. Once it is written, the caller returns `derived_outcome`, so
    that a success that is never recorded leaves nothing behind either."""
    key = store.new_key("datasets", ".parquet")
    try:
        with store.open(key, "wb") as handle:
            yield key, handle
    except BaseException:
        store.delete(key)
        raise


PARQUET = "application/vnd.apache.parquet"


def derived_outcome(
    context: Context,
    job: Job,
    key: str,
    written: Written,
    *,
    name: str,
    filename: str,
    result: dict[str, Any],
) -> Outcome:
    """The outcome of a job whose product is the dataset `new_parquet` wrote at `key`: its row
    is added in the transaction that marks the job succeeded, its file is the job's download
    `filename`, and `result` gains the new dataset's id and row count."""
    size = context.store.size(key)
    row = datasets.derived_row(job.user_id, name[:200], key, size, written.schema, job.id)
    return Outcome(
        result={**result, "dataset_id": row.id, "rows": written.rows},
        commit=lambda session: session.add(row),
        artifacts=[Artifact(name=filename, content_type=PARQUET, key=key, size=size)],
    )


def chunk_progress(runtime: Runtime, what: str) -> OnChunk:
    """Progress per chunk; each write (at most one per interval) may raise JobCancelled."""

    def on_chunk(done: int, total: int) -> None:
        percent = 100.0 * done / total if total else 100.0
        runtime.progress(percent=min(percent, 99.0), message=f"{what}: {done}/{total}")

    return on_chunk
