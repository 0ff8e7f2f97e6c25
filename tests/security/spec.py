"""Reading the app's own OpenAPI spec: its operations, and walking schemas through $refs.

The security tests are generated from this list, so a route added tomorrow is attacked
tomorrow without anyone editing them (or fails them, when they cannot tell how to call it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

METHODS = ("get", "post", "put", "patch", "delete")
# For tests of the spec itself, which does not depend on the database: run them once.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

# Routes that answer without a user's API key, each with the reason. Anything else in the
# spec must refuse a request without a valid key.
PUBLIC = {
    ("GET", "/health"): "liveness probe; touches no data",
    ("POST", "/users"): "sign-up: creates a user and returns its first key",
    ("GET", "/status"): "operator endpoint: needs an admin key (X-Admin-Key), not a user key",
    ("GET", "/metrics"): "operator endpoint: needs an admin key (X-Admin-Key), not a user key",
}
# Routes kept out of the spec on purpose: dashboard page shells and their static files hold
# no user data (the browser fetches the data from the API with its key).
UNLISTED = {
    "/ui",
    "/ui/jobs/{job_id}",
    "/ui/models",
    "/ui/models/{model_id}",
    "/ui/datasets",
    "/ui/datasets/{dataset_id}",
    "/ui/static/{name}",
}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    spec: dict[str, Any]

    @property
    def path_params(self) -> list[str]:
        return [p["name"] for p in self.spec.get("parameters", []) if p["in"] == "path"]

    @property
    def query_params(self) -> dict[str, dict[str, Any]]:
        return {p["name"]: p for p in self.spec.get("parameters", []) if p["in"] == "query"}

    @property
    def has_body(self) -> bool:
        return "requestBody" in self.spec

    @property
    def public(self) -> bool:
        return (self.method, self.path) in PUBLIC

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def operations(spec: dict[str, Any]) -> list[Operation]:
    return [
        Operation(method.upper(), path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def unlisted_routes(app: FastAPI, spec: dict[str, Any]) -> list[str]:
    """API routes missing from the spec and from the UNLISTED allow-list."""
    return sorted(
        route.path
        for route in app.routes
        if isinstance(route, APIRoute)
        and route.path not in spec["paths"]
        and route.path not in UNLISTED
    )


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        schema = spec["components"]["schemas"][name]
    return schema


def walk(spec: dict[str, Any], schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every (resolved) schema reachable from `schema`, each once."""
    seen: set[int] = set()
    stack = [schema]
    while stack:
        node = resolve(spec, stack.pop())
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        for key in ("properties", "$defs"):
            stack.extend(node.get(key, {}).values())
        for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
            stack.extend(node.get(key, []))
        for key in ("items", "additionalProperties", "not"):
            if isinstance(node.get(key), dict):
                stack.append(node[key])


def response_schemas(spec: dict[str, Any]) -> Iterator[tuple[Operation, dict[str, Any]]]:
    for op in operations(spec):
        for response in op.spec.get("responses", {}).values():
            for media in response.get("content", {}).values():
                if "schema" in media:
                    yield op, media["schema"]


def request_schemas(spec: dict[str, Any]) -> Iterator[tuple[Operation, str, dict[str, Any]]]:
    for op in operations(spec):
        for media_type, media in op.spec.get("requestBody", {}).get("content", {}).items():
            yield op, media_type, media["schema"]
