"""Uploads in, one Parquet file or one InvalidDataset out; never a half-written file."""

from __future__ import annotations

import inspect
import math
import pickle
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from xgenerator.datasets.ingest import IngestLimits, describe, ingest
from xgenerator.errors import InvalidDataset

LIMITS = IngestLimits(max_rows=1000, max_columns=50)

GOOD_CSV = (
    "name, age,score,active,note,visits,day\n"
    "ann,31,1.5,true,plain,3,2024-01-02\n"
    'bob,42,NA,false,"has, a comma",,2024-01-03\n'
    'cy,27,2.25,True,"two\nlines",NaN,2024-01-04\n'
    "dee,55,,FALSE,null,N/A,\n"
)


def upload(tmp_path: Path, content: bytes | str, name: str = "upload") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def rejected(tmp_path: Path, content: bytes | str, limits: IngestLimits = LIMITS) -> InvalidDataset:
    destination = tmp_path / "out" / "data.parquet"
    with pytest.raises(InvalidDataset) as caught:
        ingest(upload(tmp_path, content), destination, limits)
    assert not destination.parent.exists() or not any(destination.parent.iterdir())
    assert caught.value.details is not None
    return caught.value


def test_good_csv_schema_and_values(tmp_path: Path) -> None:
    destination = tmp_path / "data.parquet"
    result = ingest(upload(tmp_path, GOOD_CSV), destination, LIMITS)

    assert (result.original_format, result.row_count, result.column_count) == ("csv", 4, 7)
    assert result.schema == {
        "row_count": 4,
        "columns": [
            {"name": "name", "dtype": "string", "kind": "categorical", "null_count": 0},
            {"name": "age", "dtype": "int64", "kind": "numeric", "null_count": 0},
            {"name": "score", "dtype": "float64", "kind": "numeric", "null_count": 2},
            {"name": "active", "dtype": "bool", "kind": "boolean", "null_count": 0},
            {"name": "note", "dtype": "string", "kind": "categorical", "null_count": 1},
            {"name": "visits", "dtype": "float64", "kind": "numeric", "null_count": 3},
            {"name": "day", "dtype": "datetime64[ns]", "kind": "datetime", "null_count": 1},
        ],
        "numeric_features": ["age", "score", "active", "visits"],
        "categorical_features": ["name", "note"],
    }
    frame = pd.read_parquet(destination)
    assert list(frame.columns) == ["name", "age", "score", "active", "note", "visits", "day"]
    assert frame["name"].tolist() == ["ann", "bob", "cy", "dee"]
    assert frame["age"].tolist() == [31, 42, 27, 55]
    assert str(frame["age"].dtype) == "int64"
    assert frame["score"].tolist()[::2] == [1.5, 2.25]
    assert frame["score"].isna().tolist() == [False, True, False, True]
    assert frame["active"].tolist() == [True, False, True, False]
    assert frame["note"].tolist()[:3] == ["plain", "has, a comma", "two\nlines"]
    assert frame["note"].isna().tolist() == [False, False, False, True]
    assert frame["visits"].tolist()[0] == 3.0 and frame["visits"].isna().sum() == 3
    assert str(frame["day"].dtype) == "datetime64[ns]"
    assert frame["day"][0] == pd.Timestamp("2024-01-02") and pd.isna(frame["day"][3])
    assert {p.name for p in tmp_path.iterdir()} == {"upload", "data.parquet"}  # no temp file left


@pytest.mark.parametrize(
    "content",
    [
        b"\xef\xbb\xbfa,b\r\n1,x\r\n2,y\r\n\r\n",  # BOM, CRLF, blank last line
        "a;b\n1;x\n2;y",  # semicolons, no final newline
        "a\tb\n1\tx\n2\ty\n   \n",  # tabs, a line of spaces at the end
    ],
)
def test_csv_dialects(tmp_path: Path, content: bytes | str) -> None:
    destination = tmp_path / "data.parquet"
    result = ingest(upload(tmp_path, content), destination, LIMITS)
    assert result.row_count == 2
    assert pd.read_parquet(destination).to_dict("list") == {"a": [1, 2], "b": ["x", "y"]}


def test_semicolon_files_may_use_decimal_commas(tmp_path: Path) -> None:
    content = "price;qty;code;mixed\n12,5;3;007;1,5\nN/A;4;008;n/a\n -0,25 ;5;009;two\n99;6;010;3\n"
    destination = tmp_path / "data.parquet"
    result = ingest(upload(tmp_path, content), destination, LIMITS)
    kinds = {c["name"]: c["dtype"] for c in result.schema["columns"]}
    assert kinds == {"price": "float64", "qty": "int64", "code": "int64", "mixed": "string"}
    frame = pd.read_parquet(destination)
    assert frame["price"].tolist()[::2] == [12.5, -0.25] and frame["price"].tolist()[3] == 99.0
    assert frame["price"].isna().tolist() == [False, True, False, False]
    assert frame["mixed"].tolist()[::2] == ["1,5", "two"]


def test_comma_files_keep_quoted_commas_as_text(tmp_path: Path) -> None:
    destination = tmp_path / "data.parquet"
    ingest(upload(tmp_path, 'a,b\n"1,5",x\n"2,5",y\n'), destination, LIMITS)
    assert pd.read_parquet(destination)["a"].tolist() == ["1,5", "2,5"]


def test_parquet_upload_is_normalized_and_rewritten(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "small": pd.Series([1, 2, 3], dtype="int32"),
            "holes": pd.Series([1, None, 3], dtype="Int64"),
            "ratio": pd.Series([0.5, float("nan"), 1.5], dtype="float32"),
            "colour": pd.Series(["red", "blue", "red"], dtype="category"),
            "flag": [True, False, True],
            "at": pd.to_datetime(["2024-01-01", "2024-01-02", "NaT"], utc=True),
        }
    )
    frame.index = pd.Index([10, 11, 12])  # stored by pandas as a column; we keep it as data
    source = tmp_path / "upload"
    frame.to_parquet(source)
    destination = tmp_path / "data.parquet"

    result = ingest(source, destination, LIMITS)

    assert result.original_format == "parquet"
    kinds = {c["name"]: (c["dtype"], c["kind"], c["null_count"]) for c in result.schema["columns"]}
    assert kinds == {
        "small": ("int64", "numeric", 0),
        "holes": ("float64", "numeric", 1),
        "ratio": ("float64", "numeric", 1),
        "colour": ("string", "categorical", 0),
        "flag": ("bool", "boolean", 0),
        "at": ("datetime64[ns, UTC]", "datetime", 1),
        "__index_level_0__": ("int64", "numeric", 0),
    }
    stored = pq.read_table(destination)
    assert stored.schema.metadata is None  # no pandas index to restore: we wrote this file
    back = pd.read_parquet(destination)
    assert back["colour"].tolist() == ["red", "blue", "red"]
    assert back["holes"].tolist()[0] == 1.0 and math.isnan(back["holes"].tolist()[1])


def test_describe_accepts_a_frame() -> None:
    frame = pd.DataFrame(
        {
            "x": [1.0, None],
            "s": ["a", None],
            "b": [True, False],
            "t": pd.to_datetime(["2024", "NaT"]),
        }
    )
    schema = describe(frame)
    assert schema["numeric_features"] == ["x", "b"]
    assert schema["categorical_features"] == ["s"]
    assert [c["null_count"] for c in schema["columns"]] == [1, 1, 0, 1]
    with pytest.raises(TypeError):
        describe(pa.table({"blob": pa.array([b"x"])}))


def parquet_bytes(table: pa.Table, **options: Any) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **options)
    return bytes(sink.getvalue().to_pybytes())


@pytest.mark.parametrize(
    ("content", "reason", "extra"),
    [
        (b"", "empty_file", {}),
        (b"\xef\xbb\xbf \n\t\n", "empty_file", {}),
        ("a,b\ncaf\xe9,1\n".encode("latin-1"), "not_utf8", {"column": "a"}),
        ("caf\xe9,b\n1,2\n".encode("latin-1"), "not_utf8", {"line": 1}),
        ("a,b\n1,2\n".encode("utf-16"), "not_utf8", {}),
        (b"1,2,3\n4,5,6\n", "no_header", {}),
        (b"a,,c\n1,2,3\n", "no_header", {}),
        (b"a, b,a,b \n1,2,3,4\n", "duplicate_columns", {"columns": ["a", "b"]}),
        (b'a,b\n1,"x\ny"\n2,3\n4,5,6\n7,8\n', "ragged_rows", {"line": 5, "actual": 3}),
        (b"a,b\n1,2\n3\n", "ragged_rows", {"line": 3, "actual": 1}),
        (b"a,b\n", "no_rows", {}),
        (b"a,b", "no_rows", {}),
        (b"a\n" + b"1\n" * 1001, "too_many_rows", {"limit": 1000}),
        (",".join(f"c{i}" for i in range(51)).encode() + b"\n", "too_many_columns", {"limit": 50}),
        (b"PAR1 this is not really parquet PAR1", "unreadable_parquet", {}),
        (parquet_bytes(pa.table({"a": pa.array([], pa.int64())})), "no_rows", {}),
        (parquet_bytes(pa.table({"a": [1], " a": [2]})), "duplicate_columns", {"columns": ["a"]}),
        (parquet_bytes(pa.table({"l": [[1, 2]]})), "unsupported_column_type", {"column": "l"}),
        (pickle.dumps({"a": [1, 2]}), "unsupported_format", {}),
        (b"a,b\n1,\x00\n", "unsupported_format", {}),
    ],
)
def test_bad_uploads_are_rejected(
    tmp_path: Path, content: bytes, reason: str, extra: dict[str, Any]
) -> None:
    error = rejected(tmp_path, content)
    assert error.details is not None
    assert error.details["reason"] == reason
    assert extra.items() <= error.details.items()
    assert error.message


def test_limits_come_from_the_caller(tmp_path: Path) -> None:
    error = rejected(tmp_path, b"a,b\n1,2\n3,4\n", IngestLimits(max_rows=1, max_columns=5))
    assert error.details == {"reason": "too_many_rows", "limit": 1, "rows": 2}


class _Exploit:
    """Unpickling this creates `marker`, so a loaded pickle would leave evidence."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def test_a_pickle_is_never_loaded(tmp_path: Path) -> None:
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(_Exploit(control))).close()  # noqa: S301 - proves the payload is live
    assert control.exists()

    marker = tmp_path / "marker"
    error = rejected(tmp_path, pickle.dumps(_Exploit(marker)))
    assert error.details == {"reason": "unsupported_format"}
    assert not marker.exists()


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_write(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", broken_write)
    destination = tmp_path / "out" / "data.parquet"
    with pytest.raises(OSError, match="disk full"):
        ingest(upload(tmp_path, "a\n1\n"), destination, LIMITS)
    assert list(destination.parent.iterdir()) == []


def test_format_comes_from_bytes_not_names(tmp_path: Path) -> None:
    assert list(inspect.signature(ingest).parameters) == ["source", "destination", "limits"]
    as_parquet = upload(tmp_path, "a\n1\n", name="data.parquet")
    assert ingest(as_parquet, tmp_path / "1.parquet", LIMITS).original_format == "csv"
    as_gzip = upload(tmp_path, "a\n1\n", name="data.csv.gz")  # not decompressed by extension
    assert ingest(as_gzip, tmp_path / "2.parquet", LIMITS).row_count == 1
    as_csv = upload(tmp_path, parquet_bytes(pa.table({"a": [1]})), name="data.csv")
    assert ingest(as_csv, tmp_path / "3.parquet", LIMITS).original_format == "parquet"


def test_existing_destination_is_replaced_whole(tmp_path: Path) -> None:
    destination = tmp_path / "data.parquet"
    ingest(upload(tmp_path, "a\n1\n"), destination, LIMITS)
    rejected_source = upload(tmp_path, b"a,b\n", name="bad")
    with pytest.raises(InvalidDataset):
        ingest(rejected_source, destination, LIMITS)
    ingest(upload(tmp_path, "a\n1\n2\n", name="again"), destination, LIMITS)
    assert pd.read_parquet(destination)["a"].tolist() == [1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again", "bad", "data.parquet", "upload"]


def test_a_csv_too_wide_is_refused_from_its_header_alone(tmp_path: Path) -> None:
    # The body is garbage pyarrow would refuse as ragged: the width is refused first.
    header = ",".join(f"c{i}" for i in range(LIMITS.max_columns + 1))
    error = rejected(tmp_path, header + "\n1,2\n3\n")
    assert error.details is not None and error.details["reason"] == "too_many_columns"
    assert error.details["columns"] == LIMITS.max_columns + 1


def test_parquet_nested_and_inflating_columns_are_refused_from_the_footer(
    tmp_path: Path,
) -> None:
    lists = pa.table({"a": pa.array([[0] * 1000] * 10, type=pa.list_(pa.int64()))})
    error = rejected(tmp_path, parquet_bytes(lists))
    assert error.details is not None and error.details["reason"] == "unsupported_column_type"

    # A struct of many children counts as every leaf it holds.
    wide = pa.StructArray.from_arrays(
        [pa.array([1, 2]) for _ in range(LIMITS.max_columns + 5)],
        names=[f"f{i}" for i in range(LIMITS.max_columns + 5)],
    )
    error = rejected(tmp_path, parquet_bytes(pa.table({"s": wide})))
    assert error.details is not None and error.details["reason"] == "too_many_columns"

    # A few KB of zeros that decompress to 8 MB: over 100x its size (the floor lowered here).
    zeros = pa.table({"z": pa.array([0] * 1_000_000, type=pa.int64())})
    data = parquet_bytes(zeros, compression="zstd", use_dictionary=False)
    bomb = IngestLimits(max_rows=2_000_000, max_columns=5, expansion_floor_bytes=1024)
    error = rejected(tmp_path, data, bomb)
    assert error.details is not None and error.details["reason"] == "too_large_decompressed"
    assert error.details["bytes"] > 100 * len(data)


@pytest.mark.parametrize(
    ("values", "utc"),
    [
        (["2024-03-10T23:30:00", "2024-03-11T01:00:00"], False),
        (["2024-03-10 23:30:00", "2024-03-11 01:00:00"], False),
        (["2024-03-10T23:30", "2024-03-11T01:00"], False),
        (["2024-03-10T23:30:00.250", "2024-03-11T01:00:00"], False),
        (["2024-03-10T23:30:00Z", "2024-03-11T01:00:00Z"], True),
        (["2024-03-10T23:30:00-05:00", "2024-03-11T01:00:00+01:00"], True),
        (["2024-03-10 23:30:00-0500", "2024-03-11 01:00:00Z"], True),
        # an offset on some values only: pyarrow leaves text, ingest reads it as UTC
        (["2024-03-10T23:30:00-05:00", "2024-03-11T01:00:00"], True),
        (["2024-03-10 23:30:00", "2024-03-11T01:00:00Z"], True),
    ],
)
def test_iso_date_times_in_csv_are_datetime_columns(
    tmp_path: Path, values: list[str], utc: bool
) -> None:
    destination = tmp_path / "data.parquet"
    csv = "when,x\n" + "".join(f"{v},{i}\n" for i, v in enumerate(values)) + ",9\n"
    result = ingest(upload(tmp_path, csv), destination, LIMITS)
    column = result.schema["columns"][0]
    assert (column["kind"], column["null_count"]) == ("datetime", 1)
    assert column["dtype"] == ("datetime64[ns, UTC]" if utc else "datetime64[ns]")
    when = pd.read_parquet(destination)["when"]
    first = when[0] if not utc else when[0].tz_convert(None)
    expected = pd.Timestamp(values[0].replace(" ", "T"))
    if expected.tzinfo is not None:
        expected = expected.tz_convert("UTC").tz_localize(None)
    assert first == expected
    assert pd.isna(when[2])


def test_text_that_only_looks_like_a_date_time_stays_text(tmp_path: Path) -> None:
    csv = "when,x\n2024-13-40T10:00:00Z,1\n2024-01-01T10:00:00+01:00,2\n2024-01-01,3\n"
    result = ingest(upload(tmp_path, csv), tmp_path / "data.parquet", LIMITS)
    assert result.schema["columns"][0]["kind"] == "categorical"
