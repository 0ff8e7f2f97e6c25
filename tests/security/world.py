"""Two users, and one of every object for the first: what the security tests attack.

Alice's finished jobs, model, report and artifacts are written directly through the ORM,
with a real UBJSON model file trained in-process by `xgenerator.ml` (a factory, as in
tests/api/test_feedback.py): no worker is needed to have every kind of object at hand.
Her queued job, dataset, logged prediction and keys go through the API, as a client's would.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import xgboost as xgb
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, select

from tests.support import auth, classification_frame, create_user, upload
from xgenerator.context import Context
from xgenerator.db.tables import Job, JobArtifact, JobEvent, Model, new_id
from xgenerator.jobs import rounds
from xgenerator.ml import bundle
from xgenerator.ml.bundle import ModelBundle
from xgenerator.ml.train import TrainSpec, train

FEATURES = ["x1", "x2", "color"]
ROWS = [{"x1": 0.5, "x2": 7.0, "color": "red"}, {"x1": -1.0, "x2": 2.0, "color": "blue"}]


@dataclass
class World:
    alice: dict[str, str]
    bob: dict[str, str]
    # Alice's objects, by the name of the path parameter (or body field) that carries them
    ids: dict[str, str] = field(default_factory=dict)
    bob_dataset_id: str = ""

    @property
    def alice_ids(self) -> set[str]:
        return {v for k, v in self.ids.items() if k != "artifact_name"} | {self.alice["user_id"]}


def _job(context: Context, user_id: str, job_type: str, queue: str, **fields: Any) -> Job:
    """A finished job row with its events, as a worker would have left it."""
    done = datetime.now(UTC) - timedelta(minutes=5)
    history = fields.pop("history", [])
    values: dict[str, Any] = {
        "status": "succeeded",
        "config": {},
        "attempts": 1,
        "created_at": done - timedelta(seconds=30),
        "updated_at": done,
        "started_at": done - timedelta(seconds=20),
        "completed_at": done,
        "progress": {"percent": 100.0, "message": "done"},
        **fields,
    }
    job = Job(id=new_id(), user_id=user_id, job_type=job_type, queue=queue, **values)
    with context.db.session() as session:
        session.add(job)
        session.flush()
        rounds.write(session, job.id, history)
        for event in ("submitted", "started", "succeeded"):
            status = {"submitted": "queued", "started": "running"}.get(event, event)
            session.add(JobEvent(job_id=job.id, event=event, status=status, at=done, attempt=1))
    return job


def _artifact(context: Context, job_id: str, name: str, content_type: str, data: bytes) -> None:
    key = context.store.new_key("artifacts", Path(name).suffix)
    context.store.put_bytes(key, data)
    with context.db.session() as session:
        session.add(
            JobArtifact(
                job_id=job_id,
                name=name,
                content_type=content_type,
                storage_key=key,
                size_bytes=len(data),
            )
        )


def trained_model(
    context: Context, user_id: str, dataset_id: str | None, name: str = "alice-model"
) -> tuple[str, str]:
    """(training job id, model id): a succeeded `train` job and its model, file included."""
    frame = classification_frame(120)
    result = train(frame, TrainSpec("classification", "label", FEATURES, {"nthread": 1}, 5))
    packed = ModelBundle(result.booster, "classification", "label", result.features, result.labels)
    key = context.store.new_key("models", ".ubj")
    context.store.put_bytes(key, bundle.dumps(packed))
    model_id = new_id()
    config = {
        "model_name": name,
        "dataset_id": dataset_id,
        "task_type": "classification",
        "target": "label",
        "features": FEATURES,
        "xgb_params": {"nthread": 1},
        "num_boost_round": 5,
        "test_size": 0.2,
    }
    job = _job(
        context,
        user_id,
        "train",
        "train",
        model_name=name,
        dataset_id=dataset_id,
        config=config,
        model_id=model_id,
        history=result.history,
        result={"model_id": model_id, "metrics": result.metrics},
    )
    with context.db.session() as session:
        session.add(
            Model(
                id=model_id,
                user_id=user_id,
                job_id=job.id,
                name=name,
                task_type="classification",
                target="label",
                features=[f.to_dict() for f in result.features],
                params=result.params,
                metrics=result.metrics,
                history=result.history,
                labels=result.labels.classes if result.labels else None,
                dataset_id=dataset_id,
                row_count=len(frame),
                num_boost_round=5,
                storage_key=key,
                xgboost_version=xgb.__version__,
                version=1,
            )
        )
    return job.id, model_id


def build(client: TestClient, context: Context) -> World:
    alice = create_user(client, "alice")
    bob = create_user(client, "bob")
    world = World(alice, bob)
    uploaded = upload(client, alice, classification_frame(80), name="alice-data")
    assert uploaded.status_code == 201, uploaded.text
    dataset_id = uploaded.json()["dataset_id"]
    bob_upload = upload(client, bob, classification_frame(80, seed=3), name="bob-data")
    world.bob_dataset_id = bob_upload.json()["dataset_id"]

    train_job, model_id = trained_model(context, alice["user_id"], dataset_id)
    report = _job(
        context,
        alice["user_id"],
        "report",
        "process",
        model_name="alice-model",
        source_model_id=model_id,
        config={"model_id": model_id},
        result={"notes": []},
    )
    _artifact(context, report.id, "report.html", "text/html", b"<html>alice's report</html>")
    profile = _job(
        context,
        alice["user_id"],
        "process",
        "process",
        dataset_id=dataset_id,
        config={"dataset_id": dataset_id, "operation": "profile", "options": {}},
        result={"rows": 80},
    )
    _artifact(context, profile.id, "profile.json", "application/json", b'{"alice": true}')
    queued = client.post("/jobs/noop", headers=auth(alice))
    assert queued.status_code == 202, queued.text

    predicted = client.post(
        f"/models/{model_id}/predict", headers=auth(alice), json={"rows": ROWS, "log": True}
    )
    assert predicted.status_code == 200, predicted.text
    alias = client.put(
        "/registered-models/alice-model/aliases/production",
        headers=auth(alice),
        json={"version": 1},
    )
    assert alias.status_code == 200, alias.text
    spare = client.post("/users/me/keys", headers=auth(alice), json={"name": "spare"})
    assert spare.status_code == 201, spare.text

    world.ids = {
        "dataset_id": dataset_id,
        "model_id": model_id,
        "train_job_id": train_job,
        "report_job_id": report.id,
        "artifact_job_id": profile.id,
        "artifact_name": "profile.json",
        "queued_job_id": queued.json()["job_id"],
        "prediction_id": predicted.json()["prediction_ids"][0],
        "key_id": spare.json()["key_id"],
        "model_name": "alice-model",
        "alias": "production",
    }
    return world


def snapshot(context: Context) -> dict[str, Any]:
    """Every row of every table (reflected, so a new table is included) and every stored
    file's digest: two snapshots are equal only if nothing at all was written."""
    engine = context.db.engine
    metadata = MetaData()
    metadata.reflect(engine)
    rows: dict[str, Any] = {}
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            result = conn.execute(select(table))
            rows[table.name] = sorted(
                json.dumps(dict(r._mapping), sort_keys=True, default=str) for r in result
            )
    root = Path(context.store.root)
    files = {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }
    return {"rows": rows, "files": files}
