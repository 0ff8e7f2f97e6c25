"""Rich tables for the client commands of the CLI (no logic: what to show, and how)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from xgenerator.client import Dataset, JobEvent, JobInfo, Model
from xgenerator.client.progress import latest_metric

if TYPE_CHECKING:
    import pandas as pd

STATUS_STYLE = {
    "queued": "yellow",
    "running": "cyan",
    "succeeded": "green",
    "failed": "red",
    "cancelled": "magenta",
}
PREVIEW_ROWS = 50


def _status(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def datasets(console: Console, rows: list[Dataset]) -> None:
    table = Table("id", "name", "rows", "columns", "size", "created", title="Datasets")
    for d in rows:
        table.add_row(
            d.dataset_id,
            d.dataset_name,
            f"{d.row_count:,}",
            str(d.column_count),
            f"{d.size_bytes / 1024:,.1f} KiB",
            _when(d.created_at),
        )
    console.print(table)


def dataset(console: Console, d: Dataset) -> None:
    console.print(
        f"[bold]{d.dataset_name}[/]  {d.dataset_id}  {d.row_count:,} rows, "
        f"{d.column_count} columns ({d.original_format})"
    )
    table = Table("column", "dtype", "kind", "nulls", title="Schema")
    for c in d.columns:
        table.add_row(c.name, c.dtype, c.kind, str(c.null_count))
    console.print(table)


def jobs(console: Console, rows: list[JobInfo]) -> None:
    table = Table("id", "type", "model", "status", "progress", "created", title="Jobs")
    for j in rows:
        table.add_row(
            j.job_id,
            j.job_type,
            j.model_name or "",
            _status(j.status),
            f"{j.progress.percent:.0f}%",
            _when(j.created_at),
        )
    console.print(table)


def job(console: Console, j: JobInfo, events: list[JobEvent]) -> None:
    console.print(f"[bold]{j.model_name or j.job_type}[/]  job {j.job_id}  {_status(j.status)}")
    p = j.progress
    rounds = f"  round {p.round}/{p.total_rounds}" if p.round and p.total_rounds else ""
    console.print(f"progress {p.percent:.0f}%{rounds}  {latest_metric(p.metrics)}")
    if j.model_id:
        console.print(f"model {j.model_id}")
    if j.error is not None:
        console.print(f"[red]{j.error.error_type}[/]: {j.error.message}")
    metrics = (j.result or {}).get("metrics")
    if isinstance(metrics, dict):
        table = Table("metric", "value", title="Validation metrics")
        for name, value in metrics.items():
            table.add_row(name, _number(value))
        console.print(table)
    if events:
        table = Table("at", "event", "status", "message", title="Events")
        for e in events:
            table.add_row(_when(e.at), e.event, _status(e.status), e.message)
        console.print(table)


def models(console: Console, rows: list[Model]) -> None:
    table = Table("id", "name", "task", "target", "key metrics", "created", title="Models")
    for m in rows:
        key = ", ".join(f"{k} {_number(v)}" for k, v in list(m.metrics.items())[:3])
        table.add_row(m.model_id, m.name, m.task_type, m.target, key, _when(m.created_at))
    console.print(table)


def model(console: Console, m: Model) -> None:
    console.print(
        f"[bold]{m.name}[/]  {m.model_id}  {m.task_type} of {m.target!r}, "
        f"{m.num_boost_round} rounds, from job {m.job_id}"
    )
    table = Table("metric", "value", title="Validation metrics")
    for name, value in m.metrics.items():
        table.add_row(name, _number(value))
    console.print(table)
    features = Table("feature", "kind", title="Features")
    for f in m.features or []:
        features.add_row(str(f.get("name")), str(f.get("kind", "")))
    console.print(features)


def predictions_frame(predicted: list[Any], probabilities: list[dict[str, float]]) -> pd.DataFrame:
    import pandas as pd

    if predicted and isinstance(predicted[0], dict):  # quantile regression: a column per level
        return pd.DataFrame(predicted).add_prefix("quantile_")
    frame = pd.DataFrame({"prediction": predicted})
    if probabilities:
        proba = pd.DataFrame(probabilities).add_prefix("p_")
        frame = pd.concat([frame, proba], axis=1)
    return frame


def predictions(
    console: Console, predicted: list[Any], probabilities: list[dict[str, float]]
) -> None:
    table = Table("row", "prediction", "probability", title="Predictions")
    for i, label in enumerate(predicted[:PREVIEW_ROWS]):
        chance = probabilities[i].get(str(label)) if probabilities else None
        table.add_row(str(i), str(label), "" if chance is None else f"{chance:.3f}")
    console.print(table)
    if len(predicted) > PREVIEW_ROWS:
        console.print(f"… {len(predicted) - PREVIEW_ROWS} more rows; use --output or --json")


def trials(board: dict[str, Any], limit: int | None = None) -> Table:
    """A search's leaderboard (`GET /jobs/{id}/trials`): best first, one row per trial."""
    counts = ", ".join(f"{v} {k}" for k, v in board.get("counts", {}).items() if v)
    best = board.get("best")
    best_text = f"; best {_number(best['value'])} (trial {best['number']})" if best else ""
    table = Table(
        "#",
        "status",
        "params",
        board["metric"],
        "rounds",
        title=f"Search {board['job_id']}: {board['status']}",
        caption=f"{board['direction']} {board['metric']}; {counts or 'no trials yet'}{best_text}",
    )
    rows = board["trials"] if limit is None else board["trials"][:limit]
    for t in rows:
        status = _status(t["status"]) if t["state"] != "pruned" else "[dim]pruned[/]"
        if t["state"] == "pruned" and t.get("pruned_at_round"):
            status += f" @{t['pruned_at_round']}"
        params = ", ".join(f"{k}={_number(v)}" for k, v in t["params"].items())
        value = "" if t["value"] is None else _number(t["value"])
        table.add_row(str(t["number"]), status, params, value, str(t["rounds"]))
    if limit is not None and len(board["trials"]) > limit:
        table.add_row("…", f"{len(board['trials']) - limit} more", "", "", "")
    return table
