"""No name a user chooses ever becomes a storage path (OWASP API8).

Proved elsewhere, not repeated here:
- an upload's file name (`../../escape.csv`): tests/api/test_datasets.py::
  test_file_name_never_becomes_a_path
- the store itself refuses keys with `..`, `/` prefixes, backslashes:
  tests/artifacts/test_store.py::test_unsafe_keys_are_refused
- dashboard static files are looked up in a fixed table: tests/ui/test_dashboard.py::
  test_pages_send_security_headers_and_escape_ids
Here: dataset names, model names and output names full of `../` are stored as data only;
the jobs run in-process (`runner.run`, the worker's own code path) so the files really exist.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.support import auth, classification_frame, create_user, upload
from tests.support.jobs import in_process
from xgenerator.context import Context
from xgenerator.db.tables import Dataset, JobArtifact, Model
from xgenerator.jobs import kinds, runner

HOSTILE = "../../../../tmp/evil-{}"
KEY = re.compile(r"(datasets|models|artifacts|checkpoints)/[0-9a-f]{32}\.[a-z]+")


def everything_under(root: Path) -> list[str]:
    """Every path below root; os.walk skips a directory that another process removes while
    it looks (/tmp is shared with the suite's other processes)."""
    return [os.path.join(d, n) for d, dirs, files in os.walk(root) for n in (*dirs, *files)]


def run_inline(context: Context, job_id: str) -> None:
    kinds.load_all()
    assert runner.run(in_process(context), job_id, "test-worker") == "succeeded"


def test_user_chosen_names_are_data_not_paths(
    client: TestClient, context: Context, tmp_path: Path
) -> None:
    alice = create_user(client)
    dataset_name = HOSTILE.format("dataset")
    uploaded = upload(client, alice, classification_frame(80), name=dataset_name)
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["dataset_name"] == dataset_name
    dataset_id = uploaded.json()["dataset_id"]

    model_name = HOSTILE.format("model")
    trained = client.post(
        "/train",
        headers=auth(alice),
        json={
            "model_name": model_name,
            "dataset_id": dataset_id,
            "task_type": "classification",
            "target": "label",
            "num_boost_round": 3,
            "xgb_params": {"nthread": 1},
        },
    )
    assert trained.status_code == 202, trained.text
    run_inline(context, trained.json()["job_id"])

    output_name = HOSTILE.format("normalized")
    processed = client.post(
        f"/datasets/{dataset_id}/process",
        headers=auth(alice),
        json={"operation": "normalize", "options": {"output_name": output_name}},
    )
    assert processed.status_code == 202, processed.text
    run_inline(context, processed.json()["job_id"])

    with context.db.session() as session:
        names = {row.name: row.storage_key for row in session.scalars(select(Dataset))}
        models = {row.name: row.storage_key for row in session.scalars(select(Model))}
        artifacts = list(session.scalars(select(JobArtifact.storage_key)))
    assert set(names) == {dataset_name, output_name}
    assert set(models) == {model_name}
    for key in [*names.values(), *models.values(), *artifacts]:
        assert KEY.fullmatch(key), key
    # nothing named after a user anywhere: not in the store, the data dir, nor /tmp
    for root in (tmp_path, Path("/tmp")):
        assert not [p for p in everything_under(root) if "evil-" in p and "pytest" not in p]

    model_id = client.get("/models", headers=auth(alice)).json()["models"][0]["model_id"]
    download = client.get(f"/models/{model_id}/download", headers=auth(alice))
    assert download.status_code == 200
    assert download.headers["content-disposition"] == f'attachment; filename="{model_id}.ubj"'


def test_artifact_names_in_urls_are_looked_up_never_opened(
    client: TestClient, context: Context
) -> None:
    alice = create_user(client)
    job = client.post("/jobs/noop", headers=auth(alice)).json()["job_id"]
    for name in ("..%2F..%2Fxgenerator.db", "%2Fetc%2Fpasswd", "..%5C..%5Cx", "~%2F.ssh"):
        response = client.get(f"/jobs/{job}/artifacts/{name}", headers=auth(alice))
        assert response.status_code == 404, (name, response.text)
        assert response.json()["error"] in ("artifact_not_found", "not_found")
    # PostgreSQL cannot even compare text with a NUL byte: a 422, never a 500
    nul = client.get(f"/jobs/{job}/artifacts/report.html%00", headers=auth(alice))
    assert nul.status_code in (404, 422), nul.text
