"""A training on the operator's Dask cluster (`ml.distributed`), owned by its Celery job.

The job connects its own Dask client to XGEN_DASK_SCHEDULER for as long as it trains; the
Dask workers read the dataset's row groups from the store themselves (`datasets.pieces`).
The job keeps what every job has: its lease (the runtime's thread), progress and history
(the rounds rank 0 reports), checkpoints (rank 0's model bytes every `checkpoint_every`
rounds) and a resume from them, cancel (noticed by the runtime while the job waits on the
cluster: every worker stops at its next round, then the Dask work is cancelled), and the
model, registered as any other. A scheduler that cannot be reached is a retry later.

When the worker stops this job's process (cancel, time limit, lost lease), SIGTERM does not
kill it: its work runs on the cluster, so `jobs/isolation.py` turns the signal into an end
at the job's next check (`poll`, every tick while it waits on the cluster), and the same
stop follows.
"""

from __future__ import annotations

from collections.abc import Callable

from xgenerator.context import Context
from xgenerator.db.tables import Dataset, Job
from xgenerator.errors import ServiceUnavailable, TrainingFailed
from xgenerator.jobs import threads
from xgenerator.jobs.runtime import Runtime
from xgenerator.ml import bundle
from xgenerator.ml.distributed import Piece, train_dask
from xgenerator.ml.external import VALIDATION_CAP, ExternalResult
from xgenerator.ml.resume import samples
from xgenerator.ml.train import TrainHooks, TrainSpec

DASK_SAMPLING_RESUME = (
    "distributed training with row or column sampling: the rounds after the checkpoint "
    "sample other rows and columns than an uninterrupted run would"
)


def run(
    context: Context,
    job: Job,
    runtime: Runtime,
    dataset: Dataset,
    spec: TrainSpec,
    columns: list[str],
    make_hooks: Callable[[Runtime, threads.Share | None], TrainHooks],
) -> ExternalResult:
    from distributed import Client
    from xgenerator.datasets.pieces import dataset_pieces, read_piece

    settings = context.settings
    address = settings.dask_scheduler
    if not address:
        raise TrainingFailed(
            "NoDaskScheduler",
            "this job trains on a Dask cluster, and this worker has no XGEN_DASK_SCHEDULER",
        )
    resume = None
    saved = runtime.load_checkpoint()
    if saved is not None:
        booster = bundle.load_booster(saved)
        done = booster.num_boosted_rounds()
        # xgboost.dask draws its samples per Dask worker, without the per-round seeds of
        # single-process training: a sampling job resumes to a different model
        inexact = DASK_SAMPLING_RESUME if samples(spec.params) else None
        runtime.resume_history(done, early_stopping=False, inexact=inexact)
        resume = (booster, done)
    runtime.progress(percent=0, message=f"distributed: connecting to {address}", force=True)
    try:
        client = Client(address, timeout=settings.dask_connect_timeout_s, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ServiceUnavailable(
            f"the Dask scheduler at {address} cannot be reached: {exc}", {"scheduler": address}
        ) from exc
    with client:
        workers = len(client.scheduler_info(n_workers=-1)["workers"])
        if workers == 0:
            raise ServiceUnavailable(
                f"the Dask cluster at {address} has no worker", {"scheduler": address}
            )
        pieces = [
            Piece(source, rows)
            for source, rows in dataset_pieces(context.store, dataset, columns, workers)
        ]
        runtime.progress(
            percent=0, message=f"distributed: scanning the data on {workers} Dask workers"
        )
        hooks = make_hooks(runtime, None)  # the Dask workers' threads are not this worker's
        trained = train_dask(
            client,
            read_piece,
            pieces,
            spec,
            hooks,
            checkpoint_every=settings.checkpoint_every,
            poll=runtime.check,
            resume=resume,
            stop_wait_s=settings.dask_stop_wait_s,
        )
    result = trained.result
    why = (
        f"the dataset's {dataset.row_count:,} rows reach XGEN_DASK_MIN_ROWS"
        if job.config.get("distributed_by") == "size"
        else 'the request asked for "distributed": true'
    )
    runtime.event(
        "distributed",
        f"trained with xgboost.dask on {workers} Dask workers ({why}): {len(pieces):,} "
        f"pieces, {result.train_rows:,} training rows, {result.validation_rows:,} validation "
        f"rows (at most {VALIDATION_CAP:,}, chosen by a hash of the row position); features "
        f"screened on a sample of {len(trained.sample):,} rows with a target; the training "
        "metric is not scored on Dask, the validation metric every round",
    )
    return trained
