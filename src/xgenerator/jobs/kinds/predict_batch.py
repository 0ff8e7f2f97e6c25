"""Batch prediction jobs (`predict`): a model over a whole dataset, streamed chunk by chunk.

The output (input rows + predictions) becomes a dataset and a downloadable artifact; both
point at the one Parquet file, written before the job finishes and registered with it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from xgenerator.context import Context
from xgenerator.datasets import repository as datasets
from xgenerator.db.tables import Job
from xgenerator.errors import InvalidInput
from xgenerator.jobs.kinds import Outcome, register
from xgenerator.jobs.kinds.derived import (
    chunk_progress,
    derived_outcome,
    new_parquet,
    open_dataset,
)
from xgenerator.jobs.queues import Queue
from xgenerator.jobs.runtime import Runtime
from xgenerator.ml.batch import output_columns, predict_parquet
from xgenerator.models.repository import get_owned as get_model
from xgenerator.models.repository import load_bundle
from xgenerator.settings import Settings


class PredictBatchKind:
    job_type = "predict"

    def prepare(
        self, session: Session, settings: Settings, user_id: str, request: dict[str, Any]
    ) -> Job:
        """The model and dataset must be the user's, and the dataset must have every feature."""
        model_id, dataset_id = request["model_id"], request["dataset_id"]
        output_name = request.get("output_name")
        model = get_model(session, user_id, model_id)
        dataset = datasets.get_owned(session, user_id, dataset_id)
        kinds = {c["name"]: c["kind"] for c in dataset.schema["columns"]}
        missing = [f["name"] for f in model.features if f["name"] not in kinds]
        if missing:
            raise InvalidInput("the dataset lacks columns the model needs", {"missing": missing})
        config = {
            "model_id": model.id,
            "dataset_id": dataset.id,
            "output_name": output_name,
            "explain": bool(request.get("explain", False)),
        }
        return Job(
            user_id=user_id,
            job_type="predict",
            queue=Queue.PREDICT,
            model_name=model.name,
            dataset_id=dataset.id,
            source_model_id=model.id,
            config=config,
        )

    def run(self, context: Context, job: Job, runtime: Runtime) -> Outcome:
        cfg = job.config
        with context.db.session() as session:
            model = get_model(session, job.user_id, cfg["model_id"])
            dataset = datasets.get_owned(session, job.user_id, cfg["dataset_id"])
        runtime.progress(percent=0, message="loading the model", force=True)
        bundle = load_bundle(context, model)
        with (
            open_dataset(context.store, dataset) as source,
            new_parquet(context.store) as (key, handle),
        ):
            explain = bool(cfg.get("explain", False))
            columns = list(output_columns(source.schema_arrow.names, bundle, explain))
            written = predict_parquet(
                bundle,
                source,
                handle,
                context.settings.job_chunk_rows,
                chunk_progress(runtime, "rows predicted"),
                explain=explain,
            )
        name = cfg.get("output_name") or f"{dataset.name} (predictions of {model.name})"
        return derived_outcome(
            context,
            job,
            key,
            written,
            name=name,
            filename="predictions.parquet",
            result={
                "model_id": model.id,
                "source_dataset_id": dataset.id,
                "prediction_columns": columns,
            },
        )


register(PredictBatchKind())
