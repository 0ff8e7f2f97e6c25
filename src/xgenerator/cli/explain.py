"""CLI commands for cross-validation (`xgenerator cv`) and explanations
(`xgenerator models importance`); registered by `cli.client.register`."""

from __future__ import annotations

from typing import Annotated, Literal

import typer
from rich.table import Table

from xgenerator.cli.command import (
    DatasetId,
    EarlyStopping,
    Exclude,
    Features,
    Json,
    Params,
    Rounds,
    Target,
    Task,
    TaskType,
    Timeout,
    Wait,
    guarded,
    names,
)
from xgenerator.cli.command import connect as _client
from xgenerator.cli.command import console as _console
from xgenerator.cli.command import (
    param as parse_param,
)
from xgenerator.cli.command import print_json as _print_json
from xgenerator.cli.jobs import _wait
from xgenerator.cli.models import models_app

ImportanceTypes = ("gain", "total_gain", "weight", "cover", "total_cover", "shap")


@guarded
def cv(
    dataset: DatasetId,
    target: Target,
    name: Annotated[str, typer.Option("--name", "-n", help="Name of the refit model")],
    folds: Annotated[int, typer.Option(help="Number of folds (2-20)")] = 5,
    refit: Annotated[
        bool, typer.Option("--refit", help="Then train on every row for the best round")
    ] = False,
    task: Task = TaskType.classification,
    rounds: Rounds = 100,
    param: Params = None,
    features: Features = None,
    exclude: Exclude = None,
    early_stopping: EarlyStopping = None,
    wait: Wait = False,
    timeout: Timeout = None,
    as_json: Json = False,
) -> None:
    """Submit a k-fold cross-validation job (stratified for classification); with --wait,
    follow it and print the best round's fold means."""
    kind: Literal["classification", "regression"] = (
        "regression" if task is TaskType.regression else "classification"
    )
    with _client() as client:
        job = client.cv(
            dataset,
            target,
            model_name=name,
            folds=folds,
            refit=refit,
            task_type=kind,
            num_boost_round=rounds,
            xgb_params=dict(parse_param(p) for p in param or []),
            features=names(features),
            exclude_features=names(exclude),
            early_stopping_rounds=early_stopping,
        )
        if wait:
            _wait(job, timeout, as_json)
            if not as_json and job.info.result:
                result = job.info.result
                _console().print(
                    f"best round {result['best_round']} of {len(result['history'])} "
                    f"by {result['best_metric']}: {result['best']}"
                )
        elif as_json:
            _print_json(job.info)
        else:
            _console().print(
                f"job [bold]{job.id}[/] {job.status}; follow it with "
                f"`xgenerator jobs watch {job.id}`"
            )


@guarded
def models_importance(
    model_id: str,
    type: Annotated[
        str, typer.Option("--type", help=f"One of: {', '.join(ImportanceTypes)}")
    ] = "gain",
    as_json: Json = False,
) -> None:
    """Feature importance by dataset column, largest first (shap: kept from training)."""
    with _client() as client:
        values = client.models.importance(model_id, type)
    if as_json:
        _print_json(values)
        return
    table = Table("feature", type)
    for feature, value in values.items():
        table.add_row(feature, f"{value:.6g}")
    _console().print(table)


def register(cli: typer.Typer, exit_codes: str) -> None:
    cli.command(name="cv", help=f"{cv.__doc__}\n\n{exit_codes}")(cv)
    models_app.command("importance")(models_importance)
