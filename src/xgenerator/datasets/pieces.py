"""A dataset as pieces other machines read: one Parquet row group each, named by protocol,
path and storage options, so a Dask worker opens it from the store itself (`ml.distributed`).

A stored dataset is its file in the artifact store (a local directory the Dask workers
share, or S3); a referenced one its registered files, checked against their fingerprint
here, before any worker reads them. The rows come out as `load_frame` gives them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import fsspec
import pandas as pd
import pyarrow.parquet as pq

from xgenerator.artifacts import ArtifactStore
from xgenerator.datasets import references
from xgenerator.datasets.ingest import _normalize
from xgenerator.db.tables import Dataset


@dataclass(frozen=True)
class RowGroup:
    """What a worker opens: one row group of one file, the columns asked for."""

    protocol: str
    path: str
    row_group: int
    columns: list[str]
    # (first row, rows) within the row group: a large group read by several workers
    rows: tuple[int, int] | None = None
    # a referenced file is cast to the stored type vocabulary as it is read, as in load_frame
    normalize: bool = False
    options: dict[str, Any] = field(default_factory=dict)


def dataset_pieces(
    store: ArtifactStore, dataset: Dataset, columns: list[str], workers: int = 1
) -> list[tuple[RowGroup, int]]:
    """The dataset's row groups, in reading order, with their row counts. With fewer groups
    than two per worker, each group is cut into slices so that every worker gets a share
    (each slice reads its whole group: the cost of a small dataset only)."""
    if dataset.source_uri is None:
        files = [(store.protocol, store.path(dataset.storage_key), store.options, False)]
    else:
        parts = references.open_parts(
            dataset.source_uri, dataset.source_fingerprint, store.s3_options
        )
        protocol = "s3" if dataset.source_uri.startswith("s3://") else "file"
        files = [(protocol, path, store.s3_options, True) for path in parts.paths]
    groups = []
    for protocol, path, options, normalize in files:
        fs = fsspec.filesystem(protocol, **options)
        with fs.open(path, "rb") as handle, pq.ParquetFile(handle) as parquet:
            metadata = parquet.metadata
        for i in range(metadata.num_row_groups):
            source = RowGroup(protocol, path, i, list(columns), None, normalize, dict(options))
            groups.append((source, metadata.row_group(i).num_rows))
    cuts = math.ceil(2 * workers / len(groups)) if groups else 1
    if cuts <= 1:
        return groups
    pieces = []
    for group, count in groups:
        size = math.ceil(count / cuts)
        for start in range(0, count, max(size, 1)):
            rows = min(size, count - start)
            pieces.append((replace(group, rows=(start, rows)), rows))
    return pieces


def read_piece(piece: RowGroup) -> pd.DataFrame:
    """One row group as a pandas frame (runs on a Dask worker)."""
    fs = fsspec.filesystem(piece.protocol, **piece.options)
    with fs.open(piece.path, "rb") as handle, pq.ParquetFile(handle, pre_buffer=False) as parquet:
        table = parquet.read_row_group(piece.row_group, columns=piece.columns)
    if piece.rows is not None:
        table = table.slice(*piece.rows)
    if piece.normalize:
        table = _normalize(table, "parquet")
    frame: pd.DataFrame = table.to_pandas()
    return frame
