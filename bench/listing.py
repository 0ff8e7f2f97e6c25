"""4. Listing: `GET /jobs` (first page, newest first) for callers owning 1k … 1M jobs, on
PostgreSQL and SQLite, against the job store the v2.0 plan sketched (one JSON file per job,
scanned by glob); and `GET /jobs/{id}` under 50 concurrent pollers against a bare FastAPI
route reading Redis.

Each size is one user owning that many jobs, all in one table (1.11M rows in the full run):
the caller's own jobs are what a listing could grow with, and requests rotate over the users,
so a burst of load elsewhere on the machine hits every size alike. Jobs are bulk-inserted
(PostgreSQL COPY, SQLite executemany), copying a template row the service wrote itself, so every
column has the value and format the service would give it.
"""

from __future__ import annotations

import glob
import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import redis

from bench import REDIS_URL
from bench.common import Bench, Stack, headers, log
from bench.loadgen import Request, load
from bench.report import Config, Row, Sample, Target, describe_time, seconds
from xgenerator.db.tables import Job
from xgenerator.jobs import repository
from xgenerator.jobs.status import JobStatus

NAME = "listing"
FLAT = Target("<=", 1.5, "flat")
CHUNK = 50_000
PAGE = 50


def label(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1_000}k"


def expected(quick: bool) -> list[str]:
    cfg = Config.make(quick)
    rows = [
        f"GET /jobs, {db}, {label(n)} vs {label(cfg.listing_sizes[0])} jobs"
        for db in ("PostgreSQL", "SQLite")
        for n in cfg.listing_sizes[1:]
    ]
    rows += [
        f"GET /jobs (PostgreSQL) vs JSON-file store, {label(n)} jobs" for n in cfg.listing_sizes
    ]
    return [*rows, f"GET /jobs/{{id}}, {cfg.pollers} pollers vs bare FastAPI + Redis GET"]


# --- filling the database ----------------------------------------------------------------------


def template_row(stack: Stack, user_id: str) -> tuple[list[str], list[Any]]:
    """A finished job as the service stores it: (column names, raw values)."""
    job = Job(
        user_id=user_id,
        job_type="train",
        queue="train",
        model_name="m",
        config={"model_name": "m", "num_boost_round": 100},
        progress={"percent": 100.0, "message": "done"},
    )
    with stack.context.db.session() as session:
        repository.create(session, job)
        job.status = JobStatus.SUCCEEDED
    columns = [c.name for c in Job.__table__.columns]
    query = f"SELECT {', '.join(columns)} FROM jobs WHERE id = %s"  # noqa: S608 - our names
    if stack.db.kind == "postgresql":
        with psycopg.connect(stack.db.connect_dsn()) as conn:
            raw = conn.execute(query, (job.id,)).fetchone()
            conn.execute("DELETE FROM job_events WHERE job_id = %s", (job.id,))
            conn.execute("DELETE FROM jobs WHERE id = %s", (job.id,))
    else:
        with sqlite3.connect(_sqlite_path(stack)) as conn:
            raw = conn.execute(query.replace("%s", "?"), (job.id,)).fetchone()
            conn.execute("DELETE FROM job_events WHERE job_id = ?", (job.id,))
            conn.execute("DELETE FROM jobs WHERE id = ?", (job.id,))
    assert raw is not None
    values = [json.dumps(v) if isinstance(v, dict | list) else v for v in raw]
    return columns, values


def _sqlite_path(stack: Stack) -> str:
    return stack.db.url.removeprefix("sqlite:///")


def _rows(
    columns: list[str], template: list[Any], user_id: str, count: int, base: datetime
) -> Iterator[tuple[Any, ...]]:
    """Copies of the template for `user_id`, a fresh id each, one second apart."""
    at = {name: i for i, name in enumerate(columns)}
    stamp_columns = [at[c] for c in ("created_at", "updated_at", "started_at", "completed_at")]
    as_text = isinstance(template[at["created_at"]], str)  # SQLite keeps datetimes as text
    row = list(template)
    row[at["user_id"]] = user_id
    for i in range(count):
        when = base + timedelta(seconds=i)
        value: Any = when.strftime("%Y-%m-%d %H:%M:%S.%f") if as_text else when
        row[at["id"]] = uuid.uuid4().hex
        for column in stamp_columns:
            row[column] = value
        yield tuple(row)


def insert_jobs(
    stack: Stack, columns: list[str], template: list[Any], user_id: str, count: int, base: datetime
) -> None:
    names = ", ".join(columns)
    if stack.db.kind == "postgresql":
        with psycopg.connect(stack.db.connect_dsn(), autocommit=True) as conn:
            with conn.transaction(), conn.cursor().copy(f"COPY jobs ({names}) FROM STDIN") as copy:
                for row in _rows(columns, template, user_id, count, base):
                    copy.write_row(row)
            # what autovacuum does after a big insert on a real server (PostgreSQL >= 13)
            conn.execute("VACUUM ANALYZE jobs")
        return
    marks = ", ".join("?" for _ in columns)
    with sqlite3.connect(_sqlite_path(stack)) as conn:
        rows = _rows(columns, template, user_id, count, base)
        while chunk := [row for _, row in zip(range(CHUNK), rows, strict=False)]:
            conn.executemany(
                f"INSERT INTO jobs ({names}) VALUES ({marks})",  # noqa: S608
                chunk,
            )


# --- measuring -------------------------------------------------------------------------------


def time_listings(
    stack: Stack, users: dict[int, dict[str, str]], requests: int
) -> dict[int, Sample]:
    """p50 of the first page for each user, the users taking turns request by request."""
    took: dict[int, list[float]] = {n: [] for n in users}
    for i in range(requests + 5):
        for n, user in users.items():
            started = time.perf_counter()
            response = stack.http.get("/jobs", headers=headers(user), params={"limit": PAGE})
            elapsed = time.perf_counter() - started
            response.raise_for_status()
            body = response.json()
            total, exact = body.get("total", n), body.get("total_exact", True)
            if len(body["jobs"]) != PAGE or not (total == n if exact else total < n):
                raise RuntimeError(
                    f"GET /jobs gave {len(body['jobs'])} jobs, total {total}, expected {n}"
                )
            if i >= 5:
                took[n].append(elapsed)
    return {n: Sample.of(values) for n, values in took.items()}


class JsonFileStore:
    """The v2.0 sketch: one JSON file per job; listing globs, reads, filters and sorts."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def fill(self, user_id: str, until: int, base: datetime) -> None:
        for i in range(self.count, until):
            job_id = uuid.uuid4().hex
            record = {
                "job_id": job_id,
                "job_type": "train",
                "status": "succeeded",
                "user_id": user_id,
                "model_name": "m",
                "created_at": (base + timedelta(seconds=i)).isoformat(),
                "completed_at": (base + timedelta(seconds=i)).isoformat(),
                "model_id": None,
                "progress": {"percent": 100.0, "message": "done"},
            }
            (self.dir / f"{job_id}.json").write_text(json.dumps(record))
        self.count = until

    def list(self, user_id: str) -> list[dict[str, Any]]:
        mine = []
        for path in glob.glob(str(self.dir / "*.json")):
            with open(path) as handle:
                record = json.load(handle)
            if record["user_id"] == user_id:
                mine.append(record)
        mine.sort(key=lambda r: (r["created_at"], r["job_id"]), reverse=True)
        return mine[:PAGE]

    def time_listing(self, user_id: str, budget_s: float) -> Sample:
        """At least three scans, more while the time budget lasts (at most 20)."""
        took: list[float] = []
        while len(took) < 3 or (sum(took) < budget_s and len(took) < 20):
            started = time.perf_counter()
            page = self.list(user_id)
            took.append(time.perf_counter() - started)
            assert len(page) == PAGE
        return Sample.of(took)


def run(bench: Bench) -> list[Row]:
    cfg = bench.config
    sizes = cfg.listing_sizes
    base = datetime(2025, 1, 1, tzinfo=UTC)
    p50s: dict[str, dict[int, Sample]] = {}
    pg_stack = bench.stack("postgresql")
    pg_biggest: dict[str, str] = {}
    for kind, stack in (("postgresql", pg_stack), ("sqlite", bench.stack("sqlite"))):
        users = {n: stack.create_user() for n in sizes}
        columns, template = template_row(stack, users[sizes[0]]["user_id"])
        for n, user in users.items():
            started = time.perf_counter()
            insert_jobs(stack, columns, template, user["user_id"], n, base)
            log(
                f"listing: {kind}: a user with {n:,} jobs inserted in "
                f"{time.perf_counter() - started:.1f}s"
            )
        p50s[stack.db.label] = time_listings(stack, users, cfg.listing_requests)
        log(
            f"listing: {kind} p50 "
            + ", ".join(
                f"{label(n)} {seconds(sample.p50)}" for n, sample in p50s[stack.db.label].items()
            )
        )
        if kind == "postgresql":
            pg_biggest = users[sizes[-1]]

    rows: list[Row] = []
    for db, by_size in p50s.items():
        first = by_size[sizes[0]]
        for n in sizes[1:]:
            rows.append(
                Row(
                    NAME,
                    f"GET /jobs, {db}, {label(n)} vs {label(sizes[0])} jobs",
                    describe_time(by_size[n]),
                    describe_time(first),
                    by_size[n].p50 / first.p50,
                    FLAT,
                    f"first page of 50; {sum(sizes):,} jobs in the table",
                )
            )

    store = JsonFileStore(bench.workdir / "json-jobs")
    for n in sizes:
        measure = f"GET /jobs (PostgreSQL) vs JSON-file store, {label(n)} jobs"
        if n not in cfg.json_store_sizes:
            biggest = max(cfg.json_store_sizes)
            rows.append(
                Row(
                    NAME,
                    measure,
                    note=(
                        f"skipped: {n:,} files take minutes to write; the glob scan is linear "
                        f"(≈{n / biggest:g}× the {label(biggest)} figure)"
                    ),
                )
            )
            continue
        started = time.perf_counter()
        store.fill("u1", n, base)
        log(f"listing: JSON store filled to {n:,} files in {time.perf_counter() - started:.1f}s")
        sample = store.time_listing("u1", budget_s=2.0)
        service = p50s["PostgreSQL"][n]
        rows.append(
            Row(
                NAME,
                measure,
                describe_time(service),
                describe_time(sample),
                service.p50 / sample.p50,
                None,
                "glob + read + filter + sort, in-process",
            )
        )
    rows.append(_pollers(bench, pg_stack, headers(pg_biggest)))
    return rows


def _pollers(bench: Bench, stack: Stack, auth: dict[str, str]) -> Row:
    """Each poller asks for its own recent job, back to back; the bare twin reads the same
    JSON document from Redis."""
    cfg = bench.config
    page = stack.http.get("/jobs", headers=auth, params={"limit": cfg.pollers}).json()["jobs"]
    ids = [job["job_id"] for job in page]
    bare = bench.bare_api()
    client = redis.Redis.from_url(REDIS_URL)
    try:
        for job_id in ids:
            detail = stack.http.get(f"/jobs/{job_id}", headers=auth).json()
            client.set(f"bare-item:{job_id}", json.dumps(detail))
    finally:
        client.close()

    service_requests = [Request("GET", f"/jobs/{job_id}", auth) for job_id in ids]
    bare_requests = [Request("GET", f"/items/{job_id}", {}) for job_id in ids]

    def service_request(i: int) -> Request:
        return service_requests[i % len(ids)]

    def bare_request(i: int) -> Request:
        return bare_requests[i % len(ids)]

    load(stack.api.url, service_request, cfg.pollers, total=2 * cfg.pollers)  # warm-up
    load(bare.url, bare_request, cfg.pollers, total=2 * cfg.pollers)
    service_runs, bare_runs = [], []
    for _ in range(2):  # alternate, so a burst of load elsewhere hits both
        service_runs.append(
            load(stack.api.url, service_request, cfg.pollers, seconds=cfg.poll_seconds / 2)
        )
        bare_runs.append(load(bare.url, bare_request, cfg.pollers, seconds=cfg.poll_seconds / 2))
    if any(set(run.statuses) != {200} for run in service_runs):
        raise RuntimeError(f"GET /jobs/{{id}} answered {[dict(r.statuses) for r in service_runs]}")
    service_rate = sum(len(r.latencies) for r in service_runs) / sum(
        r.elapsed for r in service_runs
    )
    bare_rate = sum(len(r.latencies) for r in bare_runs) / sum(r.elapsed for r in bare_runs)
    s = Sample.of([t for r in service_runs for t in r.latencies])
    b = Sample.of([t for r in bare_runs for t in r.latencies])
    log(f"listing: pollers service {service_rate:,.0f}/s, bare {bare_rate:,.0f}/s")
    return Row(
        NAME,
        f"GET /jobs/{{id}}, {cfg.pollers} pollers vs bare FastAPI + Redis GET",
        f"{service_rate:,.0f} req/s · p50 {seconds(s.p50)} · p95 {seconds(s.p95)}",
        f"{bare_rate:,.0f} req/s · p50 {seconds(b.p50)} · p95 {seconds(b.p95)}",
        service_rate / bare_rate,
        None,
        f"throughput ratio; the poller's user owns {max(cfg.listing_sizes):,} jobs",
    )
