"""Chunked reading (`datasets.chunks`): what a pass holds follows the chunk, not the rows read."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from xgenerator.datasets import chunks, references

# 64 MB of floats: pyarrow pre-buffers up to 32 MiB at a time, a smaller file all at once
GROUPS, GROUP_ROWS = 16, 50_000


def write(path: Path) -> None:
    rng = np.random.default_rng(0)
    table = pa.table({f"x{i}": rng.normal(size=GROUPS * GROUP_ROWS) for i in range(10)})
    pq.write_table(table, path, row_group_size=GROUP_ROWS)


def stored(path: Path) -> Iterator[pa.RecordBatch]:
    with chunks.reader(str(path)) as parquet:
        yield from chunks.chunks(parquet, GROUP_ROWS)


def referenced(path: Path) -> Iterator[pa.RecordBatch]:
    yield from references.open_parts(f"file://{path}", None, {}).iter_batches(GROUP_ROWS)


@pytest.mark.parametrize("read", [stored, referenced], ids=["stored", "referenced"])
def test_a_pass_holds_the_row_group_it_reads_not_those_before(
    tmp_path: Path, read: Callable[[Path], Iterator[pa.RecordBatch]]
) -> None:
    """Pre-buffered, pyarrow would keep every row group read until the file closes: the
    memory held would grow along the pass (twice as much at the end here). Held: Arrow's
    pool, and the Python heap, where the bytes read through a Python file object live."""
    path = tmp_path / "data.parquet"
    write(path)
    held = []
    tracemalloc.start()
    try:
        for batch in read(path):
            assert batch.num_rows == GROUP_ROWS
            held.append(pa.total_allocated_bytes() + tracemalloc.get_traced_memory()[0])
            del batch
    finally:
        tracemalloc.stop()
    assert len(held) == GROUPS
    assert max(held) <= 1.25 * held[0], held
