"""External-memory training in a job: the dataset's Parquet read batch by batch
(`ml.external`), with the same progress, cancel, thread budget and checkpoints as any
training, and a scratch folder for XGBoost's page cache removed when the job ends."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator

import pandas as pd

from xgenerator.context import Context
from xgenerator.datasets.chunks import frames
from xgenerator.db.tables import Dataset, Job
from xgenerator.jobs import threads
from xgenerator.jobs.kinds.derived import open_dataset
from xgenerator.jobs.runtime import Runtime
from xgenerator.ml import bundle
from xgenerator.ml.external import SAMPLE_ROWS, VALIDATION_CAP, ExternalResult, train_external
from xgenerator.ml.train import TrainHooks, TrainSpec


def batches(
    context: Context, dataset: Dataset, columns: list[str]
) -> Callable[[], Iterator[pd.DataFrame]]:
    """A fresh pass over the dataset's rows, `job_chunk_rows` at a time, at each call."""
    chunk_rows = context.settings.job_chunk_rows

    def read() -> Iterator[pd.DataFrame]:
        with open_dataset(context.store, dataset) as source:
            yield from frames(source, chunk_rows, columns)

    return read


def run(
    context: Context,
    job: Job,
    runtime: Runtime,
    dataset: Dataset,
    spec: TrainSpec,
    columns: list[str],
    make_hooks: Callable[[Runtime, threads.Share | None], TrainHooks],
) -> ExternalResult:
    runtime.progress(percent=0, message="external memory: scanning the data", force=True)
    resume = None
    saved = runtime.load_checkpoint()
    if saved is not None:
        booster = bundle.load_booster(saved)
        done = booster.num_boosted_rounds()
        resume = (booster, done, runtime.resume_history(done, bool(spec.early_stopping_rounds)))
    scratch = context.settings.data_dir / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(dir=scratch, prefix=f"extmem-{job.id}-") as cache,
        threads.registered(job.id, spec.params.get("nthread")) as share,
    ):
        hooks = make_hooks(runtime, share)
        trained = train_external(
            batches(context, dataset, columns),
            spec,
            hooks,
            cache_prefix=f"{cache}/pages",
            resume=resume,
        )
    result = trained.result
    runtime.event(
        "external_memory",
        f"trained from batches of {context.settings.job_chunk_rows:,} rows: "
        f"{result.train_rows:,} training rows, {result.validation_rows:,} validation rows "
        f"(at most {VALIDATION_CAP:,}, chosen by a hash of the row position); features "
        f"screened on the first {min(SAMPLE_ROWS, len(trained.sample)):,} rows with a target",
    )
    return trained
