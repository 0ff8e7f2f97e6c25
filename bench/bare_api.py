"""The bare baseline for HTTP: FastAPI routes doing the least their service twin must do.

Served by uvicorn exactly as `xgenerator api` is served (one process, uvicorn's defaults), so the
ratio isolates what XGenerator does per request: authentication, validation, transactions.
"""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any

import pandas as pd
import redis
import xgboost as xgb
from fastapi import FastAPI, Request, Response

from bench import REDIS_URL

app = FastAPI()
client = redis.Redis.from_url(REDIS_URL)


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/constant")
async def constant(request: Request) -> Response:
    """The HTTP floor of a prediction: the body read, a constant answered (no parsing, no
    model, no thread pool)."""
    await request.body()
    return Response(b'{"predictions":[0.5]}', media_type="application/json")


@app.post("/push", status_code=202)
def push(body: dict[str, Any]) -> dict[str, str]:
    """Twin of `POST /train`: take the JSON, push it onto a Redis list."""
    client.lpush("bare-submissions", json.dumps(body))
    return {"status": "queued"}


@app.get("/items/{key}")
def get_item(key: str) -> dict[str, Any]:
    """Twin of `GET /jobs/{id}`: one Redis read."""
    raw = client.get(f"bare-item:{key}")
    return {"key": key, "value": json.loads(raw) if raw else None}


@cache
def model() -> tuple[xgb.Booster, dict[str, list[str]]]:
    """The booster and the categories of its categorical features, from the files the
    benchmark downloaded from the service (`BENCH_MODEL_PATH`, `BENCH_CATEGORIES_PATH`)."""
    booster = xgb.Booster(model_file=os.environ["BENCH_MODEL_PATH"])
    with open(os.environ["BENCH_CATEGORIES_PATH"]) as handle:
        categories: dict[str, list[str]] = json.load(handle)
    return booster, categories


@app.post("/predict")
def predict(body: dict[str, list[dict[str, Any]]]) -> dict[str, list[float]]:
    """Twin of `POST /models/{id}/predict`: records to a frame, `inplace_predict`."""
    booster, categories = model()
    frame = pd.DataFrame(body["rows"], columns=list(booster.feature_names or []))
    for name, levels in categories.items():
        frame[name] = pd.Categorical(frame[name], categories=levels)
    numeric = [c for c in frame.columns if c not in categories]
    frame[numeric] = frame[numeric].astype("float32")
    return {"predictions": booster.inplace_predict(frame).tolist()}
