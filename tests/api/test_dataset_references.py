"""Datasets by reference (POST /datasets/register): allowed prefixes only, nothing read outside
them, training on a folder of Parquet files, and deleting never touching the user's files."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.support import WorkerProcess, auth, classification_frame, create_user
from tests.support.jobs import wait_final
from tests.support.services import make_settings
from xgenerator.api.app import create_app
from xgenerator.context import Context, build_context
from xgenerator.datasets.references import check_location
from xgenerator.datasets.repository import load_frame
from xgenerator.db.tables import Dataset
from xgenerator.errors import Forbidden, InvalidDataset, InvalidInput
from xgenerator.settings import Settings

MARKER = "SECRET_MARKER_COLUMN"


@pytest.fixture
def settings(tmp_path: Path, database_url: str, broker_url: str) -> Settings:
    (tmp_path / "shared").mkdir()
    return make_settings(
        tmp_path, database_url, broker_url, register_allowed_prefixes=str(tmp_path / "shared")
    )


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A valid Parquet file outside the allowed prefix: registering it would succeed if it
    were ever read, and its column name would show in the answer."""
    folder = tmp_path / "secret"
    folder.mkdir()
    pd.DataFrame({MARKER: [1.0, 2.0, 3.0]}).to_parquet(folder / "s.parquet", index=False)
    return folder


def register(client: TestClient, user: dict[str, str], uri: str, name: str = "ref") -> object:
    return client.post(
        "/datasets/register", headers=auth(user), json={"dataset_name": name, "uri": uri}
    )


def dataset_rows(context: Context) -> int:
    with context.db.session() as session:
        return session.scalar(select(func.count()).select_from(Dataset)) or 0


def write_parts(folder: Path, frame: pd.DataFrame, parts: int = 2) -> None:
    folder.mkdir(parents=True)
    size = -(-len(frame) // parts)
    for i in range(parts):
        chunk = frame.iloc[i * size : (i + 1) * size]
        chunk.to_parquet(folder / f"part-{i}.parquet", index=False)


def test_register_a_folder_and_train_on_it(
    client: TestClient, context: Context, worker: WorkerProcess, tmp_path: Path
) -> None:
    frame = classification_frame(400)
    folder = tmp_path / "shared" / "churn"
    write_parts(folder, frame)
    user = create_user(client)
    response = register(client, user, str(folder))
    assert response.status_code == 201, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["row_count"] == 400
    assert body["source_uri"] == f"file://{folder}"
    assert body["original_format"] == "parquet"
    assert [c["name"] for c in body["columns"]] == ["x1", "x2", "color", "label"]
    assert set(body["categorical_features"]) == {"color", "label"}
    assert body["null_counts"]["x2"] == int(frame["x2"].isna().sum())
    # nothing was copied into the store
    assert not list(Path(context.store.root).rglob("*.parquet"))

    accepted = client.post(
        "/train",
        headers=auth(user),
        json={
            "model_name": "by-reference",
            "dataset_id": body["dataset_id"],
            "task_type": "classification",
            "target": "label",
            "num_boost_round": 10,
            "xgb_params": {"max_depth": 3},
        },
    )
    assert accepted.status_code == 202, accepted.text
    job = wait_final(client, user, accepted.json()["job_id"])
    assert job["status"] == "succeeded", job
    model = client.get(f"/models/{job['model_id']}", headers=auth(user)).json()
    assert model["row_count"] == 400
    assert job["result"]["metrics"]["accuracy"] > 0.7

    # batch prediction streams the two files as one dataset
    batch = client.post(
        f"/models/{job['model_id']}/predict-batch",
        headers=auth(user),
        json={"dataset_id": body["dataset_id"]},
    )
    assert batch.status_code == 202, batch.text
    predicted = wait_final(client, user, batch.json()["job_id"])
    assert predicted["status"] == "succeeded", predicted
    output = client.get(f"/datasets/{predicted['result']['dataset_id']}", headers=auth(user)).json()
    assert output["row_count"] == 400
    assert "prediction" in [c["name"] for c in output["columns"]]


def test_deleting_a_reference_keeps_the_users_file(
    client: TestClient, context: Context, tmp_path: Path
) -> None:
    path = tmp_path / "shared" / "one.parquet"
    classification_frame(50).to_parquet(path, index=False)
    user = create_user(client)
    body = register(client, user, f"file://{path}").json()  # type: ignore[attr-defined]
    assert body["row_count"] == 50
    deleted = client.delete(f"/datasets/{body['dataset_id']}", headers=auth(user))
    assert deleted.status_code == 204
    assert dataset_rows(context) == 0
    assert path.exists() and len(pd.read_parquet(path)) == 50


@pytest.mark.parametrize("how", ["outside", "dotdot", "symlinked_folder", "symlinked_file"])
def test_locations_outside_the_prefix_are_refused_unread(
    client: TestClient, context: Context, tmp_path: Path, secret: Path, how: str
) -> None:
    shared = tmp_path / "shared"
    if how == "outside":
        uri = str(secret)
    elif how == "dotdot":
        uri = f"{shared}/../secret"
    elif how == "symlinked_folder":
        os.symlink(secret, shared / "link")
        uri = str(shared / "link")
    else:  # a folder under the prefix holding a link to a file outside it
        (shared / "mixed").mkdir()
        classification_frame(20).to_parquet(shared / "mixed" / "ok.parquet", index=False)
        os.symlink(secret / "s.parquet", shared / "mixed" / "z.parquet")
        uri = str(shared / "mixed")
    user = create_user(client)
    response = register(client, user, uri)
    assert response.status_code == 403, response.text  # type: ignore[attr-defined]
    assert MARKER not in response.text  # type: ignore[attr-defined]
    assert response.json()["error"] == "forbidden"  # type: ignore[attr-defined]
    assert dataset_rows(context) == 0


def test_registration_is_off_by_default(
    tmp_path: Path, database_url: str, broker_url: str, secret: Path
) -> None:
    assert Settings().register_allowed_prefixes == ""
    off = make_settings(tmp_path, database_url, broker_url)
    context = build_context(off)
    try:
        with TestClient(create_app(off, context)) as client:
            user = create_user(client)
            response = register(client, user, str(secret))
            assert response.status_code == 403  # type: ignore[attr-defined]
            assert "registration is off" in response.json()["message"]  # type: ignore[attr-defined]
            assert MARKER not in response.text  # type: ignore[attr-defined]
    finally:
        context.close()


def test_prefixes_match_whole_folders_and_schemes() -> None:
    allowed = ["s3://bucket/data/", "/srv/shared"]
    assert check_location("s3://bucket/data/x.parquet", allowed).uri == "s3://bucket/data/x.parquet"
    assert check_location("s3://bucket//data/./y", allowed).path == "bucket/data/y"
    for refused in ("s3://bucket/data2/x", "s3://other/data/x", "/srv/sharedX", "/srv"):
        with pytest.raises(Forbidden):
            check_location(refused, allowed)
    with pytest.raises(Forbidden):
        check_location("s3://bucket/data/../private/x", allowed)
    for invalid in ("http://bucket/data", "relative/path", "s3://"):
        with pytest.raises(InvalidInput):
            check_location(invalid, allowed)


def test_files_changed_after_registration_are_refused(
    client: TestClient, context: Context, tmp_path: Path
) -> None:
    """A job reads only what was registered: a file added since (it could be a symlink to
    anywhere) changes the fingerprint, and the read is refused."""
    folder = tmp_path / "shared" / "grows"
    write_parts(folder, classification_frame(60))
    user = create_user(client)
    body = register(client, user, str(folder)).json()  # type: ignore[attr-defined]
    with context.db.session() as session:
        row = session.get(Dataset, body["dataset_id"])
    assert row is not None
    assert len(load_frame(context.store, row)) == 60
    classification_frame(10).to_parquet(folder / "part-9.parquet", index=False)
    with pytest.raises(InvalidDataset) as caught:
        load_frame(context.store, row)
    assert caught.value.details == {"reason": "reference_changed", "uri": f"file://{folder}"}
