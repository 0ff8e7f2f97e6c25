"""Batch prediction over a Parquet file, one chunk at a time, written as it goes.

With `explain`, each row also gets its SHAP contributions (`ml.explain`): one
``contribution_<column>`` per feature and ``contribution_bias``, in margin units. For a
multi-class model they explain the *predicted* class only (the margin of that class), so the
file has one set of columns whatever the number of classes.

Memory holds one chunk of input and its predictions, whatever the number of rows (see
bench/batch_predict_memory.py). Every chunk goes through `predict.predict_scores`, the code
path of online predictions, so both give the same answer for the same row.
"""

from __future__ import annotations

from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from xgenerator.datasets.chunks import OnChunk, ParquetSink, Written, chunks
from xgenerator.ml import quantiles
from xgenerator.ml.bundle import ModelBundle
from xgenerator.ml.explain import contributions
from xgenerator.ml.features import to_model_frame
from xgenerator.ml.labels import Label
from xgenerator.ml.predict import predict_scores


def output_columns(
    input_names: list[str], bundle: ModelBundle, explain: bool = False
) -> dict[str, str]:
    """Output column -> what it holds: ``prediction`` and, for a classifier, one
    ``probability_<class>`` per class (``class:<i>``); for a quantile regression one
    ``quantile_<level>`` per level instead; with `explain` one ``contribution_<feature>`` per
    feature and ``contribution_bias`` (``contribution:<i>``). A name already taken by the
    input gets a ``_``."""
    taken = set(input_names)
    if bundle.quantiles is not None:
        wanted = [
            (f"quantile_{quantiles.key(q)}", f"quantile:{i}")
            for i, q in enumerate(bundle.quantiles)
        ]
    else:
        wanted = [("prediction", "prediction")]
        if bundle.labels is not None:
            classes = bundle.labels.classes
            wanted += [(f"probability_{c}", f"class:{i}") for i, c in enumerate(classes)]
    if explain:
        keys = [*(f.name for f in bundle.features), "bias"]
        wanted += [(f"contribution_{k}", f"contribution:{i}") for i, k in enumerate(keys)]
    names: dict[str, str] = {}
    for name, what in wanted:
        while name in taken:
            name = f"_{name}"
        taken.add(name)
        names[name] = what
    return names


def label_type(classes: list[Label]) -> pa.DataType:
    """One Arrow type for the predicted classes: theirs if they share one, else string."""
    if all(isinstance(c, bool) for c in classes):
        return pa.bool_()
    if all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        return pa.int64()
    if all(isinstance(c, int | float) and not isinstance(c, bool) for c in classes):
        return pa.float64()
    return pa.string()


def predict_parquet(
    bundle: ModelBundle,
    source: pq.ParquetFile,
    out: IO[bytes],
    chunk_rows: int,
    on_chunk: OnChunk,
    explain: bool = False,
) -> Written:
    """Write every input row plus its prediction (and probabilities, contributions) to `out`."""
    columns = output_columns(source.schema_arrow.names, bundle, explain)
    prediction_columns = {k: v for k, v in columns.items() if not v.startswith("contribution")}
    classes = bundle.labels.classes if bundle.labels is not None else None
    prediction_type = pa.float64() if classes is None else label_type(classes)
    schema = source.schema_arrow
    for name, what in columns.items():
        schema = schema.append(
            pa.field(name, prediction_type if what == "prediction" else pa.float64())
        )
    total = source.metadata.num_rows
    done = 0
    sink = ParquetSink(out, schema)
    try:
        for batch in chunks(source, chunk_rows):
            rows = batch.to_pandas()
            scores = predict_scores(bundle, rows)
            table = pa.Table.from_batches([batch])
            arrays = _prediction_arrays(scores, classes, prediction_type, prediction_columns)
            if explain:
                arrays += _contribution_arrays(bundle, rows, scores, columns)
            for name, array in arrays:
                table = table.append_column(name, array)
            sink.write(table)
            done += batch.num_rows
            on_chunk(done, total)
    except BaseException:
        sink.abort()
        raise
    return sink.close()


def _contribution_arrays(
    bundle: ModelBundle, rows: Any, scores: np.ndarray[Any, Any], columns: dict[str, str]
) -> list[tuple[str, pa.Array]]:
    values = contributions(bundle.booster, bundle.features, to_model_frame(rows, bundle.features))
    if values.ndim == 3:  # multi-class: the predicted class's contributions
        values = values[np.arange(len(values)), scores.argmax(axis=1)]
    return [
        (name, pa.array(values[:, int(what.split(":")[1])], type=pa.float64()))
        for name, what in columns.items()
        if what.startswith("contribution:")
    ]


def _prediction_arrays(
    scores: np.ndarray[Any, Any],
    classes: list[Label] | None,
    prediction_type: pa.DataType,
    columns: dict[str, str],
) -> list[tuple[str, pa.Array]]:
    names = list(columns)
    if scores.ndim == 2 and classes is None:  # quantile regression: a column per level
        return [(name, pa.array(scores[:, i], type=pa.float64())) for i, name in enumerate(names)]
    if classes is None:
        return [(names[0], pa.array(scores, type=pa.float64()))]
    as_string = prediction_type == pa.string()
    lookup = pa.array([str(c) if as_string else c for c in classes], type=prediction_type)
    arrays = [(names[0], lookup.take(pa.array(scores.argmax(axis=1), type=pa.int64())))]
    arrays += [
        (name, pa.array(scores[:, i], type=pa.float64())) for i, name in enumerate(names[1:])
    ]
    return arrays
