"""The collections of the API: `client.datasets`, `client.jobs`, `client.models`."""

from __future__ import annotations

import builtins
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xgenerator.client.job import Job
from xgenerator.client.progress import UploadProgress
from xgenerator.client.types import Dataset, JobInfo, Model, Prediction

if TYPE_CHECKING:
    import pandas as pd

    from xgenerator.client.core import Client

Rows = Sequence[Mapping[str, Any]]
# Uploads this large get a progress bar unless the caller says otherwise.
UPLOAD_BAR_BYTES = 8 * 1024 * 1024


class Datasets:
    def __init__(self, client: Client) -> None:
        self.client = client

    def upload(
        self,
        data: str | Path | pd.DataFrame,
        name: str | None = None,
        *,
        progress: bool | None = None,
    ) -> Dataset:
        """Upload a CSV or Parquet file, or a DataFrame (sent as Parquet, types intact).
        A progress bar shows for large files unless `progress=False`."""
        if isinstance(data, str | Path):
            path = Path(data)
            size = path.stat().st_size
            show = progress if progress is not None else size >= UPLOAD_BAR_BYTES
            with path.open("rb") as handle:
                if not show:
                    return self._send(name or path.stem, path.name, handle)
                with UploadProgress(handle, size, path.name) as wrapped:
                    return self._send(name or path.stem, path.name, wrapped)
        buffer = io.BytesIO()
        data.to_parquet(buffer, index=False)
        buffer.seek(0)
        return self._send(name or "dataframe", "data.parquet", buffer)

    def _send(self, name: str, filename: str, handle: Any) -> Dataset:
        body = self.client.request(
            "POST", "/datasets", data={"dataset_name": name}, files={"file": (filename, handle)}
        )
        return Dataset.model_validate(body)

    def list(self, limit: int = 50, offset: int = 0) -> builtins.list[Dataset]:
        body = self.client.request("GET", "/datasets", params={"limit": limit, "offset": offset})
        return [Dataset.model_validate(d) for d in body["datasets"]]

    def get(self, dataset_id: str) -> Dataset:
        return Dataset.model_validate(self.client.request("GET", f"/datasets/{dataset_id}"))

    def delete(self, dataset_id: str) -> None:
        self.client.request("DELETE", f"/datasets/{dataset_id}")


class Jobs:
    def __init__(self, client: Client) -> None:
        self.client = client

    def list(
        self,
        status: str | None = None,
        job_type: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> builtins.list[Job]:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        params |= {k: v for k, v in (("status", status), ("job_type", job_type)) if v}
        body = self.client.request("GET", "/jobs", params=params)
        return [Job(self.client, JobInfo.model_validate(j)) for j in body["jobs"]]

    def get(self, job_id: str) -> Job:
        return Job(
            self.client, JobInfo.model_validate(self.client.request("GET", f"/jobs/{job_id}"))
        )


class Models:
    def __init__(self, client: Client) -> None:
        self.client = client

    def list(
        self, name: str | None = None, limit: int = 50, offset: int = 0
    ) -> builtins.list[Model]:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if name:
            params["name"] = name
        body = self.client.request("GET", "/models", params=params)
        return [Model.model_validate(m) for m in body["models"]]

    def get(self, model_id: str) -> Model:
        return Model.model_validate(self.client.request("GET", f"/models/{model_id}"))

    def download(self, model_id: str, path: str | Path) -> Path:
        """Save the booster (XGBoost UBJSON; `xgboost.Booster(model_file=path)` loads it)."""
        return self.client.download(f"/models/{model_id}/download", path)

    def predict_batch(
        self,
        model_id: str,
        dataset: str | Dataset,
        output_name: str | None = None,
        *,
        explain: bool = False,
    ) -> Job:
        """Predict a whole dataset on a worker; the predictions become a new dataset (its id
        in `job.result().result["dataset_id"]`) and a Parquet file of the job. With `explain`,
        `contribution_<column>` and `contribution_bias` columns too."""
        body: dict[str, Any] = {"dataset_id": _dataset_id(dataset)}
        if output_name:
            body["output_name"] = output_name
        if explain:
            body["explain"] = True
        accepted = self.client.request("POST", f"/models/{model_id}/predict-batch", json=body)
        return self.client.jobs.get(accepted["job_id"])

    def report(self, model_id: str) -> Job:
        """Build the model's HTML report on a worker; `download_report` fetches it."""
        accepted = self.client.request("POST", f"/models/{model_id}/report")
        return self.client.jobs.get(accepted["job_id"])

    def download_report(self, model_id: str, path: str | Path) -> Path:
        return self.client.download(f"/models/{model_id}/report", path)

    def predict(
        self,
        model_id: str,
        rows: Rows | pd.DataFrame,
        *,
        explain: bool = False,
        output: str | None = None,
        extra_columns: str = "ignore",
    ) -> Prediction:
        """Predict for a few rows: dicts of {column: value}, or a DataFrame. With `explain`,
        `Prediction.contributions` holds each row's SHAP contributions (they add up to the
        margin with the `bias`). `output` ("label", "probability", "margin",
        "contributions") says what `predictions` holds; columns the model does not use are
        listed in `Prediction.ignored_columns`, or refused with `extra_columns="error"`."""
        records = rows if isinstance(rows, Sequence) else frame_records(rows)
        payload: dict[str, Any] = {"rows": [dict(r) for r in records]}
        if explain:
            payload["explain"] = True
        if output is not None:
            payload["output"] = output
        if extra_columns != "ignore":
            payload["extra_columns"] = extra_columns
        body = self.client.request("POST", f"/models/{model_id}/predict", json=payload)
        return Prediction.model_validate(body)

    def importance(self, model_id: str, type: str = "gain") -> dict[str, float]:
        """{column: importance}, largest first. `type`: gain, total_gain, weight, cover,
        total_cover (XGBoost's split statistics) or shap (mean |contribution| over a sample
        of the training rows, computed just after the model was trained)."""
        body = self.client.request("GET", f"/models/{model_id}/importance", params={"type": type})
        return {item["feature"]: float(item["value"]) for item in body["importance"]}

    def delete(self, model_id: str) -> None:
        self.client.request("DELETE", f"/models/{model_id}")


def _dataset_id(dataset: str | Dataset) -> str:
    return dataset if isinstance(dataset, str) else dataset.dataset_id


def frame_records(frame: pd.DataFrame) -> builtins.list[dict[str, Any]]:
    """Rows as JSON-ready dicts: NaN becomes null, timestamps ISO strings."""
    records: builtins.list[dict[str, Any]] = json.loads(
        frame.to_json(orient="records", date_format="iso")
    )
    return records
