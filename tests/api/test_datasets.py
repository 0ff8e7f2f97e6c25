from __future__ import annotations

import io
import pickle
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.support import auth, classification_frame, create_user, upload
from xgenerator.context import Context
from xgenerator.db.tables import Dataset


def stored_files(context: Context) -> list[Path]:
    root = Path(context.store.root)
    return [p for p in root.rglob("*") if p.is_file()]


def dataset_rows(context: Context) -> int:
    with context.db.session() as session:
        return session.scalar(select(func.count()).select_from(Dataset)) or 0


def test_csv_upload_infers_the_schema(client: TestClient, context: Context) -> None:
    user = create_user(client)
    csv = (
        b"age,city,income,member,label\n31,paris,1200.5,true,yes\n,oslo,,false,no\n"
        b'45,"rome, italy",3000,true,yes\n'
    )
    response = upload(client, user, csv, name="customers")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["dataset_name"] == "customers"
    assert body["row_count"] == 3
    assert body["column_count"] == 5
    assert body["original_format"] == "csv"
    assert [c["name"] for c in body["columns"]] == ["age", "city", "income", "member", "label"]
    assert set(body["numeric_features"]) == {"age", "income", "member"}
    assert set(body["categorical_features"]) == {"city", "label"}
    assert body["null_counts"] == {"age": 1, "city": 0, "income": 1, "member": 0, "label": 0}
    assert "storage_key" not in body

    listed = client.get("/datasets", headers=auth(user)).json()
    assert listed["total"] == 1
    assert listed["datasets"][0]["dataset_id"] == body["dataset_id"]
    got = client.get(f"/datasets/{body['dataset_id']}", headers=auth(user))
    assert got.json() == body


def test_parquet_upload(client: TestClient) -> None:
    user = create_user(client)
    frame = classification_frame(50)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    response = upload(client, user, buffer.getvalue(), filename="d.parquet")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["original_format"] == "parquet"
    assert body["row_count"] == 50
    assert body["null_counts"]["x2"] == int(frame["x2"].isna().sum())
    assert set(body["categorical_features"]) == {"color", "label"}


class Marker:
    """Unpickling this would create a file: proof that nothing is ever unpickled."""

    path = ""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (Path.touch, (self.path,))


BAD_FILES = {
    "empty": b"",
    "no_header": b"1,2,3\n4,5,6\n",
    "duplicate_columns": b"a,b,a\n1,2,3\n",
    "ragged_rows": b"a,b,c\n1,2,3\n4,5\n",
    "not_utf8": "a,b\ncaf\u00e9,1\n".encode("latin-1"),
    "no_rows": b"a,b,c\n",
    "binary": b"\x00\x01\x02\x03" * 100,
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files_are_422_and_leave_nothing(
    client: TestClient, context: Context, case: str
) -> None:
    user = create_user(client)
    response = upload(client, user, BAD_FILES[case])
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_dataset"
    assert body["message"]
    assert dataset_rows(context) == 0
    assert stored_files(context) == []


def test_a_pickle_is_refused_and_never_loaded(
    client: TestClient, context: Context, tmp_path: Path
) -> None:
    marker = tmp_path / "unpickled"
    payload = Marker()
    payload.path = str(marker)
    response = upload(client, create_user(client), pickle.dumps(payload), filename="x.pkl")
    assert response.status_code == 422
    assert not marker.exists()
    assert dataset_rows(context) == 0


def test_upload_over_the_limit_is_413_and_leaves_nothing(
    client: TestClient, context: Context
) -> None:
    user = create_user(client)
    big = b"a,b\n" + b"1,2\n" * (6 * 1024 * 1024 // 4)  # > 5 MB test limit
    response = upload(client, user, big)
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert dataset_rows(context) == 0
    assert stored_files(context) == []


def test_upload_limit_applies_to_chunked_bodies(client: TestClient, context: Context) -> None:
    user = create_user(client)
    boundary = "xgenboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="dataset_name"\r\n\r\nd\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="d.csv"\r\nContent-Type: text/csv\r\n\r\na,b\r\n'
    ).encode()

    def body() -> Iterator[bytes]:
        yield head
        for _ in range(7):
            yield b"1,2\n" * (256 * 1024)  # 1 MiB per chunk, no Content-Length
        yield f"\r\n--{boundary}--\r\n".encode()

    response = client.post(
        "/datasets",
        headers={**auth(user), "Content-Type": f"multipart/form-data; boundary={boundary}"},
        content=body(),
    )
    assert response.status_code == 413
    assert dataset_rows(context) == 0


def test_user_id_field_must_be_the_keys_user(client: TestClient) -> None:
    alice = create_user(client, "alice")
    bob = create_user(client, "bob")
    response = client.post(
        "/datasets",
        headers=auth(alice),
        data={"dataset_name": "d", "user_id": bob["user_id"]},
        files={"file": ("d.csv", b"a,b\n1,2\n", "text/csv")},
    )
    assert response.status_code == 403
    ok = client.post(
        "/datasets",
        headers=auth(alice),
        data={"dataset_name": "d", "user_id": alice["user_id"]},
        files={"file": ("d.csv", b"a,b\n1,2\n", "text/csv")},
    )
    assert ok.status_code == 201


def test_file_name_never_becomes_a_path(client: TestClient, context: Context) -> None:
    user = create_user(client)
    response = upload(client, user, b"a,b\n1,2\n", filename="../../escape.csv")
    assert response.status_code == 201
    assert not any("escape" in str(p) for p in stored_files(context))
    assert not (Path(context.store.root).parent.parent / "escape.csv").exists()


def test_another_users_dataset_is_404_on_get_and_delete(
    client: TestClient, context: Context
) -> None:
    alice = create_user(client, "alice")
    bob = create_user(client, "bob")
    dataset_id = upload(client, alice, b"a,b\n1,2\n").json()["dataset_id"]
    assert client.get(f"/datasets/{dataset_id}", headers=auth(bob)).status_code == 404
    deleted = client.delete(f"/datasets/{dataset_id}", headers=auth(bob))
    assert deleted.status_code == 404
    assert deleted.json()["error"] == "dataset_not_found"
    assert client.get("/datasets", headers=auth(bob)).json()["total"] == 0
    assert client.get(f"/datasets/{dataset_id}", headers=auth(alice)).status_code == 200


def test_delete_removes_row_and_file(client: TestClient, context: Context) -> None:
    user = create_user(client)
    dataset_id = upload(client, user, b"a,b\n1,2\n").json()["dataset_id"]
    assert len(stored_files(context)) == 1
    assert client.delete(f"/datasets/{dataset_id}", headers=auth(user)).status_code == 204
    assert client.get(f"/datasets/{dataset_id}", headers=auth(user)).status_code == 404
    assert stored_files(context) == []


def test_listing_is_paginated(client: TestClient) -> None:
    user = create_user(client)
    for i in range(3):
        assert upload(client, user, b"a,b\n1,2\n", name=f"d{i}").status_code == 201
    page = client.get("/datasets?limit=2&offset=1", headers=auth(user)).json()
    assert page["total"] == 3 and page["limit"] == 2 and page["offset"] == 1
    assert [d["dataset_name"] for d in page["datasets"]] == ["d1", "d0"]
    assert client.get("/datasets?limit=0", headers=auth(user)).status_code == 422


def test_the_stored_parquet_has_the_uploaded_values(client: TestClient, context: Context) -> None:
    user = create_user(client)
    frame = pd.DataFrame({"n": [1.5, None, 3.0], "s": ["a", "b", None]})
    upload(client, user, frame)
    files = stored_files(context)
    assert len(files) == 1
    back = pd.read_parquet(files[0])
    assert back["n"].isna().tolist() == [False, True, False]
    assert back["s"].tolist()[:2] == ["a", "b"]
