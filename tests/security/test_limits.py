"""Resource limits (OWASP API4) that no other test file already proves.

Proved elsewhere, not repeated here:
- upload over the limit, with Content-Length or chunked: tests/api/test_datasets.py::
  test_upload_over_the_limit_is_413_and_leaves_nothing and
  test_upload_limit_applies_to_chunked_bodies
- rows and columns: tests/ops/test_limits.py::test_dataset_shape_limits and
  tests/datasets/test_ingest.py::test_bad_uploads_are_rejected
- num_boost_round and max_depth on POST /train: tests/ops/test_limits.py::test_training_ceilings
- concurrent jobs per user: tests/ops/test_limits.py::test_active_job_quota and
  test_quota_holds_under_concurrent_submissions
- request rates per key: the rest of tests/ops/test_limits.py
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient

from tests.security import spec as openapi
from tests.security.spec import SQLITE_ONLY
from tests.security.world import ROWS, trained_model
from tests.support import auth, classification_frame, create_user, upload
from tests.support.services import make_settings
from xgenerator.api.app import create_app
from xgenerator.context import Context, build_context

# Routes answering a list without a `limit` parameter, and what bounds them instead.
BOUNDED_LISTS = {
    "/users/me/keys": "at most max_keys_per_user live keys (tests/security/test_keys.py)"
}
MAX_PAGE = 100


@pytest.fixture
def tight(
    tmp_path: Path, database_url: str, broker_url: str
) -> Iterator[tuple[TestClient, Context]]:
    """An API whose limits are small enough to cross cheaply."""
    settings = make_settings(
        tmp_path,
        database_url,
        broker_url,
        max_body_mb=0.05,  # 51 KiB of JSON
        max_upload_mb=0.1,
        max_predict_rows=5,
        max_num_boost_round=10,
        max_depth_limit=4,
    )
    context = build_context(settings)
    try:
        with TestClient(create_app(settings, context)) as client:
            yield client, context
    finally:
        context.close()


def asgi_post(app: Any, path: str, length: int) -> tuple[int, dict[str, Any], int]:
    """POST straight into the ASGI app announcing `length` bytes; returns the status, the
    JSON body and how many times the app asked for the request body."""
    reads = 0
    answer: dict[str, Any] = {"status": 0, "body": b""}

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"x" * 1024, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"multipart/form-data; boundary=x"),
            (b"content-length", str(length).encode()),
        ],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
        "state": {},
    }
    anyio.run(app, scope, receive, send)
    return answer["status"], json.loads(answer["body"]), reads


def test_oversized_bodies_are_refused_before_a_byte_is_read(
    tight: tuple[TestClient, Context],
) -> None:
    client, context = tight
    app = client.app
    settings = context.settings
    for path, limit in (
        ("/datasets", settings.max_upload_bytes),
        ("/models/any/predict", int(settings.max_body_mb * 1024 * 1024)),
        ("/train", int(settings.max_body_mb * 1024 * 1024)),
    ):
        status, body, reads = asgi_post(app, path, 10 * limit)
        assert status == 413, (path, body)
        assert body["error"] == "payload_too_large"
        assert reads == 0, f"{path}: the body was read before the 413"


def test_predict_body_size_and_row_limits(tight: tuple[TestClient, Context]) -> None:
    client, context = tight
    alice = create_user(client)
    _, model_id = trained_model(context, alice["user_id"], None)
    url = f"/models/{model_id}/predict"
    assert client.post(url, headers=auth(alice), json={"rows": ROWS}).status_code == 200
    too_many = client.post(url, headers=auth(alice), json={"rows": ROWS * 3})  # 6 > 5 rows
    assert too_many.status_code == 413
    assert too_many.json()["details"] == {"limit": 5, "rows": 6}
    padded = [{**ROWS[0], "note": "x" * 20_000} for _ in range(4)]  # 4 rows, ~80 KB
    too_big = client.post(url, headers=auth(alice), json={"rows": padded})
    assert too_big.status_code == 413
    assert too_big.json()["details"] == {"limit_bytes": int(0.05 * 1024 * 1024)}

    def chunks() -> Iterator[bytes]:  # no Content-Length: cut off while streaming
        yield b'{"rows": ['
        for _ in range(10):
            yield json.dumps({**ROWS[0], "note": "y" * 10_000}).encode() + b","
        yield json.dumps(ROWS[0]).encode() + b"]}"

    streamed = client.post(
        url, headers={**auth(alice), "Content-Type": "application/json"}, content=chunks()
    )
    assert streamed.status_code == 413
    assert streamed.json()["error"] == "payload_too_large"


def test_retrain_has_the_training_ceilings(tight: tuple[TestClient, Context]) -> None:
    """POST /train's ceilings (tests/ops/test_limits.py) hold on POST /models/{id}/retrain,
    including for the params a retrain inherits from its parent."""
    client, context = tight
    alice = create_user(client)
    dataset_id = upload(client, alice, classification_frame(60)).json()["dataset_id"]
    _, model_id = trained_model(context, alice["user_id"], dataset_id)
    url = f"/models/{model_id}/retrain"

    def retrain(**body: Any) -> Any:
        return client.post(url, headers=auth(alice), json={"dataset_id": dataset_id, **body})

    rounds = retrain(num_boost_round=11)
    assert rounds.status_code == 422 and rounds.json()["details"] == {"limit": 10}
    depth = retrain(xgb_params={"max_depth": 5})
    assert depth.status_code == 422 and "max_depth" in depth.json()["details"]["errors"]
    assert retrain(num_boost_round=10, xgb_params={"max_depth": 4}).status_code == 202


@SQLITE_ONLY
def test_every_list_route_caps_its_page_size(client: TestClient) -> None:
    """Generated from the spec: every list takes `limit` (at most 100; 101 is a 422), or is
    bounded otherwise and says how in BOUNDED_LISTS."""
    spec = client.app.openapi()  # type: ignore[attr-defined]
    alice = create_user(client)
    paged = []
    for op in openapi.operations(spec):
        if op.method != "GET" or op.path_params or op.public:
            continue
        schema = openapi.resolve(
            spec, op.spec["responses"]["200"]["content"]["application/json"]["schema"]
        )
        is_list = schema.get("type") == "array" or any(
            openapi.resolve(spec, p).get("type") == "array"
            for p in schema.get("properties", {}).values()
        )
        if not is_list:
            continue
        if "limit" not in op.query_params:
            assert op.path in BOUNDED_LISTS, f"{op}: a list without `limit`"
            continue
        assert op.query_params["limit"]["schema"]["maximum"] <= MAX_PAGE, str(op)
        paged.append(op.path)
        for value, status in (("101", 422), ("0", 422), ("-1", 422), ("100", 200), ("1", 200)):
            response = client.get(op.path, params={"limit": value}, headers=auth(alice))
            assert response.status_code == status, (str(op), value, response.text)
        assert client.get(op.path, params={"offset": -1}, headers=auth(alice)).status_code == 422
    assert set(paged) >= {"/jobs", "/datasets", "/models"}
