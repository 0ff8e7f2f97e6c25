"""Dataset processing jobs (`process`): profile, normalize, anomalies.

Columns are checked against the dataset's schema before a job exists; the work itself is in
`datasets/operations.py`. Derived datasets are written before the job finishes and
registered in the transaction that marks it succeeded (see `jobs/kinds/derived.py`).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session

from xgenerator.context import Context
from xgenerator.datasets import operations
from xgenerator.datasets import repository as datasets
from xgenerator.db.tables import Dataset, Job
from xgenerator.errors import InvalidInput
from xgenerator.jobs.kinds import Artifact, Outcome, register
from xgenerator.jobs.kinds.derived import (
    chunk_progress,
    derived_outcome,
    new_parquet,
    open_dataset,
)
from xgenerator.jobs.queues import Queue
from xgenerator.jobs.runtime import Runtime
from xgenerator.settings import Settings

# The dataset kinds each operation can work on when no columns are named.
USABLE = {
    "profile": ("numeric", "boolean", "categorical", "datetime"),
    "normalize": ("numeric",),
    "anomalies": ("numeric", "boolean"),
}


class ProcessKind:
    job_type = "process"

    def prepare(
        self, session: Session, settings: Settings, user_id: str, request: dict[str, Any]
    ) -> Job:
        """Check the columns against the dataset (422 naming what is wrong) and build the job."""
        dataset_id, operation = request["dataset_id"], request["operation"]
        options: dict[str, Any] = request.get("options") or {}
        dataset = datasets.get_owned(session, user_id, dataset_id)
        kinds = {c["name"]: c["kind"] for c in dataset.schema["columns"]}
        usable = USABLE[operation]
        asked = options.get("columns")
        if asked is not None:
            unknown = [c for c in asked if c not in kinds]
            if unknown:
                raise InvalidInput(
                    f"unknown columns: {', '.join(unknown)}",
                    {"unknown": unknown, "available": list(kinds)},
                )
            if len(set(asked)) != len(asked):
                raise InvalidInput("columns are listed twice", {"columns": asked})
            wrong = {c: kinds[c] for c in asked if kinds[c] not in usable}
            if wrong:
                raise InvalidInput(
                    f"{operation} works on {' or '.join(usable)} columns only", {"columns": wrong}
                )
            columns = list(asked)
        else:
            columns = [c for c, k in kinds.items() if k in usable]
        if not columns:
            raise InvalidInput(
                f"the dataset has no {' or '.join(usable)} columns to {operation}",
                {"available": kinds},
            )
        if operation == "anomalies":
            clash = [c for c in operations.ANOMALY_COLUMNS if c in kinds]
            if clash:
                raise InvalidInput("the dataset already has the output columns", {"columns": clash})
        config = {
            "dataset_id": dataset.id,
            "operation": operation,
            "options": {**options, "columns": columns},
        }
        return Job(
            user_id=user_id,
            job_type=self.job_type,
            queue=Queue.PROCESS,
            dataset_id=dataset.id,
            config=config,
        )

    def run(self, context: Context, job: Job, runtime: Runtime) -> Outcome:
        operation = job.config["operation"]
        with context.db.session() as session:
            dataset = datasets.get_owned(session, job.user_id, job.config["dataset_id"])
        runtime.progress(percent=0, message=f"{operation}: starting", force=True)
        options: dict[str, Any] = job.config["options"]
        if operation == "profile":
            return _profile(context, runtime, dataset, options)
        if operation == "normalize":
            return _normalize(context, job, runtime, dataset, options)
        if operation == "anomalies":
            return _anomalies(context, job, runtime, dataset, options)
        raise InvalidInput(f"unknown operation {operation!r}")


def _profile(
    context: Context, runtime: Runtime, dataset: Dataset, options: dict[str, Any]
) -> Outcome:
    with open_dataset(context.store, dataset) as source:
        profile = operations.profile(
            lambda columns: source.read(columns=columns).to_pandas(),
            options["columns"],
            options.get("top_k", 10),
            chunk_progress(runtime, "columns"),
        )
    data = json.dumps(profile, allow_nan=False).encode()
    key = context.store.new_key("artifacts", ".json")
    context.store.put_bytes(key, data)
    return Outcome(
        result={"operation": "profile", "source_dataset_id": dataset.id, "profile": profile},
        artifacts=[Artifact("profile.json", "application/json", key, len(data))],
    )


def _normalize(
    context: Context, job: Job, runtime: Runtime, dataset: Dataset, options: dict[str, Any]
) -> Outcome:
    method = options.get("method", "zscore")
    with (
        open_dataset(context.store, dataset) as source,
        new_parquet(context.store) as (key, handle),
    ):
        params, written = operations.normalize_parquet(
            source,
            handle,
            options["columns"],
            method,
            context.settings.job_chunk_rows,
            chunk_progress(runtime, "rows (two passes)"),
        )
    name = options.get("output_name") or f"{dataset.name} (normalized)"
    return derived_outcome(
        context,
        job,
        key,
        written,
        name=name,
        filename="normalized.parquet",
        result={
            "operation": "normalize",
            "source_dataset_id": dataset.id,
            "method": method,
            "params": params,
        },
    )


def _anomalies(
    context: Context, job: Job, runtime: Runtime, dataset: Dataset, options: dict[str, Any]
) -> Outcome:
    columns: list[str] = options["columns"]
    with open_dataset(context.store, dataset) as source:
        runtime.progress(percent=0, message="fitting the isolation forest", force=True)
        model = operations.fit_anomalies(
            source.read(columns=columns).to_pandas(),
            columns,
            options.get("contamination", "auto"),
            options.get("n_estimators", 100),
            options.get("seed", 0),
        )
        with new_parquet(context.store) as (key, handle):
            summary, written = operations.anomalies_parquet(
                source,
                handle,
                model,
                context.settings.job_chunk_rows,
                chunk_progress(runtime, "rows scored"),
            )
    name = options.get("output_name") or f"{dataset.name} (anomalies)"
    return derived_outcome(
        context,
        job,
        key,
        written,
        name=name,
        filename="anomalies.parquet",
        result={"operation": "anomalies", "source_dataset_id": dataset.id, "summary": summary},
    )


register(ProcessKind())
