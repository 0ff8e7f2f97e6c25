"""`xgenerator jobs compare`: metrics and parameters of jobs side by side, differences marked.

`comparison` builds the rows (no I/O, testable alone); the command fetches and prints them.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from xgenerator.cli.command import (
    EXIT_USAGE,
    Json,
    connect,
    console,
    fail,
    guarded,
    print_json,
)
from xgenerator.client import Client, JobInfo, Model

MIN_JOBS, MAX_JOBS = 2, 10


def comparison(jobs: list[JobInfo], models: dict[str, Model | None]) -> list[dict[str, Any]]:
    """One row per metric, parameter and setting: {section, name, values (one per job,
    None where a job has none), differs}."""
    sections: dict[str, dict[str, list[Any]]] = {"metric": {}, "param": {}, "setting": {}}

    def put(section: str, name: str, index: int, value: Any) -> None:
        row = sections[section].setdefault(name, [None] * len(jobs))
        row[index] = value

    for i, job in enumerate(jobs):
        model = models.get(job.job_id)
        result = job.result or {}
        metrics = model.metrics if model is not None else result.get("metrics") or {}
        for key, value in metrics.items():
            put("metric", key, i, value)
        for key, value in ((model.params if model else None) or {}).items():
            put("param", key, i, value)
        put("setting", "status", i, job.status)
        put("setting", "job_type", i, job.job_type)
        put("setting", "model_name", i, job.model_name)
        if model is not None:
            put("setting", "task_type", i, model.task_type)
            put("setting", "target", i, model.target)
            put("setting", "num_boost_round", i, model.num_boost_round)
            put("setting", "dataset_id", i, model.dataset_id)
        if "best_round" in result:
            put("setting", "best_round", i, result["best_round"])
    return [
        {"section": section, "name": name, "values": values, "differs": _differs(values)}
        for section, rows in sections.items()
        for name, values in sorted(rows.items())
    ]


def _differs(values: list[Any]) -> bool:
    return len({json.dumps(v, sort_keys=True, default=str) for v in values}) > 1


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4f}"
    return value if isinstance(value, str) else json.dumps(value, default=str)


@guarded
def jobs_compare(
    job_ids: Annotated[list[str], typer.Argument(help="2 to 10 job ids")],
    only_differences: Annotated[
        bool, typer.Option("--diff", help="Show only the rows that differ")
    ] = False,
    as_json: Json = False,
) -> None:
    """Metrics, parameters and settings of jobs side by side; rows that differ are bold."""
    if not MIN_JOBS <= len(job_ids) <= MAX_JOBS:
        fail(
            f"compare {MIN_JOBS} to {MAX_JOBS} jobs, not {len(job_ids)}",
            EXIT_USAGE,
            as_json,
            "usage",
        )
    with connect() as client:
        jobs = [client.jobs.get(job_id).info for job_id in job_ids]
        models = {job.job_id: _model(client, job) for job in jobs}
    rows = comparison(jobs, models)
    if only_differences:
        rows = [r for r in rows if r["differs"]]
    if as_json:
        print_json({"job_ids": job_ids, "rows": rows})
        return
    table = Table("", "", *job_ids, title="Job comparison (differences in bold yellow)")
    for row in rows:
        style = "bold yellow" if row["differs"] else None
        mark = "≠ " if row["differs"] else "  "
        table.add_row(row["section"], mark + row["name"], *map(_cell, row["values"]), style=style)
    console().print(table)


def _model(client: Client, job: JobInfo) -> Model | None:
    return client.models.get(job.model_id) if job.model_id else None
