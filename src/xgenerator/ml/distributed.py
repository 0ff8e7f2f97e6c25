"""One model across the workers of a Dask cluster (`xgboost.dask`), for data no single
worker could hold.

The data comes as `pieces` (Parquet row groups, say) and a `read` function that loads one
piece as a pandas frame; `read` runs on the Dask workers, so it must be importable there
(a module-level function of this package). `ml/` never opens files itself.

The same coding as the external-memory path (`ml.external`), computed on the cluster:

* a scan task per piece returns its classes, the levels of its text features, its counts and
  (from the first pieces) a sample of rows with a target; the features are screened on that
  sample (`ml.prepare.select_features`) with every level seen (`ml.external._encoding`);
* the split is the external path's row-position hash, and the validation set the same
  bounded one: the first `validation_cap` validation rows, later ones train. So a Dask model
  learns from exactly the rows an external-memory model would;
* each piece is coded with `ml.features.to_model_frame` (frozen categories, date-time parts)
  into a `dask.dataframe` partition (`dd.from_map`), kept in the workers' memory, and trained
  on with `DaskQuantileDMatrix` + `xgboost.dask.train`.

Progress: a callback runs on every Dask worker; the one of rank 0 puts each round's metrics
(and every `checkpoint_every` rounds the model's bytes) in a `distributed.Queue` that the
caller's thread drains while training runs, so the caller reports rounds as they happen.
Cancel: whatever `poll` or the hooks raise stops the caller; it sets a `distributed.Event`
that rank 0's callback reads after every round and shares with an allreduce, so that every
worker stops at the same round (a worker stopping alone would hang the others), waits for
them (xgboost.dask then releases its locks on the workers), and releases the Dask futures
of the data (`_release`). The callbacks also stop when the scheduler released their own
task, which it does when the caller's client is gone: a caller killed before it could set
the event does not leave the cluster training (its locks stay held, though: see
docs/operations.md). The training metric is not scored in
this path (the workers' callbacks cannot reach their local training matrix): the history has
the validation metric of every round.

Role columns (weights, groups, events) are not supported here, as in external memory.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from xgenerator.errors import InvalidInput, TrainingFailed
from xgenerator.ml.constraints import to_positions
from xgenerator.ml.evaluation import Validation, validation_metrics
from xgenerator.ml.external import (
    SAMPLE_ROWS,
    VALIDATION_CAP,
    ExternalResult,
    _encoding,
    _is_text,
    _Scan,
    is_validation,
)
from xgenerator.ml.features import Feature, category_str, model_columns, to_model_frame
from xgenerator.ml.labels import LabelEncoding
from xgenerator.ml.prepare import _numeric_target
from xgenerator.ml.train import (
    TrainHooks,
    TrainResult,
    TrainSpec,
    _best_iteration,
    _check_cost,
    _check_spec,
    _final_params,
    trim_xgboost_error,
)

# the coded partitions' target and split columns: names no feature or date-time part can take
TARGET = "__xgen_target__"
VALIDATION = "__xgen_validation__"
# how long the caller waits for the workers to stop training after a cancel, by default
STOP_WAIT_S = 60.0

Read = Callable[[Any], pd.DataFrame]
Poll = Callable[[], None]


@dataclass(frozen=True)
class Piece:
    """One partition of the data: `source` is what `read` loads (opaque here), `rows` its
    row count (from the Parquet footer), which gives every row its global position."""

    source: Any
    rows: int


@dataclass
class _PieceScan:
    sample: pd.DataFrame
    levels: dict[str, set[str]]
    classes: list[Any]
    rows: int
    missing_target: int
    validation: int  # rows with a target the hash sends to validation, before the cap


def _scan_piece(read: Read, piece: Piece, spec: TrainSpec, offset: int, sample: int) -> _PieceScan:
    batch = read(piece.source)
    labelled = batch[spec.target].notna().to_numpy()
    rows = batch[labelled]
    positions = np.arange(offset, offset + len(batch), dtype=np.uint64)
    validation = is_validation(positions, spec.test_size, spec.seed) & labelled
    levels = {
        name: {category_str(v) for v in pd.unique(rows[name].dropna())}
        for name in spec.features
        if _is_text(rows[name])
    }
    classes = list(pd.unique(rows[spec.target])) if spec.task_type == "classification" else []
    return _PieceScan(
        sample=rows.iloc[:sample].copy(),
        levels=levels,
        classes=classes,
        rows=len(batch),
        missing_target=int((~labelled).sum()),
        validation=int(validation.sum()),
    )


def _code(
    batch: pd.DataFrame,
    spec: TrainSpec,
    features: list[Feature],
    labels: LabelEncoding | None,
    validation: Any,
) -> pd.DataFrame:
    """The model frame of rows with a target, their target and which side of the split."""
    try:
        frame = to_model_frame(batch, features)
        target = batch[spec.target]
        coded = labels.encode(target) if labels is not None else _numeric_target(target)
    except InvalidInput as exc:
        raise TrainingFailed("InvalidData", exc.message, exc.details) from exc
    frame[TARGET] = np.asarray(coded, dtype=np.float64)
    frame[VALIDATION] = np.asarray(validation, dtype=bool)
    return frame


def _code_piece(
    piece: Piece,
    offset: int,
    room: int,
    read: Read,
    spec: TrainSpec,
    features: list[Feature],
    labels: LabelEncoding | None,
) -> pd.DataFrame:
    """One coded partition: `room` is how many more validation rows the cap allows."""
    batch = read(piece.source)
    labelled = batch[spec.target].notna().to_numpy()
    positions = np.arange(offset, offset + len(batch), dtype=np.uint64)
    validation = is_validation(positions, spec.test_size, spec.seed) & labelled
    chosen = np.flatnonzero(validation)
    if len(chosen) > room:  # past the cap, validation rows train (as in ml.external)
        validation[chosen[room:]] = False
    kept = batch[labelled].reset_index(drop=True)
    return _code(kept, spec, features, labels, validation[labelled])


def _released() -> bool:
    """Whether the scheduler released the training task this Dask worker runs: the client
    that asked for it is gone (its process killed) or cancelled it. Dask cannot interrupt a
    running task: without this check its thread would train to the last round."""
    from distributed import get_worker

    try:
        worker = get_worker()
        task = worker.state.tasks.get(worker.get_current_task())
    except (ValueError, KeyError):  # not in a Dask task: nothing to release
        return False
    return task is None or task.state in ("cancelled", "released")


class _Reporter(xgb.callback.TrainingCallback):
    """Runs on every Dask worker. Rank 0 reports each round (and a checkpoint's bytes) on
    the queue; through an allreduce of rank 0's reading of the stop event and of each
    worker's own `_released`, all agree whether to stop, so that all stop at the same
    round."""

    def __init__(self, queue: str, stop: str, rounds_done: int, checkpoint_every: int) -> None:
        super().__init__()
        self.queue = queue
        self.stop = stop
        self.rounds_done = rounds_done
        self.checkpoint_every = checkpoint_every
        self._queue: Any = None

    def after_training(self, model: xgb.Booster) -> xgb.Booster:
        if self._queue is not None:
            self._queue.close()  # the scheduler drops the queue once no one holds it
            self._queue = None
        return model

    def after_iteration(
        self, model: xgb.Booster, epoch: int, evals_log: dict[str, dict[str, list[Any]]]
    ) -> bool:
        from distributed import Event, Queue

        stop = int(_released())
        if xgb.collective.get_rank() == 0:
            round_ = self.rounds_done + epoch + 1
            report: dict[str, Any] = {
                "round": round_,
                "metrics": {
                    f"{data}-{metric}": float(values[-1])
                    for data, by_metric in evals_log.items()
                    for metric, values in by_metric.items()
                },
            }
            if self.checkpoint_every and round_ % self.checkpoint_every == 0:
                report["model"] = bytes(model.save_raw("ubj"))
            if self._queue is None:
                self._queue = Queue(self.queue)
            self._queue.put(report)
            stop = max(stop, int(Event(self.stop).is_set()))
        agreed = xgb.collective.allreduce(np.array([stop], dtype=np.int32), xgb.collective.Op.MAX)
        return bool(agreed[0])


def _wait(client: Any, work: Any, poll: Poll | None, tick_s: float) -> None:
    """Wait for Dask futures (or a persisted collection), calling `poll` every tick; what it
    raises cancels them (`client.cancel`). A task's own error is raised here."""
    from distributed import futures_of

    futures = futures_of(work)
    try:
        while not all(f.done() for f in futures):
            if poll is not None:
                poll()
            time.sleep(tick_s)  # distributed.wait would need a default client
        for future in futures:
            if future.status == "error":
                future.result()
    except BaseException:
        client.cancel(futures)
        raise


def _scan(
    client: Any, read: Read, pieces: list[Piece], spec: TrainSpec, poll: Poll | None, tick_s: float
) -> tuple[_Scan, list[int], list[int]]:
    """The merged scan, each piece's first row position, and its room under the cap."""
    offsets = list(np.cumsum([0] + [p.rows for p in pieces[:-1]]).tolist())
    samples = [max(0, SAMPLE_ROWS - offset) for offset in offsets]
    futures = client.map(
        _scan_piece,
        [read] * len(pieces),
        pieces,
        [spec] * len(pieces),
        offsets,
        samples,
        pure=False,
    )
    _wait(client, futures, poll, tick_s)
    scans: list[_PieceScan] = client.gather(futures)
    levels: dict[str, set[str]] = {}
    classes: dict[Any, None] = {}
    for scanned in scans:
        for name, found in scanned.levels.items():
            levels.setdefault(name, set()).update(found)
        classes.update(dict.fromkeys(scanned.classes))
    parts = [s.sample for s in scans if len(s.sample)]
    sample = pd.concat(parts, ignore_index=True).iloc[:SAMPLE_ROWS] if parts else pd.DataFrame()
    merged = _Scan(
        sample=sample,
        levels=levels,
        classes=list(classes),
        rows=sum(s.rows for s in scans),
        missing_target=sum(s.missing_target for s in scans),
    )
    before = np.cumsum([0] + [s.validation for s in scans[:-1]])
    return merged, offsets, [int(v) for v in before]


def _stopped(training: Future[Any], wait_s: float) -> bool:
    """Wait (bounded) for the workers to stop; a training that ends in error now is the
    consequence of the stop, not news. False past the bound: the workers will stop at
    their next round, which reads the event (so it stays set)."""
    with contextlib.suppress(Exception):
        training.exception(timeout=wait_s)
    return training.done()


def _release(coded: Any, *matrices: Any) -> None:
    """Let the scheduler forget the data once the workers stopped (the traceback of what
    stopped them would keep these futures, and the workers' memory, as long as it lives).
    Released, not cancelled: `client.cancel` recurses into the keys' dependents and trips
    `assert ts.who_wants` in the scheduler's `stimulus_cancel` (distributed 2026.8) on the
    partitions xgboost.dask persisted and let go of; the scheduler then stops serving this
    client's stream and keeps its keys for good."""
    from distributed import futures_of

    held = list(futures_of(coded))
    for matrix in matrices:
        held += [future for parts in matrix.worker_map.values() for future in parts]
    for future in held:
        future.release()


def _train_as_current(client: Any, *args: Any, **kwargs: Any) -> Any:
    """`xgboost.dask.train` in a thread of its own, with `client` as its current client."""
    from xgboost import dask as dxgb

    with client.as_current():
        return dxgb.train(client, *args, **kwargs)


def train_dask(
    client: Any,
    read: Read,
    pieces: list[Piece],
    spec: TrainSpec,
    hooks: TrainHooks | None = None,
    *,
    checkpoint_every: int = 0,
    poll: Poll | None = None,
    resume: tuple[xgb.Booster, int] | None = None,
    validation_cap: int = VALIDATION_CAP,
    tick_s: float = 0.2,
    stop_wait_s: float = STOP_WAIT_S,
) -> ExternalResult:
    """Train one model on the cluster `client` is connected to; see the module docstring.

    `poll` is called every `tick_s` while the cluster works (whatever it raises stops the
    work, waiting up to `stop_wait_s` for the workers to end their round); `resume` is this
    job's checkpoint (booster, rounds done)."""
    import dask.dataframe as dd
    from xgboost import dask as dxgb

    from distributed import Event, Queue

    if spec.weight_column or spec.group_column or spec.event_column:
        raise InvalidInput("distributed training does not support weight, group or event columns")
    if spec.task_type not in ("classification", "regression"):
        raise InvalidInput("distributed training trains classification and regression only")
    if not pieces:
        raise TrainingFailed("NoUsableRows", "the dataset has no rows")
    user_params = _check_spec(spec)
    scan, offsets, validated = _scan(client, read, pieces, spec, poll, tick_s)
    features, labels, excluded = _encoding(scan, spec)
    n_classes = len(labels.classes) if labels is not None else 0
    params = to_positions(_final_params(spec, user_params, n_classes), features)
    params["tree_method"] = "hist"  # what DaskQuantileDMatrix trains with
    rows_with_target = scan.rows - scan.missing_target
    _check_cost(spec, params, len(model_columns(features)), n_classes, rows_with_target)
    rooms = [max(validation_cap - v, 0) for v in validated]

    meta = _code(scan.sample.iloc[:0], spec, features, labels, np.zeros(0, dtype=bool))
    coded = dd.from_map(
        _code_piece,
        pieces,
        offsets,
        rooms,
        args=[read, spec, features, labels],
        meta=meta,
        enforce_metadata=False,
    )
    coded = client.persist(coded)
    _wait(client, coded, poll, tick_s)
    columns = model_columns(features)
    train_rows, val_rows = coded[~coded[VALIDATION]], coded[coded[VALIDATION]]
    x_val, y_val = client.compute([val_rows[columns], val_rows[TARGET]], sync=True)
    if len(y_val) == 0:
        raise TrainingFailed("TooFewRows", "no row fell in the validation set")

    rounds_done = min(resume[1], spec.num_boost_round) if resume else 0
    name = uuid.uuid4().hex
    queue, stop = Queue(f"xgen-rounds-{name}", client=client), Event(f"xgen-stop-{name}", client)
    callbacks: list[xgb.callback.TrainingCallback] = [
        _Reporter(queue.name, stop.name, rounds_done, checkpoint_every)
    ]
    if spec.early_stopping_rounds:
        callbacks.append(
            xgb.callback.EarlyStopping(
                rounds=spec.early_stopping_rounds, data_name="validation", save_best=True
            )
        )
    history: list[dict[str, Any]] = []

    def report(item: dict[str, Any]) -> None:
        history.append({"round": item["round"], **item["metrics"]})
        if hooks is not None:
            hooks.on_round(item["round"], spec.num_boost_round, item["metrics"])
            if "model" in item:
                hooks.checkpoint(xgb.Booster(model_file=bytearray(item["model"])), item["round"])

    max_bin = int(params.get("max_bin", 256))  # type: ignore[call-overload]
    # not a `with`: its exit would wait for a training that does not stop
    pool = ThreadPoolExecutor(1, thread_name_prefix="xgen-dask-train")
    # xgboost.dask asks for the current client even when given one: this job's, not a global
    current = client.as_current()
    current.__enter__()
    try:
        dtrain = dxgb.DaskQuantileDMatrix(
            client,
            train_rows[columns],
            train_rows[TARGET],
            max_bin=max_bin,
            enable_categorical=True,
        )
        dval = dxgb.DaskQuantileDMatrix(
            client,
            val_rows[columns],
            val_rows[TARGET],
            ref=dtrain,
            max_bin=max_bin,
            enable_categorical=True,
        )
        training = pool.submit(
            _train_as_current,
            client,
            params,
            dtrain,
            num_boost_round=spec.num_boost_round - rounds_done,
            evals=[(dval, "validation")],
            callbacks=callbacks,
            verbose_eval=False,
            xgb_model=resume[0] if resume else None,
        )
        while True:
            finished = training.done()  # read before draining: no round is left behind
            for item in queue.get(batch=True):
                report(item)
            if finished:
                break
            if poll is not None:
                poll()
            time.sleep(tick_s)
        trained = training.result()
    except xgb.core.XGBoostError as exc:
        raise TrainingFailed("XGBoostError", trim_xgboost_error(exc)) from exc
    except BaseException:
        # every worker stops at its next round; once they have, the data is let go
        stop.set()
        started = "training" in locals()
        if not started or _stopped(training, stop_wait_s):
            stop.clear()  # the scheduler forgets the event
            if started:
                _release(coded, dtrain, dval)
        raise
    finally:
        queue.close()
        pool.shutdown(wait=False)
        current.__exit__(None, None, None)
    booster: xgb.Booster = trained["booster"]
    proba = booster.inplace_predict(x_val)
    target = y_val.to_numpy()
    if labels is not None:
        target = target.astype(np.int64)
    validation = Validation(target=target, predictions=proba, weight=None, group=None, event=None)
    metrics = validation_metrics(spec.task_type, params, n_classes, spec.rank_k, validation)
    result = TrainResult(
        booster=booster,
        features=features,
        labels=labels,
        metrics=metrics,
        history=history,
        best_iteration=_best_iteration(booster),
        num_boost_round=booster.num_boosted_rounds(),
        train_rows=rows_with_target - len(target),
        validation_rows=len(target),
        params=params,
        excluded=excluded,
        dropped_rows={"missing_target": scan.missing_target},
    )
    return ExternalResult(result, scan.sample)
