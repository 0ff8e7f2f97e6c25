"""`xgenerator train` and `xgenerator jobs`: submit, list, show, cancel, watch."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any, Literal

import typer

from xgenerator.cli import render
from xgenerator.cli.command import (
    EXIT_CODES,
    Json,
    Timeout,
    connect,
    console,
    guarded,
    print_json,
)
from xgenerator.client import Job

jobs_app = typer.Typer(help=f"Follow and cancel jobs.\n\n{EXIT_CODES}", no_args_is_help=True)


class TaskType(StrEnum):
    classification = "classification"
    regression = "regression"
    ranking = "ranking"
    survival = "survival"


def _param(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise typer.BadParameter(f"{text!r}: expected KEY=VALUE, e.g. max_depth=4")
    try:
        return key, json.loads(raw)
    except ValueError:
        return key, raw


def _names(text: str | None) -> list[str] | None:
    return [n.strip() for n in text.split(",") if n.strip()] if text else None


@guarded
def train(
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="Dataset id")],
    target: Annotated[str, typer.Option("--target", "-t", help="Column to predict")],
    name: Annotated[str, typer.Option("--name", "-n", help="Model name")],
    task: Annotated[TaskType, typer.Option(help="What to predict")] = TaskType.classification,
    rounds: Annotated[int, typer.Option(help="Boosting rounds")] = 100,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="XGBoost parameter KEY=VALUE (repeatable)"),
    ] = None,
    features: Annotated[str | None, typer.Option(help="Comma-separated features")] = None,
    exclude: Annotated[str | None, typer.Option(help="Comma-separated columns to skip")] = None,
    early_stopping: Annotated[int | None, typer.Option(help="Stop after N flat rounds")] = None,
    test_size: Annotated[float, typer.Option(help="Held-out fraction")] = 0.2,
    weight_column: Annotated[str | None, typer.Option(help="Sample weight column")] = None,
    group_column: Annotated[str | None, typer.Option(help="Ranking: query id column")] = None,
    event_column: Annotated[
        str | None, typer.Option(help="Survival: 1 observed, 0 censored")
    ] = None,
    rank_k: Annotated[int | None, typer.Option(help="Ranking: k of ndcg@k, map@k")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow until the job ends")] = False,
    timeout: Timeout = None,
    as_json: Json = False,
) -> None:
    """Submit a training job; with --wait, follow it with a progress bar.

    Quantiles and constraints are XGBoost parameters, values in JSON:
    -p objective=reg:quantileerror -p 'quantile_alpha=[0.1,0.5,0.9]'
    -p 'monotone_constraints={"age": 1}'"""
    params = dict(_param(p) for p in param or [])
    with connect() as client:
        kind: Literal["classification", "regression", "ranking", "survival"] = task.value
        job = client.train(
            dataset,
            target,
            model_name=name,
            task_type=kind,
            num_boost_round=rounds,
            xgb_params=params,
            features=_names(features),
            exclude_features=_names(exclude),
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
