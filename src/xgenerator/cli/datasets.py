"""`xgenerator datasets`: upload, list, show, delete."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xgenerator.cli import render
from xgenerator.cli.command import EXIT_CODES, Json, connect, console, guarded, print_json

datasets_app = typer.Typer(
    help=f"Upload and inspect datasets.\n\n{EXIT_CODES}", no_args_is_help=True
)


@datasets_app.command("upload")
@guarded
def datasets_upload(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or Parquet")],
    name: Annotated[str | None, typer.Option(help="Dataset name (default: file name)")] = None,
    as_json: Json = False,
) -> None:
    """Upload a CSV or Parquet file (a progress bar shows for large files)."""
    with connect() as client:
        dataset = client.datasets.upload(file, name, progress=None if not as_json else False)
    if as_json:
        print_json(dataset)
    else:
        render.dataset(console(), dataset)


@datasets_app.command("list")
@guarded
def datasets_list(limit: int = 50, as_json: Json = False) -> None:
    with connect() as client:
        rows = client.datasets.list(limit=limit)
    if as_json:
        print_json(rows)
    else:
        render.datasets(console(), rows)


@datasets_app.command("show")
@guarded
def datasets_show(dataset_id: str, as_json: Json = False) -> None:
    """A dataset and its schema."""
    with connect() as client:
        dataset = client.datasets.get(dataset_id)
    if as_json:
        print_json(dataset)
    else:
        render.dataset(console(), dataset)


@datasets_app.command("delete")
@guarded
def datasets_delete(dataset_id: str, as_json: Json = False) -> None:
    with connect() as client:
        client.datasets.delete(dataset_id)
    if as_json:
        print_json({"deleted": dataset_id})
    else:
        console().print(f"deleted {dataset_id}")
