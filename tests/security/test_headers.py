"""Response headers and CORS (OWASP API8: security misconfiguration).

The dashboard's CSP in a real browser (no inline script, no violation while used) is
tests/ui/test_dashboard.py; here every page and answer is checked through the app itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.security.spec import SQLITE_ONLY, UNLISTED
from tests.security.world import build
from tests.support import auth, create_user
from tests.support.services import make_settings
from xgenerator.api.app import create_app
from xgenerator.context import Context, build_context
from xgenerator.errors import ConfigurationError
from xgenerator.settings import load_settings
from xgenerator.ui.routes import STATIC

ORIGIN = "https://app.example.com"


def ui_urls() -> list[str]:
    filled = {"{job_id}": "a" * 32, "{model_id}": "b" * 32, "{dataset_id}": "c" * 32}
    urls = []
    for path in sorted(UNLISTED):
        if path == "/ui/static/{name}":
            urls += [f"/ui/static/{name}" for name in sorted(STATIC)]
            continue
        for placeholder, value in filled.items():
            path = path.replace(placeholder, value)
        urls.append(path)
    return urls


@SQLITE_ONLY
def test_every_dashboard_page_and_file_sends_the_security_headers(client: TestClient) -> None:
    urls = ui_urls()
    assert len(urls) >= 8
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        csp = dict(
            part.strip().split(" ", 1)
            for part in response.headers["content-security-policy"].split(";")
        )
        assert csp["default-src"] == "'none'" and csp["script-src"] == "'self'", url
        assert csp["frame-ancestors"] == "'none'" and csp["base-uri"] == "'none'", url
        assert "unsafe-inline" not in response.headers["content-security-policy"], url
        assert "unsafe-eval" not in response.headers["content-security-policy"], url
        assert response.headers["x-content-type-options"] == "nosniff", url
        assert response.headers["x-frame-options"] == "DENY", url
        assert response.headers["referrer-policy"] == "no-referrer", url


def test_api_answers_carry_nosniff_and_deny_framing(client: TestClient, context: Context) -> None:
    world = build(client, context)
    alice = auth(world.alice)
    answers = {
        "200 json": client.get("/jobs", headers=alice),
        "200 health": client.get("/health"),
        "401": client.get("/jobs"),
        "404 route": client.get("/nope"),
        "404 object": client.get("/jobs/nope", headers=alice),
        "405": client.put("/jobs", headers=alice),
        "422": client.get("/jobs?limit=0", headers=alice),
        "413": client.post(
            "/users/me/keys",
            headers={**alice, "Content-Type": "application/json"},
            content=b"{}" + b" " * (17 * 1024 * 1024),
        ),
        "model download": client.get(f"/models/{world.ids['model_id']}/download", headers=alice),
        "artifact": client.get(
            f"/jobs/{world.ids['artifact_job_id']}/artifacts/profile.json", headers=alice
        ),
        "spec": client.get("/openapi.json"),
    }
    for name, response in answers.items():
        expected = int(name[:3]) if name[0].isdigit() else 200
        assert response.status_code == expected, (name, response.text[:200])
        assert response.headers["x-content-type-options"] == "nosniff", name
        assert response.headers["x-frame-options"] == "DENY", name
    # a stored file is the user's data: downloaded, never rendered as a page of this origin
    artifact = answers["artifact"]
    assert artifact.headers["content-disposition"].startswith("attachment")
    assert "sandbox" in artifact.headers["content-security-policy"]


@SQLITE_ONLY
def test_cors_is_off_by_default(client: TestClient) -> None:
    user = create_user(client)
    preflight = client.options(
        "/jobs",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "X-API-Key",
        },
    )
    assert "access-control-allow-origin" not in preflight.headers
    plain = client.get("/jobs", headers={**auth(user), "Origin": ORIGIN})
    assert plain.status_code == 200
    assert not [h for h in plain.headers if h.startswith("access-control-")]


@pytest.fixture
def cors_client(tmp_path: Path, database_url: str, broker_url: str) -> Iterator[TestClient]:
    settings = make_settings(tmp_path, database_url, broker_url, cors_origins=[ORIGIN])
    context = build_context(settings)
    try:
        with TestClient(create_app(settings, context)) as client:
            yield client
    finally:
        context.close()


@SQLITE_ONLY
def test_cors_allows_only_the_configured_origins(cors_client: TestClient) -> None:
    user = create_user(cors_client)
    asked = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "X-API-Key"}
    ok = cors_client.options("/train", headers={"Origin": ORIGIN, **asked})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == ORIGIN
    assert "x-api-key" in ok.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in ok.headers  # keys are headers, not cookies
    other = cors_client.options("/train", headers={"Origin": "https://evil.example", **asked})
    assert "access-control-allow-origin" not in other.headers
    read = cors_client.get("/jobs", headers={**auth(user), "Origin": ORIGIN})
    assert read.headers["access-control-allow-origin"] == ORIGIN
    evil = cors_client.get("/jobs", headers={**auth(user), "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in evil.headers


def test_cors_origins_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XGEN_CORS_ORIGINS", f"{ORIGIN}, http://localhost:3000/")
    assert load_settings().cors_origins == [ORIGIN, "http://localhost:3000"]
    monkeypatch.setenv("XGEN_CORS_ORIGINS", f'["{ORIGIN}"]')
    assert load_settings().cors_origins == [ORIGIN]
    monkeypatch.setenv("XGEN_CORS_ORIGINS", "")
    assert load_settings().cors_origins == []
    for bad in ("app.example.com", "https://app.example.com/path", "null"):
        monkeypatch.setenv("XGEN_CORS_ORIGINS", bad)
        with pytest.raises(ConfigurationError, match="XGEN_CORS_ORIGINS"):
            load_settings()
