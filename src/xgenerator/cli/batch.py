"""`xgenerator predict-batch` and `xgenerator report`: jobs that turn a model into a file."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from xgenerator.cli import render
from xgenerator.cli.command import Json, Timeout, Wait, connect, console, guarded, print_json
from xgenerator.client import Job

Output = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Download the result here (implies --wait)"),
]


@guarded
def predict_batch(
    model: Annotated[str, typer.Argument(help="Model id, or NAME@ALIAS / NAME@VERSION")],
    dataset: Annotated[str, typer.Argument(help="Id of the dataset to predict")],
    output_name: Annotated[str | None, typer.Option(help="Name of the predictions dataset")] = None,
    explain: Annotated[
        bool, typer.Option("--explain", help="Add contribution_<column> SHAP columns")
    ] = False,
    wait: Wait = False,
    output: Output = None,
    timeout: Timeout = None,
    as_json: Json = False,
) -> None:
    """Predict a whole dataset on a worker; the predictions become a new dataset.

    With -o, wait and download them: Parquet, or CSV when the file name ends in .csv."""
    with connect() as client:
        job = client.models.predict_batch(model, dataset, output_name, explain=explain)
        if not (wait or output):
            _submitted(job, as_json)
            return
        info = job.wait(timeout=timeout, progress=not as_json)
        result = job.result()
        saved = _save_predictions(job, output) if output is not None else None
    summary: dict[str, Any] = {
        "job_id": job.id,
        "status": info.status,
        "dataset_id": (result.result or {}).get("dataset_id"),
        "rows": (result.result or {}).get("rows"),
        "prediction_columns": (result.result or {}).get("prediction_columns"),
        "path": str(saved) if saved else None,
        "polled": job.polled,
    }
    if as_json:
        print_json(summary)
        return
    render.job(console(), info, [])
    if saved is not None:
        console().print(f"predictions written to {saved}")


def _save_predictions(job: Job, output: Path) -> Path:
    """The job's Parquet file, converted to CSV when `output` says so."""
    artifacts = job.result().artifacts
    parquet = next(a for a in artifacts if a.name.endswith(".parquet"))
    if output.suffix.lower() != ".csv":
        return job.download(parquet.name, output)
    import pandas as pd

    with tempfile.TemporaryDirectory() as scratch:
        local = job.download(parquet.name, Path(scratch) / parquet.name)
        pd.read_parquet(local).to_csv(output, index=False)
    return output


@guarded
def report(
    model: Annotated[str, typer.Argument(help="Model id, or NAME@ALIAS / NAME@VERSION")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="HTML file (default MODEL_ID-report.html)"),
    ] = None,
    timeout: Timeout = None,
    as_json: Json = False,
) -> None:
    """Build the model's HTML report on a worker, wait for it and download it."""
    with connect() as client:
        job = client.models.report(model)
        info = job.wait(timeout=timeout, progress=not as_json)
        model_id = str((info.result or {}).get("model_id") or model)
        path = client.models.download_report(model_id, output or Path(f"{model_id}-report.html"))
    if as_json:
        print_json(
            {
                "job_id": job.id,
                "model_id": model_id,
                "path": str(path),
                "bytes": path.stat().st_size,
                "notes": (info.result or {}).get("notes"),
            }
        )
    else:
        console().print(f"report saved to {path}")


def _submitted(job: Job, as_json: bool) -> None:
    if as_json:
        print_json(job.info)
    else:
        console().print(
            f"job [bold]{job.id}[/] {job.status}; follow it with `xgenerator jobs watch {job.id}`"
        )
