"""The client side of `xgenerator`: login, datasets, train, cv, tune, jobs, models,
predict-batch, report, demo.

The commands live one group per module (account, datasets, jobs, models; what they share in
`command`); `register` is the one hook the `xgenerator` command calls.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from xgenerator.cli import explain, tune
from xgenerator.cli.account import login, signup
from xgenerator.cli.aliases import alias
from xgenerator.cli.batch import predict_batch, report
from xgenerator.cli.command import EXIT_API, EXIT_CODES, EXIT_JOB
from xgenerator.cli.compare import jobs_compare
from xgenerator.cli.datasets import datasets_app
from xgenerator.cli.jobs import jobs_app, train
from xgenerator.cli.models import models_app
from xgenerator.client import ClientError, JobError


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
    for command in (login, signup, train, demo, predict_batch, report):
        name = command.__name__.replace("_", "-")
        cli.command(name, help=f"{command.__doc__}\n\n{EXIT_CODES}")(command)
    jobs_app.command("compare", help=f"{jobs_compare.__doc__}\n\n{EXIT_CODES}")(jobs_compare)
    models_app.command("alias", help=f"{alias.__doc__}\n\n{EXIT_CODES}")(alias)
    cli.add_typer(datasets_app, name="datasets")
    cli.add_typer(jobs_app, name="jobs")
    cli.add_typer(models_app, name="models")
    explain.register(cli, EXIT_CODES)  # cv and models importance
    tune.register(cli, jobs_app, EXIT_CODES)  # tune and jobs trials
