"""Streaming a Parquet dataset through a job: read it in chunks, write the output as it comes.

A job that derives a dataset row by row (batch prediction, normalize, anomalies) holds one
chunk at a time, so its memory depends on the chunk size, not on the dataset. The output's
schema description (`ingest.describe`) is added up chunk by chunk for the same reason.
The caller opens the files (see `jobs/kinds/derived.py`), with `reader` so that they are
not pre-buffered.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from xgenerator.datasets.ingest import describe

if TYPE_CHECKING:
    import pandas as pd

# Called after each chunk with (rows done, rows in total); may raise to stop the job.
OnChunk = Callable[[int, int], None]


@dataclass(frozen=True)
class Written:
    """What a finished sink wrote: the row count and `describe`'s schema of the whole file."""

    rows: int
    schema: dict[str, Any]


class ParquetSink:
    """Append tables of one fixed schema to a Parquet file on `handle`."""

    def __init__(self, handle: IO[bytes], schema: pa.Schema) -> None:
        # A source's pandas metadata would describe columns the output no longer matches.
        schema = schema.remove_metadata()
        self.schema = schema
        self._writer = pq.ParquetWriter(handle, schema)
        self._rows = 0
        self._nulls = [0] * len(schema)
        self._columns = describe(schema.empty_table())["columns"]

    def write(self, table: pa.Table) -> None:
        table = table.select(self.schema.names).cast(self.schema)
        for i, column in enumerate(describe(table)["columns"]):
            self._nulls[i] += column["null_count"]
        self._rows += table.num_rows
        self._writer.write_table(table)

    def close(self) -> Written:
        self._writer.close()
        columns = [c | {"null_count": n} for c, n in zip(self._columns, self._nulls, strict=True)]
        kinds = {c["name"]: c["kind"] for c in columns}
        schema = {
            "row_count": self._rows,
            "columns": columns,
            "numeric_features": [n for n, k in kinds.items() if k in ("numeric", "boolean")],
            "categorical_features": [n for n, k in kinds.items() if k == "categorical"],
        }
        return Written(self._rows, schema)

    def abort(self) -> None:
        """Close the writer after a failure; the caller deletes the half-written file."""
        try:
            self._writer.close()
        except Exception:  # noqa: S110 - the original error is the one that matters
            pass


def reader(source: str | os.PathLike[str] | IO[bytes]) -> pq.ParquetFile:
    """A Parquet file for chunked reading (a context manager). Not pre-buffered: pyarrow keeps
    every row group it pre-buffered until the file closes, so a pass over the file would hold
    all of it (bench/batch_memory.py; bench/external_memory.py measured 300 MiB more per
    million rows of 20 floats)."""
    return pq.ParquetFile(source, pre_buffer=False)


def chunks(
    source: pq.ParquetFile, chunk_rows: int, columns: list[str] | None = None
) -> Iterator[pa.RecordBatch]:
    """The file's rows, at most `chunk_rows` at a time, only the columns asked for."""
    yield from source.iter_batches(batch_size=chunk_rows, columns=columns)


def frames(
    source: pq.ParquetFile, chunk_rows: int, columns: list[str] | None = None
) -> Iterator[pd.DataFrame]:
    """`chunks` as pandas frames. Arrow's allocator keeps freed pages for reuse: they are
    given back after each chunk, so that they do not add to the frames' memory."""
    for batch in chunks(source, chunk_rows, columns):
        yield batch.to_pandas()
        pa.default_memory_pool().release_unused()
