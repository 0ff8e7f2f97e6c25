"""`xgenerator models`: list, show, download, predict."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xgenerator.cli import render
from xgenerator.cli.command import EXIT_CODES, Json, connect, console, guarded, print_json

models_app = typer.Typer(
    help=f"Inspect, download and use models.\n\n{EXIT_CODES}", no_args_is_help=True
)


@models_app.command("list")
@guarded
def models_list(name: str | None = None, limit: int = 50, as_json: Json = False) -> None:
    with connect() as client:
        rows = client.models.list(name=name, limit=limit)
    if as_json:
        print_json(rows)
    else:
        render.models(console(), rows)


@models_app.command("show")
@guarded
def models_show(model_id: str, as_json: Json = False) -> None:
    with connect() as client:
        model = client.models.get(model_id)
    if as_json:
        print_json(model)
    else:
        render.model(console(), model)


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
    with connect() as client:
        path = client.models.download(model_id, output or Path(f"{model_id}.ubj"))
    if as_json:
        print_json({"model_id": model_id, "path": str(path), "bytes": path.stat().st_size})
    else:
        console().print(f"saved {path}")


@models_app.command("predict")
@guarded
def models_predict(
    model_id: str,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV of rows")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write a CSV of predictions")
    ] = None,
    explain: Annotated[
        bool, typer.Option("--explain", help="Add SHAP contributions (contribution_* columns)")
    ] = False,
    as_json: Json = False,
) -> None:
    """Predict every row of a CSV file (sent in batches of 1,000 rows)."""
    import pandas as pd

    frame = pd.read_csv(file)
    with connect() as client:
        predictions, probabilities, contributions = [], [], []
        for start in range(0, len(frame), 1000):
            rows = frame.iloc[start : start + 1000]
            result = client.models.predict(model_id, rows, explain=explain)
            predictions += result.predictions
            probabilities += result.probabilities or []
            contributions += result.contributions or []
    if output is not None:
        written = render.predictions_frame(predictions, probabilities)
        if contributions:
            flat = pd.json_normalize(contributions, sep="_").add_prefix("contribution_")
            written = pd.concat([written, flat], axis=1)
        written.to_csv(output, index=False)
    if as_json:
        print_json(
            {
                "model_id": model_id,
                "predictions": predictions,
                "probabilities": probabilities or None,
                "contributions": contributions or None,
            }
        )
    elif output is not None:
        console().print(f"{len(predictions)} predictions written to {output}")
    else:
        render.predictions(console(), predictions, probabilities)
