"""`xgenerator train` and `xgenerator jobs`: submit, list, show, cancel, watch."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from xgenerator.cli import render
from xgenerator.cli.command import (
    EXIT_CODES,
    DatasetId,
    EarlyStopping,
    Exclude,
    Features,
    Json,
    ModelName,
    Params,
    Rounds,
    Target,
    Task,
    TaskType,
    Timeout,
    Wait,
    connect,
    console,
    guarded,
    names,
    print_json,
)
from xgenerator.cli.command import param as parse_param
from xgenerator.client import Job

jobs_app = typer.Typer(help=f"Follow and cancel jobs.\n\n{EXIT_CODES}", no_args_is_help=True)


@guarded
def train(
    dataset: DatasetId,
    target: Target,
    name: ModelName,
    task: Task = TaskType.classification,
    rounds: Rounds = 100,
    param: Params = None,
    features: Features = None,
    exclude: Exclude = None,
    early_stopping: EarlyStopping = None,
    test_size: Annotated[float, typer.Option(help="Held-out fraction")] = 0.2,
    weight_column: Annotated[str | None, typer.Option(help="Sample weight column")] = None,
    group_column: Annotated[str | None, typer.Option(help="Ranking: query id column")] = None,
    event_column: Annotated[
        str | None, typer.Option(help="Survival: 1 observed, 0 censored")
    ] = None,
    rank_k: Annotated[int | None, typer.Option(help="Ranking: k of ndcg@k, map@k")] = None,
    wait: Wait = False,
    timeout: Timeout = None,
    as_json: Json = False,
) -> None:
    """Submit a training job; with --wait, follow it with a progress bar.

    Quantiles and constraints are XGBoost parameters, values in JSON:
    -p objective=reg:quantileerror -p 'quantile_alpha=[0.1,0.5,0.9]'
    -p 'monotone_constraints={"age": 1}'"""
    params = dict(parse_param(p) for p in param or [])
    with connect() as client:
        kind: Literal["classification", "regression", "ranking", "survival"] = task.value
        job = client.train(
            dataset,
            target,
            model_name=name,
            task_type=kind,
            num_boost_round=rounds,
            xgb_params=params,
            features=names(features),
            exclude_features=names(exclude),
            early_stopping_rounds=early_stopping,
            test_size=test_size,
            weight_column=weight_column,
            group_column=group_column,
            event_column=event_column,
            rank_k=rank_k,
        )
        if wait:
            _wait(job, timeout, as_json)
        elif as_json:
            print_json(job.info)
        else:
            console().print(
                f"job [bold]{job.id}[/] {job.status}; follow it with "
                f"`xgenerator jobs watch {job.id}`"
            )


def _wait(job: Job, timeout: float | None, as_json: bool) -> None:
    info = job.wait(timeout=timeout, progress=not as_json)
    if as_json:
        print_json(info)
    else:
        render.job(console(), info, [])


@jobs_app.command("list")
@guarded
def jobs_list(
    status: Annotated[str | None, typer.Option(help="queued, running, succeeded, ...")] = None,
    limit: int = 50,
    as_json: Json = False,
) -> None:
    with connect() as client:
        jobs = client.jobs.list(status=status, limit=limit)
    infos = [j.info for j in jobs]
    if as_json:
        print_json(infos)
    else:
        render.jobs(console(), infos)


@jobs_app.command("show")
@guarded
def jobs_show(job_id: str, as_json: Json = False) -> None:
    """A job, its progress, result or error, and its events."""
    with connect() as client:
        job = client.jobs.get(job_id)
        events = job.events()
    if as_json:
        print_json(
            {
                **job.info.model_dump(mode="json"),
                "events": [e.model_dump(mode="json") for e in events],
            }
        )
    else:
        render.job(console(), job.info, events)


@jobs_app.command("cancel")
@guarded
def jobs_cancel(job_id: str, as_json: Json = False) -> None:
    """Cancel a job: at once when queued, within a round when running."""
    with connect() as client:
        info = client.jobs.get(job_id).cancel()
    if as_json:
        print_json(info)
    else:
        stopping = " (stopping within a round)" if not info.is_final else ""
        console().print(f"job {job_id}: {info.status}{stopping}")


@jobs_app.command("watch")
@guarded
def jobs_watch(job_id: str, timeout: Timeout = None, as_json: Json = False) -> None:
    """Follow a job live until it ends; the exit code tells how it ended."""
    with connect() as client:
        _wait(client.jobs.get(job_id), timeout, as_json)
