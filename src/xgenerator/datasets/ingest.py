"""Turn an uploaded file into a Parquet file the service wrote itself, and describe it.

Uploads are untrusted: the format comes from the bytes, never the file name; nothing is
unpickled or evaluated; every rejection is an `InvalidDataset` with a machine-readable
``details["reason"]``.

Choices callers can rely on:

* CSV is parsed by pyarrow (fast, strict, one pass). The delimiter is a comma, unless the first line
  has no comma and exactly one of ``;`` or tab, which is then used.
* A ``;``-separated file may write numbers with a decimal comma (``12,5``), as spreadsheets do in
  much of Europe: a text column whose every value is such a number becomes float64.
* Missing values: empty, NA, N/A, n/a, null, NULL, NaN, nan. ``true``/``false`` (also ``True``,
  ``TRUE``...) are booleans; 1/0 stay integers.
* One small type vocabulary is stored, for CSV and Parquet alike: int64; float64 (floats, decimals,
  and integers with missing values, which pandas would read back as float64 anyway); bool; string
  (dictionaries are decoded); datetime64[ns] (with its time zone, if any).
* Datetimes are inferred from CSV only in ISO-8601 form (``2024-03-10``, ``2024-03-10T23:30``,
  ``2024-03-10 23:30:00.5``, with ``Z``, ``+01:00``, ``-0500`` or no zone), so 01/02/03 can never be
  misread. pyarrow parses most; a column mixing values with and without an offset is parsed here,
  as UTC (a value without an offset is taken as UTC). Times of day and dates outside 1677-2262
  stay strings.
"""

from __future__ import annotations

import csv
import os
import re
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv
import pyarrow.parquet as pq

from xgenerator.errors import InvalidDataset

if TYPE_CHECKING:
    import pandas as pd

Format = Literal["csv", "parquet"]
Kind = Literal["numeric", "categorical", "boolean", "datetime"]

_HEAD_BYTES = 64 * 1024
_MAGIC = b"PAR1"
_BOM = b"\xef\xbb\xbf"
_NULL_VALUES = ["", "NA", "N/A", "n/a", "null", "NULL", "NaN", "nan"]
_TRUE_VALUES = ["true", "True", "TRUE"]
_FALSE_VALUES = ["false", "False", "FALSE"]
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_ISO_DATETIME = (
    r"^\s*\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?\s*$"
)


@dataclass(frozen=True)
class IngestLimits:
    """Shape limits from the settings; the byte size is bounded earlier, by the upload route."""

    max_rows: int
    max_columns: int
    # A Parquet file may decompress to at most this many times its own size (with a floor):
    # 298 KB that inflate to 500 MB are a bomb, not a dataset.
    max_expansion: float = 100.0
    expansion_floor_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True)
class IngestResult:
    """What the registry records about a stored dataset; `schema` is `describe`'s output."""

    original_format: Format
    row_count: int
    column_count: int
    schema: dict[str, Any]


def ingest(source: Path, destination: Path, limits: IngestLimits) -> IngestResult:
    """Read an upload (CSV or Parquet, told apart by its bytes), validate it, store it as Parquet.

    The file at `destination` appears whole or not at all: it is written next to it and renamed.
    """
    fmt, head = _sniff(source)
    try:
        if fmt == "parquet":
            table = _read_parquet(source, limits)
        else:
            _check_header_width(source, head, limits)
            table = _read_csv(source, head)
            _check_shape(table.num_rows, table.num_columns, limits)
        table = _normalize(table, fmt)
        _write_atomically(table, destination)
        return IngestResult(fmt, table.num_rows, table.num_columns, describe(table))
    finally:
        # Arrow's allocator keeps freed pages for reuse: give them back, so that one large
        # upload does not leave the API process holding gigabytes.
        pa.default_memory_pool().release_unused()


def describe(data: pa.Table | pd.DataFrame) -> dict[str, Any]:
    """The JSON-safe schema the API shows and training reads its feature lists from.

    Booleans count as numeric features (XGBoost sees 0/1); datetimes (kind "datetime") become
    numeric parts at training (`ml.datetimes`), so they are in neither list. Raises
    TypeError for a column type that has no kind (the service should never build such data).
    """
    table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
    columns: list[dict[str, Any]] = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        dtype, kind = _dtype_and_kind(column.type)
        nulls = column.null_count
        if pa.types.is_floating(column.type):  # pandas writes missing floats as NaN, not null
            nulls += pc.sum(pc.is_nan(column)).as_py() or 0
        columns.append({"name": str(name), "dtype": dtype, "kind": kind, "null_count": int(nulls)})
    return {
        "row_count": table.num_rows,
        "columns": columns,
        "numeric_features": [c["name"] for c in columns if c["kind"] in ("numeric", "boolean")],
        "categorical_features": [c["name"] for c in columns if c["kind"] == "categorical"],
    }


def _sniff(source: Path) -> tuple[Format, bytes]:
    """Tell Parquet from CSV text, and refuse anything else before a parser sees it."""
    with source.open("rb") as f:
        head = f.read(_HEAD_BYTES)
        size = f.seek(0, os.SEEK_END)
        f.seek(max(size - len(_MAGIC), 0))
        tail = f.read()
        if size > 2 * len(_MAGIC) and head.startswith(_MAGIC) and tail == _MAGIC:
            return "parquet", head
        if _is_blank(f, head):
            raise InvalidDataset("The file is empty.", {"reason": "empty_file"})
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InvalidDataset("The file is UTF-16 text; save it as UTF-8.", {"reason": "not_utf8"})
    if head.startswith(b"\x80") or b"\x00" in head:  # \x80 opens a pickle; NULs never occur in text
        raise InvalidDataset(
            "The file is not a CSV or Parquet file.", {"reason": "unsupported_format"}
        )
    return "csv", head


def _is_blank(f: Any, head: bytes) -> bool:
    """Whether the file holds nothing but whitespace (reads on only while that is still true)."""
    chunk = head.removeprefix(_BOM)
    f.seek(len(head))
    while not chunk.strip():
        if len(chunk := f.read(_HEAD_BYTES)) == 0:
            return True
    return False


def _delimiter(head: bytes) -> str:
    """A comma, unless the first line has none and exactly one of `;` or tab."""
    first_line = next((line for line in head.removeprefix(_BOM).splitlines() if line.strip()), b"")
    if b"," not in first_line and (b";" in first_line) != (b"\t" in first_line):
        return ";" if b";" in first_line else "\t"
    return ","


def _read_csv(source: Path, head: bytes) -> pa.Table:
    """Parse in one pass; map pyarrow's failures to reasons a user can act on."""
    delimiter = _delimiter(head)
    ragged: list[Any] = []

    def on_invalid_row(row: Any) -> str:
        if not row.text.strip():  # a line of spaces is as harmless as an empty one
            return "skip"
        ragged.append(row)
        return "error"

    # pyarrow cannot find the columns of a header line with no line break after it.
    single_line = len(head) < _HEAD_BYTES and len(head.splitlines()) == 1
    try:
        with pa.BufferReader(head + b"\n") if single_line else pa.OSFile(str(source)) as stream:
            table = pv.read_csv(
                stream,
                parse_options=pv.ParseOptions(
                    delimiter=delimiter, newlines_in_values=True, invalid_row_handler=on_invalid_row
                ),
                convert_options=pv.ConvertOptions(
                    check_utf8=True,
                    null_values=_NULL_VALUES,
                    strings_can_be_null=True,
                    true_values=_TRUE_VALUES,
                    false_values=_FALSE_VALUES,
                ),
            )
        _check_names(table.column_names, "csv")
        table = _iso_datetimes(table)
        return _decimal_commas(table) if delimiter == ";" else table
    except UnicodeDecodeError as exc:  # pyarrow decodes column names lazily, in Python
        raise InvalidDataset(
            "The header row is not UTF-8 text; save the file as UTF-8.",
            {"reason": "not_utf8", "line": 1},
        ) from exc
    except pa.ArrowInvalid as exc:
        if not ragged:
            raise InvalidDataset(
                f"The CSV file could not be parsed: {exc}", {"reason": "unreadable_csv"}
            ) from exc
        expected, line, actual = ragged[0].expected_columns, None, ragged[0].actual_columns
        if found := _first_ragged_row(source, delimiter, expected):
            line, actual = found
        where = f"Line {line}" if line else "A row"
        raise InvalidDataset(
            f"{where} has {actual} fields but the header has {expected}; every row needs one value"
            " per column (quote values that contain the delimiter).",
            {"reason": "ragged_rows", "line": line, "expected": expected, "actual": actual},
        ) from exc


def _iso_datetimes(table: pa.Table) -> pa.Table:
    """Text columns of ISO-8601 date-times pyarrow left as strings (offsets on some values
    only), as UTC timestamps."""
    import pandas as pd  # only for the rare column that needs it

    for index, column in enumerate(table.columns):
        if not pa.types.is_string(column.type) or column.null_count == len(column):
            continue
        if not pc.all(pc.match_substring_regex(column, _ISO_DATETIME)).as_py():
            continue
        text = pd.Series(column.to_pylist(), dtype=object).str.strip()
        parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
        if int(parsed.isna().sum()) != column.null_count:  # e.g. month 13, year 3000
            continue
        stamps = pa.array(parsed.astype("datetime64[ns, UTC]"), type=pa.timestamp("ns", tz="UTC"))
        table = table.set_column(index, table.field(index).name, stamps)
    return table


_DECIMAL_COMMA = r"^\s*[-+]?\d+(,\d+)?\s*$"


def _decimal_commas(table: pa.Table) -> pa.Table:
    """Text columns of numbers written with a decimal comma, as float64."""
    for index, column in enumerate(table.columns):
        if not pa.types.is_string(column.type) or column.null_count == len(column):
            continue
        if not pc.all(pc.match_substring_regex(column, _DECIMAL_COMMA)).as_py():
            continue
        numbers = pc.replace_substring(pc.utf8_trim_whitespace(column), ",", ".")
        table = table.set_column(index, table.field(index).name, numbers.cast(pa.float64()))
    return table


def _first_ragged_row(source: Path, delimiter: str, expected: int) -> tuple[int, int] | None:
    """(line, field count) of the first ragged row, for the message (pyarrow gives no line).

    Only runs on the error path; streams, so it costs no memory.
    """
    try:
        with source.open(encoding="utf-8-sig", errors="replace", newline="") as f:
            reader = csv.reader(f, delimiter=delimiter)
            line = 1
            for fields in reader:
                blank = len(fields) <= 1 and not "".join(fields).strip()
                if not blank and len(fields) != expected:
                    return line, len(fields)
                line = reader.line_num + 1
    except csv.Error:  # e.g. a field over the csv module's size limit
        return None
    return None


def _check_header_width(source: Path, head: bytes, limits: IngestLimits) -> None:
    """Count the header's fields before pyarrow parses anything: a 40 MB file of 100,000
    columns took 24 s and 2.8 GB to parse before its width was refused."""
    delimiter = _delimiter(head)
    with source.open(encoding="utf-8-sig", errors="replace", newline="") as f:
        try:
            header = next(csv.reader(f, delimiter=delimiter), [])
        except csv.Error:  # a field over the csv module's size limit: pyarrow says why
            return
    if len(header) > limits.max_columns:
        _check_shape(1, len(header), limits)


def _read_parquet(source: Path, limits: IngestLimits) -> pa.Table:
    """Check names, shape, types and decompressed size from the footer before any data is
    decompressed: nested columns count as every leaf they hold, and are refused."""
    try:
        with pa.OSFile(str(source)) as stream:
            parquet = pq.ParquetFile(stream)
            metadata, schema = parquet.metadata, parquet.schema_arrow
            _check_names(schema.names, "parquet")
            _check_shape(metadata.num_rows, max(len(schema), metadata.num_columns), limits)
            _check_flat(schema)
            _check_expansion(metadata, source.stat().st_size, limits)
            return parquet.read()
    except (pa.ArrowException, OSError) as exc:
        raise InvalidDataset(
            "The Parquet file is corrupt or unreadable.", {"reason": "unreadable_parquet"}
        ) from exc


def _check_flat(schema: pa.Schema) -> None:
    for field in schema:
        if pa.types.is_nested(field.type):
            raise InvalidDataset(
                f"Column {field.name!r} has type {field.type}; lists, structs and maps are not"
                " supported (flatten them first).",
                {
                    "reason": "unsupported_column_type",
                    "column": field.name,
                    "type": str(field.type),
                },
            )


def _check_expansion(metadata: pq.FileMetaData, size: int, limits: IngestLimits) -> None:
    inflated = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
    bound = max(limits.expansion_floor_bytes, int(size * limits.max_expansion))
    if inflated > bound:
        raise InvalidDataset(
            f"The file would take {inflated:,} bytes once decompressed; the limit for a file "
            f"of this size is {bound:,}.",
            {"reason": "too_large_decompressed", "bytes": inflated, "limit": bound},
        )


def _check_names(names: list[str], fmt: Format) -> None:
    stripped = [name.strip() for name in names]
    if fmt == "csv" and (not all(stripped) or all(_NUMBER.fullmatch(n) for n in stripped)):
        raise InvalidDataset(
            "The first row must name the columns; it looks like data or has an empty name.",
            {"reason": "no_header"},
        )
    if empty := [i for i, name in enumerate(stripped) if not name]:
        raise InvalidDataset(
            "Every column needs a non-empty name.",
            {"reason": "empty_column_name", "columns": empty},
        )
    if duplicates := sorted(name for name, n in Counter(stripped).items() if n > 1):
        raise InvalidDataset(
            f"Column names must be unique; repeated: {', '.join(duplicates)}.",
            {"reason": "duplicate_columns", "columns": duplicates},
        )


def _check_shape(rows: int, columns: int, limits: IngestLimits) -> None:
    if columns > limits.max_columns:
        raise InvalidDataset(
            f"The file has {columns} columns; the limit is {limits.max_columns}.",
            {"reason": "too_many_columns", "limit": limits.max_columns, "columns": columns},
        )
    if columns == 0 or rows == 0:
        raise InvalidDataset("The file has no data rows.", {"reason": "no_rows"})
    if rows > limits.max_rows:
        raise InvalidDataset(
            f"The file has {rows} rows; the limit is {limits.max_rows}.",
            {"reason": "too_many_rows", "limit": limits.max_rows, "rows": rows},
        )


def _normalize(table: pa.Table, fmt: Format) -> pa.Table:
    """Cast to the stored vocabulary, strip names, and drop metadata (e.g. a pandas index)."""
    names = [name.strip() for name in table.column_names]
    columns = [_normalize_column(n, c, fmt) for n, c in zip(names, table.columns, strict=True)]
    return pa.table(columns, names=names)


def _normalize_column(name: str, column: Any, fmt: Format) -> Any:
    kind = column.type
    if pa.types.is_dictionary(kind):
        return _normalize_column(name, column.cast(kind.value_type), fmt)
    if pa.types.is_boolean(kind):
        return column
    if pa.types.is_integer(kind) and column.null_count == 0:
        try:
            return column.cast(pa.int64())
        except pa.ArrowInvalid:  # uint64 beyond int64
            pass
    if pa.types.is_null(kind) or pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return column.cast(pa.float64(), safe=False)  # ints beyond 2**53 round, as in pandas
    if pa.types.is_decimal(kind):
        return column.cast(pa.float64(), safe=False)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return column.cast(pa.string())
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        try:
            return column.cast(pa.timestamp("ns", tz=getattr(kind, "tz", None)))
        except pa.ArrowInvalid:  # outside datetime64[ns]'s years 1677-2262
            return column.cast(pa.string())
    if pa.types.is_time(kind):
        return column.cast(pa.string())
    if fmt == "csv" and pa.types.is_binary(kind):  # what pyarrow infers for invalid UTF-8
        raise InvalidDataset(
            f"Column {name!r} is not UTF-8 text; save the file as UTF-8.",
            {"reason": "not_utf8", "column": name},
        )
    raise InvalidDataset(
        f"Column {name!r} has type {kind}; only numbers, booleans, text and dates are supported.",
        {"reason": "unsupported_column_type", "column": name, "type": str(kind)},
    )


def _dtype_and_kind(kind: Any) -> tuple[str, Kind]:
    """The pandas-style dtype name and the kind of an Arrow type."""
    if pa.types.is_boolean(kind):
        return "bool", "boolean"
    if pa.types.is_integer(kind):
        return f"{'u' if pa.types.is_unsigned_integer(kind) else ''}int{kind.bit_width}", "numeric"
    if pa.types.is_floating(kind):
        return f"float{kind.bit_width}", "numeric"
    if pa.types.is_decimal(kind):
        return str(kind), "numeric"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return "string", "categorical"
    if pa.types.is_dictionary(kind):
        return "category", "categorical"
    if pa.types.is_timestamp(kind):
        zone = f", {kind.tz}" if kind.tz else ""
        return f"datetime64[{kind.unit}{zone}]", "datetime"
    if pa.types.is_date(kind):
        return str(kind), "datetime"
    raise TypeError(f"no dataset kind for Arrow type {kind}")


def _write_atomically(table: pa.Table, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(
        dir=destination.parent, prefix=f".{destination.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(fd, "wb") as f:
            pq.write_table(table, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, destination)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
