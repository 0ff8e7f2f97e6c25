"""What every client command shares: exit codes, the error guard, the client, output.

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
from typing import Annotated, Any, ParamSpec

import typer
from pydantic import BaseModel
from rich.console import Console

from xgenerator.client import (
    ApiError,
    Client,
    ClientError,
    JobError,
    NotFoundError,
    WaitTimeout,
)
from xgenerator.client import config as client_config

EXIT_CODES = """Exit codes: 0 ok; 1 the job failed or was cancelled; 2 usage error or not
logged in; 3 API or connection error; 4 not found; 5 timed out waiting for a job."""
EXIT_JOB, EXIT_USAGE, EXIT_API, EXIT_NOT_FOUND, EXIT_TIMEOUT = 1, 2, 3, 4, 5

Json = Annotated[bool, typer.Option("--json", help="Print JSON on stdout (for scripts)")]
Timeout = Annotated[float | None, typer.Option(help="Give up waiting after this many seconds")]
P = ParamSpec("P")


class TaskType(StrEnum):
    classification = "classification"
    regression = "regression"
    ranking = "ranking"
    survival = "survival"


# The options of a /train request, shared by `train`, `cv` and `tune` (declared once here).
DatasetId = Annotated[str, typer.Option("--dataset", "-d", help="Dataset id")]
Target = Annotated[str, typer.Option("--target", "-t", help="Column to predict")]
ModelName = Annotated[str, typer.Option("--name", "-n", help="Model name")]
Task = Annotated[TaskType, typer.Option(help="What to predict")]
Rounds = Annotated[int, typer.Option(help="Boosting rounds")]
Params = Annotated[
    list[str] | None,
    typer.Option("--param", "-p", help="XGBoost parameter KEY=VALUE (repeatable)"),
]
Features = Annotated[str | None, typer.Option(help="Comma-separated features")]
Exclude = Annotated[str | None, typer.Option(help="Comma-separated columns to skip")]
EarlyStopping = Annotated[int | None, typer.Option(help="Stop after N flat rounds")]
Wait = Annotated[bool, typer.Option("--wait", help="Follow until the job ends")]


def param(text: str) -> tuple[str, Any]:
    """One `--param KEY=VALUE`: the value as JSON when it parses, else as a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise typer.BadParameter(f"{text!r}: expected KEY=VALUE, e.g. max_depth=4")
    try:
        return key, json.loads(raw)
    except ValueError:
        return key, raw


def names(text: str | None) -> list[str] | None:
    """A comma-separated list of columns, or None when not given."""
    return [n.strip() for n in text.split(",") if n.strip()] if text else None


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
            fail(str(exc), EXIT_USAGE, as_json, "not_logged_in")
        except JobError as exc:
            if as_json:
                print_json(exc.job)
            fail(str(exc), EXIT_JOB, as_json, f"job_{exc.job.status}")
        except WaitTimeout as exc:
            fail(str(exc), EXIT_TIMEOUT, as_json, "timeout")
        except NotFoundError as exc:
            fail(exc.message, EXIT_NOT_FOUND, as_json, exc.code, exc.details)
        except ApiError as exc:
            fail(exc.message, EXIT_API, as_json, exc.code, exc.details)
        except ClientError as exc:
            fail(str(exc), EXIT_API, as_json, "connection_failed")

    return run


def fail(message: str, code: int, as_json: bool, error: str, details: Any = None) -> None:
    if as_json:
        body = {"error": error, "message": message, "details": details}
        typer.echo(json.dumps(body, default=str), err=True)
    else:
        Console(stderr=True).print(f"[red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def print_json(value: Any) -> None:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, list):
        value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    typer.echo(json.dumps(value, indent=2, default=str))


def config_path() -> Path:
    return client_config.config_path(os.environ)


def connect() -> Client:
    """From XGEN_CLIENT_URL / XGEN_CLIENT_API_KEY, else from the file `login` wrote."""
    url, key = os.environ.get("XGEN_CLIENT_URL"), os.environ.get("XGEN_CLIENT_API_KEY")
    saved = client_config.load(config_path())
    url, key = url or (saved.url if saved else None), key or (saved.api_key if saved else None)
    if not url or not key:
        raise NotLoggedIn("not logged in: run `xgenerator login --url URL --api-key KEY`")
    return Client(url, key)


def console() -> Console:
    return Console(highlight=False)
