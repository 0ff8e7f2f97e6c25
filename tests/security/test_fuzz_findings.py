"""What tests/security/test_fuzz.py found, pinned: each was a 500 or a mismatch with the
spec before its fix, and stays a plain, fast test on both databases."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.security.spec import SQLITE_ONLY
from tests.security.world import build
from tests.support import auth, create_user
from xgenerator.context import Context


def test_nul_bytes_are_a_client_error_on_every_database(
    client: TestClient, context: Context
) -> None:
    """PostgreSQL refuses NUL in text, even to compare: it was a 500 (DataError); now the
    session maps it to InvalidInput, 422, and SQLite simply finds nothing."""
    world = build(client, context)
    alice = {"X-API-Key": world.alice["X-API-Key"]}
    job = world.ids["artifact_job_id"]
    for method, url, body in (
        ("GET", f"/jobs/{job}/artifacts/profile.json%00", None),
        ("GET", "/datasets/abc%00def", None),
        ("GET", "/jobs?model_name=a%00b", None),
        ("POST", "/users/me/keys", {"name": "laptop\u0000"}),
        (
            "POST",
            f"/models/{world.ids['model_id']}/feedback",
            {"items": [{"prediction_id": "p\u0000", "actual": "yes"}]},
        ),
    ):
        response = client.request(method, url, headers=alice, json=body)
        assert response.status_code in (200, 201, 404, 422), (url, response.text)
        assert response.status_code < 500


def test_a_huge_offset_is_a_422_not_a_500(client: TestClient) -> None:
    """SQLite binds 64-bit integers only: offset=2**63 was an OverflowError, a 500."""
    alice = create_user(client)
    for path in ("/jobs", "/datasets", "/models"):
        response = client.get(path, params={"offset": 2**63}, headers=auth(alice))
        assert response.status_code == 422, (path, response.text)
        assert client.get(path, params={"offset": 10**9}, headers=auth(alice)).status_code == 200


@SQLITE_ONLY
def test_submit_routes_document_the_idempotent_replay(client: TestClient) -> None:
    """A replay answers 200, which the spec did not say: the fuzzer's ST103."""
    spec = client.app.openapi()  # type: ignore[attr-defined]
    for path, item in spec["paths"].items():
        post = item.get("post", {})
        if "202" in post.get("responses", {}):
            assert "200" in post["responses"], path
            assert "idempotency-key" in {p["name"] for p in post.get("parameters", [])}, path


@SQLITE_ONLY
def test_every_operation_declares_the_one_error_shape(client: TestClient) -> None:
    """FastAPI documents its own 422 body, `{detail: [...]}`, which this app never sends;
    the spec now says what every error really is: ErrorBody, exactly three fields."""
    spec = client.app.openapi()  # type: ignore[attr-defined]
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    error = spec["components"]["schemas"]["ErrorBody"]
    assert set(error["required"]) == {"error", "message", "details"}
    assert error["additionalProperties"] is False
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            for status in ("4XX", "5XX"):
                content = operation["responses"][status]["content"]["application/json"]
                assert content["schema"] == {"$ref": "#/components/schemas/ErrorBody"}, (
                    method,
                    path,
                )
