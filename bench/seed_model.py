"""A model registered straight into a deployment's database and store (no training job).

The online benchmark needs its model before the services it compares have started (MLflow's
`models serve` reads its model at start-up), so it is trained in-process and written through
the deployment's own context, as a finished training job writes it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xgboost as xgb

from xgenerator.context import Context
from xgenerator.db.tables import Model, new_id
from xgenerator.ml import bundle as bundles
from xgenerator.ml.bundle import ModelBundle
from xgenerator.ml.train import TrainSpec, train
from xgenerator.models import versions
from xgenerator.users import service as users

TARGET = "label"


@dataclass(frozen=True)
class Seeded:
    api_key: str
    model_id: str
    bundle: ModelBundle  # as the service loads it: from its file
    frame: pd.DataFrame  # the training frame, target included


def numeric_frame(rows: int, features: int = 30, seed: int = 0) -> pd.DataFrame:
    """Binary classification over `features` float columns (2% missing): the model MLflow's
    xgboost flavour can serve as is (its schema has no categorical type)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features))
    score = x[:, :5] @ np.array([1.0, -0.8, 0.6, 0.4, -0.3]) + rng.normal(scale=0.5, size=rows)
    x[rng.random(size=x.shape) < 0.02] = np.nan
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(features)])
    frame[TARGET] = np.where(score > 0, "yes", "no")
    return frame


def seed(context: Context, frame: pd.DataFrame, rounds: int, max_depth: int = 6) -> Seeded:
    """A new user and a model trained on `frame`, registered under the name `bench-online`."""
    names = [c for c in frame.columns if c != TARGET]
    spec = TrainSpec("classification", TARGET, names, {"max_depth": max_depth}, rounds)
    result = train(frame, spec)
    packed = bundles.dumps(
        ModelBundle(result.booster, "classification", TARGET, result.features, result.labels)
    )
    key = context.store.new_key("models", ".ubj")
    context.store.put_bytes(key, packed)
    with context.db.session() as session:
        name = f"bench{uuid.uuid4().hex[:8]}"
        created = users.create_user(session, name, f"{name}@example.com")
        model = Model(
            id=new_id(),
            user_id=created.user.id,
            job_id=new_id(),
            name="bench-online",
            task_type="classification",
            target=TARGET,
            features=[f.to_dict() for f in result.features],
            params=result.params,
            metrics=result.metrics,
            history=result.history,
            labels=result.labels.classes if result.labels else None,
            dataset_id=None,
            row_count=len(frame),
            num_boost_round=rounds,
            storage_key=key,
            xgboost_version=xgb.__version__,
        )
        versions.assign_version(session, model)
        session.add(model)
    return Seeded(created.api_key, model.id, bundles.loads(packed), frame)
