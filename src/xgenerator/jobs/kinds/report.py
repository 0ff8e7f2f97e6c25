"""Model report jobs (`report`): one self-contained HTML file, kept as the job's artifact.

The validation data comes from the model's own dataset while it exists; without it the
report leaves out the plots that need data, and says so in its notes and the job's result.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from xgenerator.context import Context
from xgenerator.datasets import repository as datasets
from xgenerator.db.tables import Dataset, Job, JobArtifact, Model, utcnow
from xgenerator.errors import InvalidInput, NotFound, TrainingFailed
from xgenerator.jobs import trial_data
from xgenerator.jobs.kinds import Artifact, Outcome, register
from xgenerator.jobs.kinds.derived import chunk_progress
from xgenerator.jobs.queues import Queue
from xgenerator.jobs.runtime import Runtime
from xgenerator.jobs.status import JobStatus
from xgenerator.ml.bundle import ModelBundle
from xgenerator.ml.report import Evaluation, ReportData, evaluate, feature_importance, render
from xgenerator.models.repository import get_owned as get_model
from xgenerator.models.repository import load_bundle
from xgenerator.settings import Settings

REPORT_NAME = "report.html"
DEFAULT_TEST_SIZE = 0.2  # what training uses when the request names none


def latest_report(session: Session, user_id: str, model_id: str) -> JobArtifact:
    """The HTML of the model's most recent succeeded report job (404 when there is none)."""
    model = get_model(session, user_id, model_id)
    query = (
        select(JobArtifact)
        .join(Job, Job.id == JobArtifact.job_id)
        .where(
            Job.user_id == user_id,
            Job.source_model_id == model.id,
            Job.job_type == "report",
            Job.status == JobStatus.SUCCEEDED,
            JobArtifact.name == REPORT_NAME,
        )
        .order_by(Job.completed_at.desc(), Job.id.desc())
        .limit(1)
    )
    artifact = session.scalar(query)
    if artifact is None:
        raise NotFound("report", model_id)
    return artifact


class ReportKind:
    job_type = "report"

    def prepare(
        self, session: Session, settings: Settings, user_id: str, request: dict[str, Any]
    ) -> Job:
        """Records the training job's test_size now: that job's record may be deleted later."""
        model_id = request["model_id"]
        model = get_model(session, user_id, model_id)
        if model.task_type not in ("classification", "regression") or (
            model.params.get("objective") == "reg:quantileerror"
        ):
            raise InvalidInput(
                "reports cover classification and single-output regression models",
                {"task_type": model.task_type, "objective": model.params.get("objective")},
            )
        training = session.get(Job, model.job_id)
        test_size = training.config.get("test_size") if training is not None else None
        config = {"model_id": model.id, "test_size": test_size}
        return Job(
            user_id=user_id,
            job_type="report",
            queue=Queue.PROCESS,
            model_name=model.name,
            dataset_id=model.dataset_id,
            source_model_id=model.id,
            config=config,
        )

    def run(self, context: Context, job: Job, runtime: Runtime) -> Outcome:
        with context.db.session() as session:
            model = get_model(session, job.user_id, job.config["model_id"])
            dataset = self._dataset(session, job.user_id, model)
        runtime.progress(percent=0, message="loading the model", force=True)
        bundle = load_bundle(context, model)
        notes: list[str] = []
        evaluation = self._evaluate(context, runtime, job, bundle, dataset, notes)
        importance = feature_importance(bundle)
        shap = (model.importance or {}).get("shap") or {}
        html, plots = render(
            ReportData(
                title=f"Model report: {model.name}",
                facts=_facts(model),
                stored_metrics=model.metrics,
                history=model.history,
                importance=importance,
                evaluation=evaluation,
                notes=notes,
                shap=shap.get("values"),
                shap_rows=int(shap.get("rows") or 0),
            )
        )
        data = html.encode()
        key = context.store.new_key("artifacts", ".html")
        context.store.put_bytes(key, data)
        return Outcome(
            result={
                "model_id": model.id,
                "dataset_id": dataset.id if evaluation is not None and dataset else None,
                "evaluated_rows": evaluation.rows if evaluation is not None else 0,
                "metrics": evaluation.metrics if evaluation is not None else None,
                "feature_importance": dict(list(importance.items())[:30]),
                "plots": plots,
                "notes": notes,
            },
            artifacts=[Artifact(REPORT_NAME, "text/html; charset=utf-8", key, len(data))],
        )

    @staticmethod
    def _dataset(session: Session, user_id: str, model: Model) -> Dataset | None:
        if model.dataset_id is None:
            return None
        try:
            return datasets.get_owned(session, user_id, model.dataset_id)
        except NotFound:
            return None

    @staticmethod
    def _evaluate(
        context: Context,
        runtime: Runtime,
        job: Job,
        bundle: ModelBundle,
        dataset: Dataset | None,
        notes: list[str],
    ) -> Evaluation | None:
        missing_data = (
            "the confusion matrix, ROC/PR curves and residuals are left out; "
            "metrics are those recorded at training"
        )
        if dataset is None:
            notes.append(f"The model's dataset no longer exists: {missing_data}.")
            return None
        needed = [*(f.name for f in bundle.features), bundle.target]
        present = {c["name"] for c in dataset.schema["columns"]}
        absent = [c for c in needed if c not in present]
        if absent:
            notes.append(f"The dataset lacks columns {absent}: {missing_data}.")
            return None
        test_size = job.config.get("test_size")
        if test_size is None:
            test_size = DEFAULT_TEST_SIZE
            notes.append(
                "The training job's record is gone; the validation split assumes "
                f"test_size={DEFAULT_TEST_SIZE}."
            )
        frame, _ = trial_data.load(context, job, dataset, needed, reusable=False)
        try:
            return evaluate(
                bundle,
                frame,
                float(test_size),
                context.settings.job_chunk_rows,
                chunk_progress(runtime, "validation rows predicted"),
            )
        except (TrainingFailed, InvalidInput) as exc:
            notes.append(f"The dataset no longer fits the model ({exc.message}): {missing_data}.")
            return None


def _facts(model: Model) -> list[tuple[str, str]]:
    facts: list[tuple[str, Any]] = [
        ("name", model.name),
        ("model id", model.id),
        ("task", model.task_type),
        ("target", model.target),
        ("features", len(model.features)),
        ("boosting rounds", model.num_boost_round),
        ("training rows", model.row_count),
        ("dataset id", model.dataset_id or "none"),
        ("created", model.created_at.isoformat()),
        ("XGBoost", model.xgboost_version),
        ("report generated", utcnow().isoformat()),
    ]
    if model.labels:
        facts.insert(4, ("classes", ", ".join(str(c) for c in model.labels)))
    return [(k, str(v)) for k, v in facts]


register(ReportKind())
