"""`Client`: the XGenerator API from Python, over httpx.

client = Client("http://127.0.0.1:8000", api_key)
dataset = client.datasets.upload("churn.csv")
job = client.train(dataset, target="churned", model_name="churn")
job.wait()                      # a progress bar; raises JobFailed / JobCancelled
client.models.predict(job.info.model_id, frame)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import httpx

import xgenerator
from xgenerator.client import errors
from xgenerator.client.job import Job
from xgenerator.client.registry import RegisteredModels
from xgenerator.client.resources import Datasets, Jobs, Models, Rows
from xgenerator.client.types import Dataset, NewUser, Prediction, User

if TYPE_CHECKING:
    import pandas as pd


class Client:
    """One API key on one server. Use as a context manager, or call `close()`."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"User-Agent": f"xgenerator-client/{xgenerator.__version__}"}
        if api_key:
            headers["X-API-Key"] = api_key
        self.http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )
        self.datasets = Datasets(self)
        self.jobs = Jobs(self)
        self.models = Models(self)
        self.registered_models = RegisteredModels(self)

    @classmethod
    def create_user(cls, base_url: str, username: str, email: str) -> NewUser:
        """Register a user; the returned `api_key` is shown only this once."""
        with cls(base_url) as anonymous:
            body = anonymous.request("POST", "/users", json={"username": username, "email": email})
        return NewUser.model_validate(body)

    def me(self) -> User:
        return User.model_validate(self.request("GET", "/users/me"))

    def train(
        self,
        dataset: str | Dataset,
        target: str,
        *,
        model_name: str,
        task_type: Literal["classification", "regression", "ranking", "survival"] = (
            "classification"
        ),
        num_boost_round: int = 100,
        xgb_params: Mapping[str, Any] | None = None,
        features: Sequence[str] | None = None,
        exclude_features: Sequence[str] | None = None,
        early_stopping_rounds: int | None = None,
        test_size: float = 0.2,
        eval_every: int | None = None,
        eval_train_every: int | None = None,
        weight_column: str | None = None,
        group_column: str | None = None,
        event_column: str | None = None,
        rank_k: int | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """Submit a training job; it runs on a worker. `Job.wait()` follows it.

        `weight_column`: sample weights; `group_column` (ranking): query ids; `event_column`
        (survival, `target` the time): 1 observed, 0 censored; `rank_k`: k of ndcg@k, map@k.
        Quantile regression and constraints go in `xgb_params` (see the README)."""
        body: dict[str, Any] = {
            "dataset_id": dataset if isinstance(dataset, str) else dataset.dataset_id,
            "target": target,
            "model_name": model_name,
            "task_type": task_type,
            "num_boost_round": num_boost_round,
            "xgb_params": dict(xgb_params or {}),
            "test_size": test_size,
        }
        if features is not None:
            body["features"] = list(features)
        if exclude_features is not None:
            body["exclude_features"] = list(exclude_features)
        if early_stopping_rounds is not None:
            body["early_stopping_rounds"] = early_stopping_rounds
        if eval_every is not None:
            body["eval_every"] = eval_every
        if eval_train_every is not None:
            body["eval_train_every"] = eval_train_every
        roles = {
            "weight_column": weight_column,
            "group_column": group_column,
            "event_column": event_column,
            "rank_k": rank_k,
        }
        body.update({k: v for k, v in roles.items() if v is not None})
        return self._submit("/train", body, idempotency_key)

    def cv(
        self,
        dataset: str | Dataset,
        target: str,
        *,
        model_name: str,
        folds: int = 5,
        refit: bool = False,
        task_type: Literal["classification", "regression"] = "classification",
        num_boost_round: int = 100,
        xgb_params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        **train_fields: Any,
    ) -> Job:
        """Submit a k-fold cross-validation job. Any other /train field (features,
        early_stopping_rounds, ...) goes in `train_fields`. The job's result has `history`
        (per round, each metric's fold mean and std), `best_round` and, with `refit`, the
        `model_id` of a model trained on every row for that many rounds."""
        body: dict[str, Any] = {
            "dataset_id": dataset if isinstance(dataset, str) else dataset.dataset_id,
            "target": target,
            "model_name": model_name,
            "task_type": task_type,
            "num_boost_round": num_boost_round,
            "xgb_params": dict(xgb_params or {}),
            "folds": folds,
            "refit": refit,
            **{k: v for k, v in train_fields.items() if v is not None},
        }
        return self._submit("/cv", body, idempotency_key)

    def tune(
        self,
        dataset: str | Dataset,
        target: str,
        *,
        model_name: str,
        search_space: Mapping[str, Mapping[str, Any]],
        max_trials: int = 20,
        max_parallel: int = 1,
        strategy: Literal["tpe", "random", "grid"] = "tpe",
        metric: str | None = None,
        direction: Literal["minimize", "maximize"] | None = None,
        task_type: Literal["classification", "regression", "ranking", "survival"] = (
            "classification"
        ),
        num_boost_round: int = 100,
        xgb_params: Mapping[str, Any] | None = None,
        **search_fields: Any,
    ) -> Job:
        """Submit a hyper-parameter search (a `tune` job whose trials are `train` jobs).
        `search_space`: `{param: {"type": "float" | "int" | "categorical", "low", "high",
        "log", "step", "choices"}}`; other /train and search fields (`timeout_s`, `seed`,
        `prune`, ...) go in `search_fields`. `Job.wait()` follows the search; its `model_id`
        is the best trial's model, `trials(job_id)` the leaderboard."""
        body: dict[str, Any] = {
            "dataset_id": dataset if isinstance(dataset, str) else dataset.dataset_id,
            "target": target,
            "model_name": model_name,
            "task_type": task_type,
            "num_boost_round": num_boost_round,
            "xgb_params": dict(xgb_params or {}),
            "search_space": {k: dict(v) for k, v in search_space.items()},
            "max_trials": max_trials,
            "max_parallel": max_parallel,
            "strategy": strategy,
            "metric": metric,
            "direction": direction,
            **{k: v for k, v in search_fields.items() if v is not None},
        }
        return self._submit("/tune", body)

    def trials(self, job_id: str) -> dict[str, Any]:
        """A search's leaderboard: trials best first, counts by state, the best so far."""
        board: dict[str, Any] = self.request("GET", f"/jobs/{job_id}/trials")
        return board

    def predict(
        self,
        model_id: str,
        rows: Rows | pd.DataFrame,
        *,
        explain: bool = False,
        output: str | None = None,
        extra_columns: str = "ignore",
    ) -> Prediction:
        return self.models.predict(
            model_id, rows, explain=explain, output=output, extra_columns=extra_columns
        )

    def _submit(self, path: str, body: dict[str, Any], idempotency_key: str | None = None) -> Job:
        """POST a job-submitting route; the job it created (or replayed, for the same key)."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        accepted = self.request("POST", path, json=body, headers=headers)
        return self.jobs.get(accepted["job_id"])

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request; the JSON body of a success (None when empty), or an ApiError."""
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise errors.ConnectionFailed(f"{self.base_url}: {exc}") from exc
        if response.status_code >= 400:
            raise errors.from_response(response)
        return response.json() if response.content else None

    def download(self, path: str, target: str | Path) -> Path:
        """Stream a file the API serves (a model, a report, a job's file) to `target`."""
        destination = Path(target)
        try:
            with self.http.stream("GET", path) as response:
                if response.status_code >= 400:
                    response.read()
                    raise errors.from_response(response)
                with destination.open("wb") as out:
                    for chunk in response.iter_bytes():
                        out.write(chunk)
        except httpx.TransportError as exc:
            raise errors.ConnectionFailed(f"{self.base_url}: {exc}") from exc
        return destination

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
