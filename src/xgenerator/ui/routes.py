"""The dashboard at /ui: server-rendered page shells; a little JavaScript fills them in.

Pages hold no user data: the browser keeps the API key in sessionStorage and fetches from
the API with it (a page load cannot send the header). Scripts are static files, never
inline, so a strict Content-Security-Policy applies to every page.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.templating import Jinja2Templates

import xgenerator
from xgenerator.errors import InvalidInput, NotFound

HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=HERE / "templates")
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
# Looked up by name in this fixed table: a request path never reaches the file system.
STATIC = {p.name: p for p in (HERE / "static").iterdir() if p.suffix in STATIC_TYPES}

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}

router = APIRouter(prefix="/ui", include_in_schema=False)

# Jobs, models and datasets have uuid4-hex ids: a page for anything else is a 404, so that no
# path segment of a page can make its script call another API path (`..%5Cusers%5Cme`).
OBJECT_ID = re.compile(r"[0-9a-f]{32}")
MIN_COMPARED, MAX_COMPARED = 2, 10


def _object_id(value: str, what: str) -> str:
    if not OBJECT_ID.fullmatch(value):
        raise NotFound(what, "(not an id)")
    return value


def _page(request: Request, page: str, title: str, **values: Any) -> HTMLResponse:
    context = {"page": page, "title": title, "version": xgenerator.__version__, **values}
    response = TEMPLATES.TemplateResponse(request, f"{page}.html", context)
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("", response_class=HTMLResponse)
def jobs_page(request: Request) -> HTMLResponse:
    return _page(request, "jobs", "Jobs")


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job_id: str) -> HTMLResponse:
    return _page(request, "job", "Job", object_id=_object_id(job_id, "job"))


@router.get("/searches/{job_id}", response_class=HTMLResponse)
def search_page(request: Request, job_id: str) -> HTMLResponse:
    """A hyper-parameter search (a `tune` job): its leaderboard, trials' curves, best params."""
    return _page(request, "search", "Search", object_id=_object_id(job_id, "job"))


@router.get("/compare", response_class=HTMLResponse)
def compare_page(request: Request, ids: str = "") -> HTMLResponse:
    """2 to 10 jobs side by side; every id is checked, so the script gets only ids."""
    job_ids = [i for i in ids.split(",") if i]
    if not MIN_COMPARED <= len(job_ids) <= MAX_COMPARED:
        raise InvalidInput(f"compare {MIN_COMPARED} to {MAX_COMPARED} jobs: ids=ID,ID,...")
    checked = ",".join(_object_id(i, "job") for i in job_ids)
    return _page(request, "compare", "Compare jobs", object_id=checked)


@router.get("/models", response_class=HTMLResponse)
def models_page(request: Request) -> HTMLResponse:
    return _page(request, "models", "Models")


@router.get("/models/{model_id}", response_class=HTMLResponse)
def model_page(request: Request, model_id: str) -> HTMLResponse:
    return _page(request, "model", "Model", object_id=_object_id(model_id, "model"))


@router.get("/datasets", response_class=HTMLResponse)
def datasets_page(request: Request) -> HTMLResponse:
    return _page(request, "datasets", "Datasets")


@router.get("/datasets/{dataset_id}", response_class=HTMLResponse)
def dataset_page(request: Request, dataset_id: str) -> HTMLResponse:
    return _page(request, "dataset", "Dataset", object_id=_object_id(dataset_id, "dataset"))


@router.get("/static/{name}")
def static(name: str) -> Response:
    path = STATIC.get(name)
    if path is None:
        raise NotFound("file", name)
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache"}
    return FileResponse(path, media_type=STATIC_TYPES[path.suffix], headers=headers)
