"""Mass assignment and data exposure (OWASP API3): a client cannot set what it must not, and
no response carries an internal field (storage keys, key hashes, paths, tracebacks)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.security import spec as openapi
from tests.security.calls import BODIES, owner_url
from tests.security.spec import SQLITE_ONLY
from tests.security.world import World, build, snapshot
from tests.support import auth
from xgenerator.api.app import create_app
from xgenerator.context import Context
from xgenerator.db.tables import Dataset, Job
from xgenerator.settings import Settings

# Fields only the service sets. Each is offered with a plausible hostile value.
SERVER_SIDE = {
    "status": "succeeded",
    "attempts": 99,
    "model_uri": "file:///etc/passwd",
    "created_at": "2000-01-01T00:00:00Z",
    "storage_key": "../../../etc/passwd",
    "model_id": "0" * 32,
    "secret_hash": "0" * 64,
}
# Names no response schema may have: where files live, how keys are checked, how code failed.
INTERNAL_FIELDS = {
    "storage_key",
    "storage_url",
    "storage_path",
    "local_path",
    "file_path",
    "path",
    "secret_hash",
    "key_hash",
    "password",
    "request_hash",
    "idempotency_key",
    "lease_expires_at",
    "traceback",
    "stacktrace",
    "stack",
    "exception",
    "database_url",
}

VALID: dict[tuple[str, str], Any] = {
    **BODIES,
    ("POST", "/users"): lambda w, d: {"username": "carol", "email": "carol@example.com"},
}


@pytest.fixture
def world(client: TestClient, context: Context) -> World:
    return build(client, context)


def json_posts(spec: dict[str, Any]) -> list[openapi.Operation]:
    return [
        op
        for op in openapi.operations(spec)
        if op.method == "POST"
        and "application/json" in op.spec.get("requestBody", {}).get("content", {})
    ]


def declared_fields(spec: dict[str, Any], op: openapi.Operation) -> set[str]:
    schema = op.spec["requestBody"]["content"]["application/json"]["schema"]
    return set(openapi.resolve(spec, schema).get("properties", {}))


@SQLITE_ONLY
def test_request_schemas_forbid_unknown_fields(client: TestClient) -> None:
    """Every JSON body object refuses extra fields (schemas derive from `schemas.Request`)."""
    spec = client.app.openapi()  # type: ignore[attr-defined]
    loose = []
    for op, media_type, schema in openapi.request_schemas(spec):
        if media_type != "application/json":
            continue
        for node in openapi.walk(spec, schema):
            if node.get("type") == "object" and "properties" in node:
                if node.get("additionalProperties") is not False:
                    loose.append(f"{op}: {node.get('title')}")
    assert loose == []


def test_server_side_fields_in_a_body_are_refused_and_never_applied(
    client: TestClient, context: Context, world: World
) -> None:
    spec = client.app.openapi()  # type: ignore[attr-defined]
    posts = json_posts(spec)
    assert {op.path for op in posts} >= {"/train", "/users", "/models/{model_id}/predict"}
    alice = auth(world.alice)
    before = snapshot(context)
    for op in posts:
        url = owner_url(op, world)
        valid = VALID[(op.method, op.path)](world, world.ids["dataset_id"])
        hostile = {**SERVER_SIDE, "user_id": world.bob["user_id"]}
        for name, value in hostile.items():
            response = client.post(url, headers=alice, json={**valid, name: value})
            if name in declared_fields(spec, op):  # TrainRequest.user_id: the key's user only
                assert response.status_code == 403, (str(op), name, response.text)
                continue
            assert response.status_code == 422, (str(op), name, response.text)
            problems = response.json()["details"]["errors"]
            assert any(
                p["field"].endswith(f".{name}") and p["type"] == "extra_forbidden" for p in problems
            ), problems
    assert snapshot(context) == before, "a refused request wrote something"
    # nested objects refuse extras too
    nested = client.post(
        f"/datasets/{world.ids['dataset_id']}/process",
        headers=alice,
        json={"operation": "profile", "options": {"top_k": 3, "storage_key": "x"}},
    )
    assert nested.status_code == 422
    assert nested.json()["details"]["errors"][0]["field"].endswith("options.storage_key")


def test_routes_without_a_body_ignore_one(
    client: TestClient, context: Context, world: World
) -> None:
    """POST /jobs/noop, /models/{id}/report, /jobs/{id}/cancel read no body: what a client
    sends there is ignored, never applied."""
    alice = auth(world.alice)
    hostile = {**SERVER_SIDE, "user_id": world.bob["user_id"]}
    started = datetime.now(UTC) - timedelta(minutes=1)
    noop = client.post("/jobs/noop", headers=alice, json=hostile)
    report = client.post(f"/models/{world.ids['model_id']}/report", headers=alice, json=hostile)
    assert (noop.status_code, report.status_code) == (202, 202), (noop.text, report.text)
    with context.db.session() as session:
        for job_id in (noop.json()["job_id"], report.json()["job_id"]):
            job = session.get(Job, job_id)
            assert job is not None
            assert job.user_id == world.alice["user_id"]
            assert (job.status, job.attempts, job.model_id) == ("queued", 0, None)
            assert job.created_at > started
    cancelled = client.post(
        f"/jobs/{world.ids['queued_job_id']}/cancel", headers=alice, json=hostile
    )
    assert cancelled.json()["status"] == "cancelled"
    with context.db.session() as session:
        job = session.get(Job, world.ids["queued_job_id"])
        assert job is not None and job.user_id == world.alice["user_id"]


def test_upload_form_fields_beyond_the_declared_ones_are_ignored(
    client: TestClient, context: Context, world: World
) -> None:
    started = datetime.now(UTC) - timedelta(minutes=1)
    response = client.post(
        "/datasets",
        headers=auth(world.alice),
        data={
            "dataset_name": "d",
            "storage_key": "../../evil.parquet",
            "created_at": "2000-01-01T00:00:00Z",
            "row_count": "999999",
            "size_bytes": "1",
            "status": "succeeded",
        },
        files={"file": ("d.csv", b"a,b\n1,2\n3,4\n", "text/csv")},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["row_count"] == 2 and body["user_id"] == world.alice["user_id"]
    with context.db.session() as session:
        row = session.scalar(select(Dataset).where(Dataset.id == body["dataset_id"]))
        assert row is not None
        assert row.storage_key.startswith("datasets/") and "evil" not in row.storage_key
        assert row.created_at > started and row.size_bytes > 1


@SQLITE_ONLY
def test_no_response_schema_has_an_internal_field(client: TestClient) -> None:
    spec = client.app.openapi()  # type: ignore[attr-defined]
    exposed = sorted(
        {
            f"{op}: {name}"
            for op, schema in openapi.response_schemas(spec)
            for node in openapi.walk(spec, schema)
            for name in node.get("properties", {})
            if name in INTERNAL_FIELDS
        }
    )
    assert exposed == []
    # the check really reads the schemas: these exist and are walked
    names = {
        name
        for _, schema in openapi.response_schemas(spec)
        for node in openapi.walk(spec, schema)
        for name in node.get("properties", {})
    }
    assert {"dataset_id", "prefix", "download_url", "error", "details"} <= names


@SQLITE_ONLY
def test_an_unexpected_error_shows_no_traceback(settings: Settings, context: Context) -> None:
    app = create_app(settings, context)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError(f"secret detail at {context.store.root}/models/x.ubj")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {
        "error": "internal_error",
        "message": "internal server error",
        "details": None,
    }
    assert "secret" not in response.text and "Traceback" not in response.text
    # the headers every other answer carries, though Starlette sends this one itself
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


@SQLITE_ONLY
def test_no_request_takes_a_url_to_fetch(client: TestClient) -> None:
    """OWASP API7 (SSRF): the service never fetches what a client points it at. Datasets
    are uploaded, models are its own files, storage is the operator's: no request field,
    query or header is a URL, and `model_uri` is refused above. The one exception is
    `POST /datasets/register`'s `uri`: off unless the operator lists allowed prefixes, and
    checked against them before anything is read (tests/api/test_dataset_references.py)."""
    spec = client.app.openapi()  # type: ignore[attr-defined]
    urlish = re.compile(r"(url|uri|href|link|endpoint|webhook|callback)s?$", re.IGNORECASE)
    found = [
        f"{op}: {name}"
        for op, _, schema in openapi.request_schemas(spec)
        for node in openapi.walk(spec, schema)
        for name, prop in node.get("properties", {}).items()
        if urlish.search(name) or openapi.resolve(spec, prop).get("format") == "uri"
    ]
    found.remove("POST /datasets/register: uri")
    found += [
        f"{op}: {p['name']}"
        for op in openapi.operations(spec)
        for p in op.spec.get("parameters", [])
        if urlish.search(p["name"])
    ]
    assert found == []
