"""The client side of `xgenerator`: login, datasets, train, jobs, models, demo.

Each command parses its arguments, calls `xgenerator.client`, and prints a Rich table, or
JSON with `--json`. Progress bars go to stderr, so stdout stays clean for scripts.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, ParamSpec

import typer
from pydantic import BaseModel
from rich.console import Console

from xgenerator.cli import render
from xgenerator.client import (
    ApiError,
    Client,
    ClientError,
    Job,
    JobError,
    NotFoundError,
    WaitTimeout,
)
from xgenerator.client import config as client_config

EXIT_CODES = """Exit codes: 0 ok; 1 the job failed or was cancelled; 2 usage error or not
logged in; 3 API or connection error; 4 not found; 5 timed out waiting for a job."""
EXIT_JOB, EXIT_USAGE, EXIT_API, EXIT_NOT_FOUND, EXIT_TIMEOUT = 1, 2, 3, 4, 5

datasets_app = typer.Typer(
    help=f"Upload and inspect datasets.\n\n{EXIT_CODES}", no_args_is_help=True
)
jobs_app = typer.Typer(help=f"Follow and cancel jobs.\n\n{EXIT_CODES}", no_args_is_help=True)
models_app = typer.Typer(
    help=f"Inspect, download and use models.\n\n{EXIT_CODES}", no_args_is_help=True
)

Json = Annotated[bool, typer.Option("--json", help="Print JSON on stdout (for scripts)")]
Timeout = Annotated[float | None, typer.Option(help="Give up waiting after this many seconds")]
P = ParamSpec("P")


class TaskType(StrEnum):
    classification = "classification"
    regression = "regression"
    ranking = "ranking"
    survival = "survival"


class NotLoggedIn(Exception):
    """No server URL or API key configured."""


def guarded(command: Callable[P, None]) -> Callable[P, None]:
    """Turns client errors into a message on stderr and a documented exit code."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        as_json = bool(kwargs.get("as_json"))
        try:
            command(*args, **kwargs)
        except NotLoggedIn as exc:
            _fail(str(exc), EXIT_USAGE, as_json, "not_logged_in")
        except JobError as exc:
            if as_json:
                _print_json(exc.job)
            _fail(str(exc), EXIT_JOB, as_json, f"job_{exc.job.status}")
        except WaitTimeout as exc:
            _fail(str(exc), EXIT_TIMEOUT, as_json, "timeout")
        except NotFoundError as exc:
            _fail(exc.message, EXIT_NOT_FOUND, as_json, exc.code, exc.details)
        except ApiError as exc:
            _fail(exc.message, EXIT_API, as_json, exc.code, exc.details)
        except ClientError as exc:
            _fail(str(exc), EXIT_API, as_json, "connection_failed")

    return run


def _fail(message: str, code: int, as_json: bool, error: str, details: Any = None) -> None:
    if as_json:
        body = {"error": error, "message": message, "details": details}
        typer.echo(json.dumps(body, default=str), err=True)
    else:
        Console(stderr=True).print(f"[red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def _print_json(value: Any) -> None:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, list):
        value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    typer.echo(json.dumps(value, indent=2, default=str))


def _config_path() -> Path:
    return client_config.config_path(os.environ)


def _client() -> Client:
    """From XGEN_CLIENT_URL / XGEN_CLIENT_API_KEY, else from the file `login` wrote."""
    url, key = os.environ.get("XGEN_CLIENT_URL"), os.environ.get("XGEN_CLIENT_API_KEY")
    saved = client_config.load(_config_path())
    url, key = url or (saved.url if saved else None), key or (saved.api_key if saved else None)
    if not url or not key:
        raise NotLoggedIn("not logged in: run `xgenerator login --url URL --api-key KEY`")
    return Client(url, key)


def _console() -> Console:
    return Console(highlight=False)


# --- login ------------------------------------------------------------------------------------


@guarded
def login(
    url: Annotated[str, typer.Option(help="Server URL")] = "http://127.0.0.1:8000",
    api_key: Annotated[str, typer.Option(prompt=True, hide_input=True, help="Your API key")] = "",
    as_json: Json = False,
) -> None:
    """Check the key against the server and save both (file mode 0600; XGEN_CLIENT_CONFIG
    names the file). XGEN_CLIENT_URL and XGEN_CLIENT_API_KEY, when set, win over it."""
    with Client(url, api_key) as client:
        user = client.me()
    path = _config_path()
    client_config.save(path, client_config.Credentials(url.rstrip("/"), api_key))
    if as_json:
        _print_json({"username": user.username, "user_id": user.user_id, "config": str(path)})
    else:
        _console().print(f"logged in as [bold]{user.username}[/] on {url}; saved to {path}")


@guarded
def signup(
    username: str,
    email: str,
    url: Annotated[str, typer.Option(help="Server URL")] = "http://127.0.0.1:8000",
    as_json: Json = False,
) -> None:
    """Create a user and log in as it; prints the API key (shown only this once)."""
    user = Client.create_user(url, username, email)
    client_config.save(_config_path(), client_config.Credentials(url.rstrip("/"), user.api_key))
    if as_json:
        _print_json(user)
    else:
        _console().print(
            f"user [bold]{user.username}[/] created; API key "
            f"[bold]{user.api_key}[/] (saved; shown only once)"
        )


# --- datasets ---------------------------------------------------------------------------------


@datasets_app.command("upload")
@guarded
def datasets_upload(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or Parquet")],
    name: Annotated[str | None, typer.Option(help="Dataset name (default: file name)")] = None,
    as_json: Json = False,
) -> None:
    """Upload a CSV or Parquet file (a progress bar shows for large files)."""
    with _client() as client:
        dataset = client.datasets.upload(file, name, progress=None if not as_json else False)
    if as_json:
        _print_json(dataset)
    else:
        render.dataset(_console(), dataset)


@datasets_app.command("list")
@guarded
def datasets_list(limit: int = 50, as_json: Json = False) -> None:
    with _client() as client:
        rows = client.datasets.list(limit=limit)
    if as_json:
        _print_json(rows)
    else:
        render.datasets(_console(), rows)


@datasets_app.command("show")
@guarded
def datasets_show(dataset_id: str, as_json: Json = False) -> None:
    """A dataset and its schema."""
    with _client() as client:
        dataset = client.datasets.get(dataset_id)
    if as_json:
        _print_json(dataset)
    else:
        render.dataset(_console(), dataset)


@datasets_app.command("delete")
@guarded
def datasets_delete(dataset_id: str, as_json: Json = False) -> None:
    with _client() as client:
        client.datasets.delete(dataset_id)
    if as_json:
        _print_json({"deleted": dataset_id})
    else:
        _console().print(f"deleted {dataset_id}")


# --- train and jobs ---------------------------------------------------------------------------


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
    with _client() as client:
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
            _print_json(job.info)
        else:
            _console().print(
                f"job [bold]{job.id}[/] {job.status}; follow it with "
                f"`xgenerator jobs watch {job.id}`"
            )


def _wait(job: Job, timeout: float | None, as_json: bool) -> None:
    info = job.wait(timeout=timeout, progress=not as_json)
    if as_json:
        _print_json(info)
    else:
        render.job(_console(), info, [])


@jobs_app.command("list")
@guarded
def jobs_list(
    status: Annotated[str | None, typer.Option(help="queued, running, succeeded, ...")] = None,
    limit: int = 50,
    as_json: Json = False,
) -> None:
    with _client() as client:
        jobs = client.jobs.list(status=status, limit=limit)
    infos = [j.info for j in jobs]
    if as_json:
        _print_json(infos)
    else:
        render.jobs(_console(), infos)


@jobs_app.command("show")
@guarded
def jobs_show(job_id: str, as_json: Json = False) -> None:
    """A job, its progress, result or error, and its events."""
    with _client() as client:
        job = client.jobs.get(job_id)
        events = job.events()
    if as_json:
        _print_json(
            {
                **job.info.model_dump(mode="json"),
                "events": [e.model_dump(mode="json") for e in events],
            }
        )
    else:
        render.job(_console(), job.info, events)


@jobs_app.command("cancel")
@guarded
def jobs_cancel(job_id: str, as_json: Json = False) -> None:
    """Cancel a job: at once when queued, within a round when running."""
    with _client() as client:
        info = client.jobs.get(job_id).cancel()
    if as_json:
        _print_json(info)
    else:
        stopping = " (stopping within a round)" if not info.is_final else ""
        _console().print(f"job {job_id}: {info.status}{stopping}")


@jobs_app.command("watch")
@guarded
def jobs_watch(job_id: str, timeout: Timeout = None, as_json: Json = False) -> None:
    """Follow a job live until it ends; the exit code tells how it ended."""
    with _client() as client:
        _wait(client.jobs.get(job_id), timeout, as_json)


# --- models -----------------------------------------------------------------------------------


@models_app.command("list")
@guarded
def models_list(name: str | None = None, limit: int = 50, as_json: Json = False) -> None:
    with _client() as client:
        rows = client.models.list(name=name, limit=limit)
    if as_json:
        _print_json(rows)
    else:
        render.models(_console(), rows)


@models_app.command("show")
@guarded
def models_show(model_id: str, as_json: Json = False) -> None:
    with _client() as client:
        model = client.models.get(model_id)
    if as_json:
        _print_json(model)
    else:
        render.model(_console(), model)


@models_app.command("download")
@guarded
def models_download(
    model_id: str,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (default MODEL_ID.ubj)")
    ] = None,
    as_json: Json = False,
) -> None:
    """Save the booster in XGBoost's UBJSON format."""
    with _client() as client:
        path = client.models.download(model_id, output or Path(f"{model_id}.ubj"))
    if as_json:
        _print_json({"model_id": model_id, "path": str(path), "bytes": path.stat().st_size})
    else:
        _console().print(f"saved {path}")


@models_app.command("predict")
@guarded
def models_predict(
    model_id: str,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV of rows")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write a CSV of predictions")
    ] = None,
    as_json: Json = False,
) -> None:
    """Predict every row of a CSV file (sent in batches of 1,000 rows)."""
    import pandas as pd

    frame = pd.read_csv(file)
    with _client() as client:
        predictions, probabilities = [], []
        for start in range(0, len(frame), 1000):
            result = client.models.predict(model_id, frame.iloc[start : start + 1000])
            predictions += result.predictions
            probabilities += result.probabilities or []
    if output is not None:
        render.predictions_frame(predictions, probabilities).to_csv(output, index=False)
    if as_json:
        _print_json(
            {
                "model_id": model_id,
                "predictions": predictions,
                "probabilities": probabilities or None,
            }
        )
    elif output is not None:
        _console().print(f"{len(predictions)} predictions written to {output}")
    else:
        render.predictions(_console(), predictions, probabilities)


# --- demo -------------------------------------------------------------------------------------


def demo(
    port: Annotated[int | None, typer.Option(help="TCP port (default: a free one)")] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Keep the data here (default: temp)")
    ] = None,
    rounds: Annotated[int, typer.Option(help="Boosting rounds")] = 300,
    keep: Annotated[bool, typer.Option(help="Keep serving afterwards, for the dashboard")] = True,
) -> None:
    """Run the whole flow on scikit-learn's breast cancer data against a local server."""
    from xgenerator.cli import demo as demo_flow

    try:
        demo_flow.run(Console(highlight=False), data_dir, port, rounds, keep)
    except JobError as exc:
        Console(stderr=True).print(f"[red]error:[/] {exc}")
        raise typer.Exit(EXIT_JOB) from None
    except (ClientError, RuntimeError) as exc:
        Console(stderr=True).print(f"[red]error:[/] {exc}")
        raise typer.Exit(EXIT_API) from None


def register(cli: typer.Typer) -> None:
    """Add the client commands to the `xgenerator` command."""
    for command in (login, signup, train, demo):
        cli.command(help=f"{command.__doc__}\n\n{EXIT_CODES}")(command)
    cli.add_typer(datasets_app, name="datasets")
    cli.add_typer(jobs_app, name="jobs")
    cli.add_typer(models_app, name="models")
