"""`xgenerator tune` and `xgenerator jobs trials`: a hyper-parameter search and its live
leaderboard; registered by `cli.client.register`.

The live table is redrawn on stderr (like the progress bars) from `GET /jobs/{id}/trials`
every `--interval` seconds until the search ends; the final leaderboard then goes to stdout,
or, with `--json`, the search's job with its leaderboard under `trials`.
"""

from __future__ import annotations

import inspect
import json
from enum import StrEnum
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.live import Live

from xgenerator.cli import render
from xgenerator.cli.command import (
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
    connect,
    console,
    guarded,
    names,
    print_json,
)
from xgenerator.cli.command import param as parse_param
from xgenerator.client import Job

# Rows of the live table: a terminal shows the leaders, the final table shows every trial.
LIVE_ROWS = 20


class Strategy(StrEnum):
    tpe = "tpe"
    random = "random"
    grid = "grid"


class Direction(StrEnum):
    minimize = "minimize"
    maximize = "maximize"


def space_entry(text: str) -> tuple[str, dict[str, Any]]:
    """One `--space NAME=SPEC`: SPEC is `float:LOW:HIGH[:log]`, `int:LOW:HIGH[:log]`,
    `cat:A,B,...` (each choice JSON when it parses), or the JSON object /tune takes."""
    name, sep, spec = text.partition("=")
    if not sep or not name or not spec:
        raise typer.BadParameter(f"{text!r}: expected NAME=SPEC, e.g. eta=float:0.01:0.3:log")
    if spec.lstrip().startswith("{"):
        try:
            parsed = json.loads(spec)
        except ValueError as exc:
            raise typer.BadParameter(f"{text!r}: {exc}") from None
        return name, parsed
    kind, _, rest = spec.partition(":")
    if kind in ("cat", "categorical"):
        return name, {"type": "categorical", "choices": [_choice(c) for c in rest.split(",")]}
    parts = rest.split(":")
    if kind not in ("float", "int") or len(parts) not in (2, 3) or parts[2:] not in ([], ["log"]):
        raise typer.BadParameter(
            f"{text!r}: expected float:LOW:HIGH[:log], int:LOW:HIGH[:log] or cat:A,B,..."
        )
    number = int if kind == "int" else float
    try:
        low, high = number(parts[0]), number(parts[1])
    except ValueError:
        raise typer.BadParameter(f"{text!r}: LOW and HIGH must be {kind}s") from None
    return name, {"type": kind, "low": low, "high": high, "log": parts[2:] == ["log"]}


def _choice(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


@guarded
def tune(
    dataset: DatasetId,
    target: Target,
    name: ModelName,
    space: Annotated[
        list[str],
        typer.Option(
            "--space",
            "-s",
            help="A parameter to search, NAME=SPEC (repeatable): eta=float:0.01:0.3:log, "
            "max_depth=int:2:8, tree_method=cat:hist,approx, or NAME='{JSON}'",
        ),
    ],
    trials: Annotated[int, typer.Option("--trials", help="max_trials (1-200)")] = 20,
    parallel: Annotated[int, typer.Option("--parallel", help="Trials at once")] = 1,
    strategy: Annotated[Strategy, typer.Option(help="Sampler")] = Strategy.tpe,
    metric: Annotated[
        str | None, typer.Option(help="Validation metric to optimize (default: the last)")
    ] = None,
    direction: Annotated[Direction | None, typer.Option(help="Default: by the metric")] = None,
    cv_folds: Annotated[
        int | None, typer.Option(help="Score trials by k-fold cross-validation (2-20)")
    ] = None,
    prune: Annotated[bool, typer.Option(help="Stop trials below the median early")] = True,
    seed: Annotated[int, typer.Option(help="The sampler's seed")] = 0,
    search_timeout: Annotated[
        float | None, typer.Option(help="No trial starts after this many seconds")
    ] = None,
    task: Task = TaskType.classification,
    rounds: Rounds = 100,
    param: Params = None,
    features: Features = None,
    exclude: Exclude = None,
    early_stopping: EarlyStopping = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Show the trials live until the search ends")
    ] = False,
    interval: Annotated[float, typer.Option(help="Seconds between table refreshes")] = 1.0,
    timeout: Timeout = None,
    as_json: Json = False,
) -> None:
    """Submit a hyper-parameter search (its trials are training jobs); with --wait, a live
    table of the trials (status, params, metric, rounds) until it ends, then the leaderboard.

    -s eta=float:0.01:0.3:log -s max_depth=int:2:8 --trials 20 --parallel 2"""
    search_space = dict(space_entry(s) for s in space)
    kind: Literal["classification", "regression", "ranking", "survival"] = task.value
    with connect() as client:
        job = client.tune(
            dataset,
            target,
            model_name=name,
            search_space=search_space,
            max_trials=trials,
            max_parallel=parallel,
            strategy=strategy.value,
            metric=metric,
            direction=direction.value if direction else None,
            task_type=kind,
            num_boost_round=rounds,
            xgb_params=dict(parse_param(p) for p in param or []),
            cv_folds=cv_folds,
            prune=prune,
            seed=seed,
            timeout_s=search_timeout,
            features=names(features),
            exclude_features=names(exclude),
            early_stopping_rounds=early_stopping,
        )
        if wait:
            follow(job, timeout, interval, as_json)
        elif as_json:
            print_json(job.info)
        else:
            console().print(
                f"search [bold]{job.id}[/] {job.status}; follow it with "
                f"`xgenerator jobs trials {job.id} --wait`"
            )


def follow(job: Job, timeout: float | None, interval: float, as_json: bool) -> None:
    """Redraw the trials on stderr until the search ends; then print the leaderboard (or the
    search as JSON, its leaderboard under `trials`). A search that failed or was cancelled
    raises JobError (exit 1), one still running at `timeout` WaitTimeout (exit 5)."""
    board: dict[str, Any] = {}
    if as_json:
        for latest in job.follow_trials(timeout, interval):
            board = latest
    else:
        live_console = Console(stderr=True, highlight=False)
        with Live(console=live_console, transient=True, auto_refresh=False) as live:
            try:
                for board in job.follow_trials(timeout, interval):
                    live.update(render.trials(board, LIVE_ROWS), refresh=True)
            finally:
                if board:  # the last table stays on stdout, however the wait ended
                    live.stop()
                    console().print(render.trials(board))
    if as_json:
        print_json({**job.info.model_dump(mode="json"), "trials": board})
    elif job.info.model_id:
        console().print(f"best model [bold]{job.info.model_id}[/] ({job.info.progress.message})")


def jobs_trials(
    job_id: str,
    wait: Annotated[
        bool, typer.Option("--wait", help="Show the trials live until the search ends")
    ] = False,
    interval: Annotated[float, typer.Option(help="Seconds between table refreshes")] = 1.0,
    timeout: Timeout = None,
    as_json: Json = False,
) -> None:
    """A search's leaderboard: trials best first, with params, metric and rounds (live
    until the search ends with the --wait option; the exit code then tells how it ended)."""
    with connect() as client:
        job = client.jobs.get(job_id)
        if wait:
            follow(job, timeout, interval, as_json)
            return
        board = job.trials()
    if as_json:
        print_json(board)
    else:
        console().print(render.trials(board))


def register(cli: typer.Typer, jobs_app: typer.Typer, exit_codes: str) -> None:
    cli.command(name="tune", help=f"{inspect.getdoc(tune)}\n\n{exit_codes}")(tune)
    trials_help = f"{inspect.getdoc(jobs_trials)}\n\n{exit_codes}"
    jobs_app.command("trials", help=trials_help)(guarded(jobs_trials))
