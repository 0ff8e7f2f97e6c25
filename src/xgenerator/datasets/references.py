"""Datasets by reference: Parquet that already lives in a bucket or a local folder.

The operator lists the locations users may register (`XGEN_REGISTER_ALLOWED_PREFIXES`).
A URI is checked against them before anything is opened, listed or stat'ed: it is normalised
first (``..`` segments are refused outright), and a local path is checked again once its
symlinks are resolved, as is every file found below it, so no link leads outside.
Nothing here writes or deletes the user's files.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from xgenerator.datasets.chunks import reader
from xgenerator.datasets.ingest import (
    IngestLimits,
    _check_flat,
    _check_names,
    _check_shape,
    _normalize,
    describe,
)
from xgenerator.errors import Forbidden, InvalidDataset, InvalidInput

SAMPLE_ROWS = 1_000
OFF = "registration is off"


@dataclass(frozen=True)
class Location:
    """A checked location: the protocol and the normalised path fsspec opens."""

    protocol: str  # "file" or "s3"
    path: str  # an absolute local path, or bucket/key

    @property
    def uri(self) -> str:
        return f"s3://{self.path}" if self.protocol == "s3" else f"file://{self.path}"


@dataclass(frozen=True)
class Reference:
    """What the registry records about a referenced dataset."""

    location: Location
    parts: list[str]  # the Parquet files, in reading order
    row_count: int
    column_count: int
    size_bytes: int
    fingerprint: str
    schema: dict[str, Any]


def check_location(uri: str, allowed: list[str]) -> Location:
    """The normalised location of `uri` if it lies under an allowed prefix; else Forbidden
    (403) or InvalidInput (422), before any file system call but realpath's."""
    if not allowed:
        raise Forbidden(f"{OFF}: the operator allows no location (XGEN_REGISTER_ALLOWED_PREFIXES)")
    location = _parse(uri)
    prefixes = [_parse(p) for p in allowed]
    if not any(_under(location, p) for p in prefixes):
        raise Forbidden(
            "this location is not under a prefix allowed for registration", {"uri": uri}
        )
    if location.protocol == "file":
        real = Location("file", os.path.realpath(location.path))
        if not any(_under(real, Location("file", os.path.realpath(p.path))) for p in prefixes):
            raise Forbidden("this location leads outside the allowed prefixes", {"uri": uri})
        return real
    return location


def _parse(uri: str) -> Location:
    text = uri.strip()
    if text.startswith("s3://"):
        protocol, rest = "s3", text[len("s3://") :]
    elif text.startswith("file://"):
        protocol, rest = "file", text[len("file://") :]
    elif text.startswith("/"):
        protocol, rest = "file", text
    else:
        raise InvalidInput("the URI must start with s3://, file:// or /", {"uri": uri})
    if "\\" in rest or "\x00" in rest:
        raise InvalidInput("the URI holds a backslash or a NUL", {"uri": uri})
    parts = [p for p in rest.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise Forbidden("'..' is not allowed in a registered location", {"uri": uri})
    if not parts:
        raise InvalidInput("the URI names no bucket or folder", {"uri": uri})
    path = "/".join(parts)
    return Location(protocol, path if protocol == "s3" else os.path.normpath("/" + path))


def _under(location: Location, prefix: Location) -> bool:
    if location.protocol != prefix.protocol:
        return False
    root = prefix.path.rstrip("/")
    return location.path == root or location.path.startswith(root + "/")


def filesystem(location: Location, s3_options: dict[str, Any]) -> Any:
    return (
        fsspec.filesystem("s3", **s3_options)
        if location.protocol == "s3"
        else (fsspec.filesystem("file"))
    )


def list_parts(fs: Any, location: Location, allowed: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """The Parquet files at `location` (the file itself, or every ``*.parquet`` below the
    folder, sorted), with fsspec's details. A local file whose real path leaves the allowed
    prefixes (a symlink) is refused before it is opened."""
    found = _parts(fs, location)
    if location.protocol == "file":
        for path, _ in found:
            check_location(os.path.realpath(path), allowed)
    if not found:
        raise InvalidDataset("no Parquet file at this location", {"reason": "no_parquet_files"})
    return found


def _parts(fs: Any, location: Location) -> list[tuple[str, dict[str, Any]]]:
    if fs.isfile(location.path):
        return [(location.path, fs.info(location.path))]
    found = fs.find(location.path, detail=True).items()
    return sorted(
        (path, info)
        for path, info in found
        if path.endswith(".parquet") and not os.path.basename(path).startswith((".", "_"))
    )


def inspect(fs: Any, location: Location, allowed: list[str], limits: IngestLimits) -> Reference:
    """Row count and schema from the files' footers and a small sample; the footer checks of
    uploads apply (names, nested types, column and row limits)."""
    parts = list_parts(fs, location, allowed)
    schema: pa.Schema | None = None
    rows = 0
    nulls: dict[str, int] = {}
    sample: pa.Table | None = None
    for path, _info in parts:
        try:
            with fs.open(path, "rb") as handle, pq.ParquetFile(handle) as parquet:
                here = parquet.schema_arrow.remove_metadata()
                if schema is None:
                    schema = here
                    _check_names(here.names, "parquet")
                    _check_flat(here)
                    sample = _sample(parquet)
                elif not here.equals(schema):
                    raise InvalidDataset(
                        f"{os.path.basename(path)} has another schema than the first file",
                        {"reason": "schema_mismatch", "file": os.path.basename(path)},
                    )
                rows += parquet.metadata.num_rows
                _add_nulls(parquet.metadata, nulls)
        except (pa.ArrowException, OSError) as exc:
            raise InvalidDataset(
                f"{os.path.basename(path)} is not a readable Parquet file",
                {"reason": "unreadable_parquet"},
            ) from exc
    assert schema is not None and sample is not None  # noqa: S101 - parts is never empty
    _check_shape(rows, len(schema), limits)
    described = describe(_normalize(sample, "parquet"))
    for column in described["columns"]:
        column["null_count"] = nulls.get(column["name"], 0)
        if column["dtype"] == "int64" and column["null_count"]:
            column["dtype"] = "float64"  # as a full read normalises it
    described["row_count"] = rows
    return Reference(
        location=location,
        parts=[path for path, _ in parts],
        row_count=rows,
        column_count=len(schema),
        size_bytes=sum(int(info.get("size") or 0) for _, info in parts),
        fingerprint=fingerprint(location, parts),
        schema=described,
    )


def _sample(parquet: pq.ParquetFile) -> pa.Table:
    for batch in parquet.iter_batches(batch_size=SAMPLE_ROWS):
        return pa.Table.from_batches([batch])
    return parquet.schema_arrow.empty_table()


def _add_nulls(metadata: pq.FileMetaData, nulls: dict[str, int]) -> None:
    """Nulls per column from the row-group statistics (NaN floats are not counted there)."""
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for i in range(row_group.num_columns):
            column = row_group.column(i)
            stats = column.statistics
            if stats is not None and stats.has_null_count:
                nulls[column.path_in_schema] = nulls.get(column.path_in_schema, 0) + int(
                    stats.null_count
                )


def fingerprint(location: Location, parts: list[tuple[str, dict[str, Any]]]) -> str:
    """Changes when any object changes: path, size and ETag (S3) or mtime (local)."""
    digest = hashlib.sha256(location.uri.encode())
    for path, info in parts:
        stamp = info.get("ETag") or info.get("etag") or info.get("mtime") or ""
        digest.update(f"\n{path}\t{info.get('size')}\t{stamp}".encode())
    return digest.hexdigest()


class Parts:
    """The referenced files read as one Parquet file, for the jobs that stream a dataset in
    chunks (`datasets.chunks`, batch prediction): the first file's schema, the total row
    count, and batches file after file. Batches keep the files' own types."""

    def __init__(self, fs: Any, paths: list[str], schema: pa.Schema, rows: int) -> None:
        self._fs = fs
        self._paths = paths
        self.schema_arrow = schema
        self.metadata = _Rows(rows)

    @property
    def paths(self) -> list[str]:
        """The files, in reading order, as the file system names them."""
        return list(self._paths)

    def iter_batches(
        self, batch_size: int = 65_536, columns: list[str] | None = None
    ) -> Iterator[pa.RecordBatch]:
        for path in self._paths:
            with self._fs.open(path, "rb") as handle, reader(handle) as parquet:
                yield from parquet.iter_batches(batch_size=batch_size, columns=columns)

    def read(self, columns: list[str] | None = None) -> pa.Table:
        tables = []
        for path in self._paths:
            with self._fs.open(path, "rb") as handle:
                tables.append(pq.read_table(handle, columns=columns))
        return pa.concat_tables(tables)


@dataclass(frozen=True)
class _Rows:
    num_rows: int


def open_parts(uri: str, expected: str | None, s3_options: dict[str, Any]) -> Parts:
    """The referenced files, as registered: a changed fingerprint (a file added, replaced or
    swapped for a symlink since) is refused, so a job reads only what was checked."""
    location = _parse(uri)
    fs = filesystem(location, s3_options)
    parts = _parts(fs, location)
    if not parts or (expected is not None and fingerprint(location, parts) != expected):
        raise InvalidDataset(
            "the referenced files changed since they were registered; register them again",
            {"reason": "reference_changed", "uri": uri},
        )
    paths = [path for path, _ in parts]
    rows = 0
    schema: pa.Schema | None = None
    for path in paths:
        with fs.open(path, "rb") as handle, pq.ParquetFile(handle) as parquet:
            rows += parquet.metadata.num_rows
            schema = schema or parquet.schema_arrow.remove_metadata()
    assert schema is not None  # noqa: S101 - parts is never empty
    return Parts(fs, paths, schema, rows)


def read_table(
    uri: str, expected: str | None, s3_options: dict[str, Any], columns: list[str] | None = None
) -> pa.Table:
    """The referenced files as one table, normalised to the stored type vocabulary."""
    return _normalize(open_parts(uri, expected, s3_options).read(columns), "parquet")
