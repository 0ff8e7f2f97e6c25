"""What running a job in a child process of its own costs (`jobs/isolation.py`).

`python -m bench.isolation [--pairs N] [--rows R] [--rounds K]`, on a throw-away PostgreSQL
database and a local store, in one process that runs the worker's own code, with the child
and without it in turns (N pairs after a warm-up of each), so that load from elsewhere hits
both sides alike:

- `fork`: the mechanism alone. A claimed job's runtime (its lease thread included on both
  sides) runs a trivial job body that opens one database session, in a child
  (`isolation.run`) or in this process (`keeping_lease`): fork, the child's own connection,
  its exit, the reaping. Each sample's child is a fresh one (a worker keeps a job's process
  for its next job; this measures the first job, or the one after a cancel).
- `train`: `runner.run` on a training job on R rows x 30 features, K rounds, `isolate_jobs`
  on and off; the job's process is kept between samples, as a worker keeps it.

Prints medians (wall and CPU, this process's and its children's) and the differences. Not
part of `python -m bench`: both sides are the service.

Both sides run on one OpenMP thread (the script restarts itself with `OMP_NUM_THREADS=1`):
this process runs trainings itself on the "off" side, and a process that ran XGBoost on
several OpenMP threads cannot fork children that use OpenMP (why a worker isolates every
training job). `nthread` in the parameters is not enough: XGBoost copies labels on all cores.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.common import ThrowawayDatabase
from bench.data import TARGET, classification_frame
from bench.procfs import cpu_seconds
from xgenerator.context import Context, build_context
from xgenerator.datasets import repository as datasets
from xgenerator.jobs import isolation, kinds, repository, runner
from xgenerator.jobs.runtime import Runtime
from xgenerator.settings import Settings
from xgenerator.users import service as users

Sample = tuple[float, float]  # wall seconds, CPU seconds


class NoBroker:
    """Jobs are created as rows and run here: nothing is sent."""

    def send(
        self, job_id: str, queue: str, countdown: float | None = None, task_id: str | None = None
    ) -> str:
        return task_id or uuid.uuid4().hex


def cpu_s() -> float:
    """CPU seconds of this process, of its reaped children (the isolated jobs) and of the job
    process it keeps for the next job (not reaped yet)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    kept = isolation._spare  # noqa: SLF001 - a measurement of the module's own state
    return (
        own.ru_utime
        + own.ru_stime
        + children.ru_utime
        + children.ru_stime
        + (0.0 if kept is None else cpu_seconds(kept.pid))
    )


def timed(action: Callable[[], str]) -> Sample:
    started, cpu = time.perf_counter(), cpu_s()
    outcome = action()
    if outcome != "succeeded":
        raise RuntimeError(f"the job ended {outcome}")
    return time.perf_counter() - started, cpu_s() - cpu


def new_job(context: Context, user_id: str, job_type: str, request: dict[str, Any]) -> str:
    with context.db.session() as session:
        job = kinds.get(job_type).prepare(session, context.settings, user_id, request)
        repository.create(session, job)
        return job.id


def fork_sample(context: Context, user_id: str, isolated: bool) -> Sample:
    job_id = new_job(context, user_id, "noop", {})
    with context.db.session() as session:
        job = repository.claim_job(session, job_id, "bench:1", context.settings.lease_s)
    assert job is not None
    runtime = Runtime(context, job_id, job.attempts, job.job_type)

    def body() -> str:
        with context.db.session() as session:
            session.execute(text("SELECT 1"))
        return "succeeded"

    def in_process() -> str:
        with runtime.keeping_lease():
            return body()

    def begin(ctx: Context, call: isolation.Call) -> tuple[Runtime, isolation.Work]:
        return Runtime(ctx, call.job_id, call.attempt, "noop"), lambda: (body(), lambda: None)

    call = isolation.Call(job_id, job.attempts)
    return timed(
        lambda: (
            isolation.run(context, runtime, call, begin, lambda _: None)
            if isolated
            else in_process()
        )
    )


def compare(name: str, sample: Callable[[bool], Sample], pairs: int) -> None:
    samples: dict[bool, list[Sample]] = {True: [], False: []}
    for isolated in (True, False):  # warm-up: imports, caches, the first connection
        sample(isolated)
    for _ in range(pairs):
        for isolated in (True, False):
            samples[isolated].append(sample(isolated))
    wall = {k: statistics.median(w for w, _ in v) for k, v in samples.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in samples.items()}
    spread = {k: iqr([w for w, _ in v]) for k, v in samples.items()}
    print(
        f"{name}: in a child p50 {ms(wall[True])} (IQR {ms(spread[True])}), in-process p50 "
        f"{ms(wall[False])} (IQR {ms(spread[False])}): {ms(wall[True] - wall[False], '+')}, "
        f"{wall[True] / wall[False]:.3f}x; CPU p50 {ms(cpu[True])} vs {ms(cpu[False])}: "
        f"{ms(cpu[True] - cpu[False], '+')}; n={pairs}",
        flush=True,
    )


def ms(seconds: float, sign: str = "") -> str:
    return f"{seconds * 1e3:{sign}.1f} ms"


def iqr(values: list[float]) -> float:
    q = statistics.quantiles(values, n=4)
    return q[2] - q[0]


def main() -> None:
    if os.environ.get("OMP_NUM_THREADS") != "1":
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        argv = [sys.executable, "-m", "bench.isolation", *sys.argv[1:]]
        os.execve(sys.executable, argv, env)  # noqa: S606 - this very script, again
    parser = argparse.ArgumentParser(prog="python -m bench.isolation", description=__doc__)
    parser.add_argument("--pairs", type=int, default=15)
    parser.add_argument("--rows", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="xgen-isolation-"))
    (work / "data").mkdir()
    db = ThrowawayDatabase("postgresql", work)
    settings = Settings(
        data_dir=work / "data", database_url=db.url, storage_url=(work / "store").as_uri()
    )
    context = build_context(settings, NoBroker())
    contexts = {
        isolated: replace(context, settings=settings.model_copy(update={"isolate_jobs": isolated}))
        for isolated in (True, False)
    }
    try:
        kinds.load_all()  # as a worker does before its pool forks
        with context.db.session() as session:
            user_id = users.create_user(session, "bench", "bench@example.com").user.id
        upload = work / "train.parquet"
        classification_frame(args.rows).to_parquet(upload, index=False)
        dataset = datasets.create_from_upload(context, user_id, "train", upload)
        train = {
            "model_name": "bench",
            "dataset_id": dataset.id,
            "task_type": "classification",
            "target": TARGET,
            "num_boost_round": args.rounds,
            "xgb_params": {"max_depth": 6, "nthread": 1},
        }

        def train_sample(isolated: bool) -> Sample:
            job_id = new_job(context, user_id, "train", train)
            return timed(lambda: runner.run(contexts[isolated], job_id, "bench:1"))

        compare("fork", lambda isolated: fork_sample(context, user_id, isolated), args.pairs)
        compare(f"train ({args.rows:,} rows, {args.rounds} rounds)", train_sample, args.pairs)
        rss = int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        load = Path("/proc/loadavg").read_text().split()[0]
        print(f"RSS of the forking process {rss / 2**20:,.0f} MiB; load {load}")
    finally:
        context.close()
        db.drop()


if __name__ == "__main__":
    main()
